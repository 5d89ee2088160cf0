import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SIMPLE_HEAD_MAX, scanSimpleHead } from './simple-head.ts';

const scan = (text: string, start = 0) => scanSimpleHead(Buffer.from(text, 'latin1'), start);
const kind = (text: string) => scan(text).kind;
const GET = 'GET /v1/objects/x HTTP/1.1\r\nHost: a\r\n';

test('a plain GET or HEAD, as wrk, curl and Node send them, is simple', () => {
  const wrk = 'GET /v1/objects/sha256:ab HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nAccept-Encoding: zstd\r\n\r\n';
  assert.deepEqual(scan(wrk), {
    kind: 'simple',
    request: { method: 'GET', target: '/v1/objects/sha256:ab', acceptEncoding: 'zstd' },
    length: wrk.length,
  });
  const curl = 'HEAD /x HTTP/1.1\r\nHost: h\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n';
  assert.deepEqual(scan(curl), {
    kind: 'simple',
    request: { method: 'HEAD', target: '/x', acceptEncoding: undefined },
    length: curl.length,
  });
  const node = `${GET}connection: Keep-Alive\r\naccept-encoding:  gzip, zstd;q=0.5 \t\r\nsec-fetch-mode: cors\r\n\r\n`;
  assert.equal(scan(node).kind, 'simple');
  assert.equal((scan(node) as { request: { acceptEncoding: string } }).request.acceptEncoding, 'gzip, zstd;q=0.5');
});

test('only the names themselves count, in any case: not a longer name, nor another of the same length', () => {
  assert.equal(kind('GET /x HTTP/1.1\r\nX-Host: a\r\n\r\n'), 'other'); // no Host
  assert.equal(kind('GET /x HTTP/1.1\r\nHOST: a\r\nAccept: */*\r\nX-Range: 1\r\nRanges: 2\r\n\r\n'), 'simple');
  assert.equal(kind('GET /x HTTP/1.1\r\nhost: a\r\nrAnGe: bytes=1-\r\n\r\n'), 'other');
});

test('the head is measured from `start`, and bytes after it (a pipelined request) are left alone', () => {
  const two = `${GET}\r\nGET /second HTTP/1.1\r\nHost: a\r\n\r\n`;
  const first = scan(two);
  assert.equal(first.kind, 'simple');
  const length = (first as { length: number }).length;
  assert.equal(length, GET.length + 2);
  const second = scan(two, length);
  assert.equal(second.kind, 'simple');
  assert.equal((second as { request: { target: string } }).request.target, '/second');
});

test('a head past the first KiB is found; one past the limit is node:http’s', () => {
  const long = `${GET}X-Pad: ${'a'.repeat(3000)}\r\n\r\n`;
  assert.equal(scan(long).kind, 'simple');
  assert.equal((scan(long) as { length: number }).length, long.length);
  assert.equal(scan(`${GET}X-Pad: ${'a'.repeat(SIMPLE_HEAD_MAX - 60)}\r\n\r\n`).kind, 'simple');
  assert.equal(scan(`${GET}X-Pad: ${'a'.repeat(SIMPLE_HEAD_MAX)}\r\n\r\n`).kind, 'other');
});

test('a head cut short waits for more, up to the size limit', () => {
  assert.equal(kind(GET), 'incomplete');
  assert.equal(kind('GET /x HT'), 'incomplete');
  assert.equal(kind(''), 'incomplete');
  assert.equal(kind(`${GET}X-Pad: ${'a'.repeat(SIMPLE_HEAD_MAX)}`), 'other');
  assert.equal(kind(`${GET}X-Pad: ${'a'.repeat(SIMPLE_HEAD_MAX)}\r\n\r\n`), 'other');
});

test('anything with a body, a condition, a range, an expectation or an upgrade is node:http’s', () => {
  for (const field of [
    'Content-Length: 0',
    'Transfer-Encoding: chunked',
    'Expect: 100-continue',
    'Upgrade: websocket',
    'Range: bytes=0-1',
    'If-Range: "x"',
    'If-None-Match: "x"',
    'If-Match: *',
    'If-Modified-Since: Mon, 07 Dec 2026 00:00:00 GMT',
    'If-Unmodified-Since: Mon, 07 Dec 2026 00:00:00 GMT',
    'TE: trailers',
    'Trailer: x',
    'Connection: close',
    'Connection: keep-alive, Upgrade',
  ])
    assert.equal(kind(`${GET}${field}\r\n\r\n`), 'other', field);
});

test('what is not plainly valid HTTP/1.1 is node:http’s to refuse', () => {
  for (const text of [
    'POST /x HTTP/1.1\r\nHost: a\r\n\r\n',
    'get /x HTTP/1.1\r\nHost: a\r\n\r\n',
    'GET /x HTTP/1.0\r\nHost: a\r\n\r\n',
    'GET http://a/x HTTP/1.1\r\nHost: a\r\n\r\n',
    'GET * HTTP/1.1\r\nHost: a\r\n\r\n',
    'GET /a b HTTP/1.1\r\nHost: a\r\n\r\n',
    'GET /x  HTTP/1.1\r\nHost: a\r\n\r\n',
    'GET /\xe9 HTTP/1.1\r\nHost: a\r\n\r\n',
    'GET /x HTTP/1.1\r\n\r\n', // no Host
    `${GET}Host: b\r\n\r\n`, // two
    `${GET}Accept-Encoding: zstd\r\nAccept-Encoding: gzip\r\n\r\n`,
    `${GET}X-A: 1\r\n folded\r\n\r\n`,
    `${GET}X A: 1\r\n\r\n`,
    `${GET}X-A : 1\r\n\r\n`,
    `${GET}: 1\r\n\r\n`,
    `${GET}X-A\r\n\r\n`,
    `${GET}X-A: a\nContent-Length: 5\r\n\r\n`,
    `${GET}X-A: a\rb\r\n\r\n`,
    `${GET}X-A: a\x00b\r\n\r\n`,
    `${GET}X-A: caf\xe9\r\n\r\n`,
  ])
    assert.equal(kind(text), 'other', JSON.stringify(text));
});
