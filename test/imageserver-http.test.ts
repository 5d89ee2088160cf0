// The image server's HTTP API as any HTTP client sees it (curl is the peer): versioned JSON,
// immutable objects with ETag and Range, zstd passthrough, errors as {error, detail}, metrics,
// and TLS with client certificates.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import { promisify } from 'node:util';
import path from 'node:path';
import zlib from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { addImage } from '../src/image/pack/add.ts';
import { ImageServerClient } from '../src/image/transfer/client.ts';
import { digestOf } from '../src/image/model/digest.ts';
import { ImageStore } from '../src/image/store/store.ts';
import { removeWorkDir, sh, startImageServer, tmpDir } from './helpers.ts';

const execFileAsync = promisify(execFile);

/** curl -i (run asynchronously: the server lives in this process): status, headers, body. */
async function curl(args: string[]): Promise<{ status: number; headers: Record<string, string>; body: Buffer }> {
  const { stdout } = await execFileAsync('curl', ['-s', '-i', '--max-time', '10', ...args, '-o', '-'], {
    encoding: 'buffer',
    maxBuffer: 64 * 1024 * 1024,
  });
  const text = stdout.toString('latin1');
  const split = text.indexOf('\r\n\r\n');
  const [statusLine, ...lines] = text.slice(0, split).split('\r\n');
  const headers: Record<string, string> = {};
  for (const l of lines) headers[l.slice(0, l.indexOf(':')).toLowerCase()] = l.slice(l.indexOf(':') + 1).trim();
  return { status: Number(statusLine.split(' ')[1]), headers, body: Buffer.from(text.slice(split + 4), 'latin1') };
}

describe('image server HTTP API', () => {
  let work: string;
  let store: ImageStore;
  let server: Awaited<ReturnType<typeof startImageServer>>;
  const content = Buffer.from('0123456789abcdefghij'.repeat(1000));
  const digest = digestOf(content);
  const large = Buffer.alloc(33 * 1024 * 1024, 'large object ');

  before(async () => {
    work = tmpDir();
    store = new ImageStore(path.join(work, 'store')).init();
    fs.mkdirSync(path.join(work, 'src'));
    fs.writeFileSync(path.join(work, 'src', 'data'), content);
    fs.writeFileSync(path.join(work, 'src', 'large'), large); // over the whole-read limit: stored by streaming
    await addImage(store, 'web/1', path.join(work, 'src'), { warn: () => {} });
    server = await startImageServer(store);
  });
  after(async () => {
    await server.close();
    removeWorkDir(work);
  });

  it('lists images and streams as JSON', async () => {
    const r = await curl([`${server.url}/v1/images`]);
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'application/json');
    const body = JSON.parse(r.body.toString());
    assert.equal(body.images[0].name, 'web/1');
    assert.deepEqual(JSON.parse((await curl([`${server.url}/v1/streams`])).body.toString()), { streams: ['web'] });
  });

  it('serves an object decompressed, with ETag = digest and immutable caching', async () => {
    const r = await curl([`${server.url}/v1/objects/${digest}`]);
    assert.equal(r.status, 200);
    assert.equal(r.headers.etag, `"${digest}"`);
    assert.match(r.headers['cache-control'], /immutable/);
    assert.equal(Number(r.headers['content-length']), content.length);
    assert.ok(r.body.equals(content));
  });

  it('serves the stored zstd bytes to clients that accept zstd', async () => {
    const r = await curl(['-H', 'Accept-Encoding: zstd', `${server.url}/v1/objects/${digest}`]);
    assert.equal(r.headers['content-encoding'], 'zstd');
    assert.equal(r.headers.etag, `"${digest}+zstd"`, 'the stored frame is another representation, with its own ETag');
    assert.equal(
      (await curl(['-H', 'Accept-Encoding: zstd;q=0, gzip', `${server.url}/v1/objects/${digest}`])).headers[
        'content-encoding'
      ],
      undefined,
    );
    assert.ok(zlib.zstdDecompressSync(r.body).equals(content));
    assert.ok(r.body.length < content.length / 10);
  });

  it('answers If-None-Match with 304 and a Range with 206', async () => {
    assert.equal((await curl(['-H', `If-None-Match: "${digest}"`, `${server.url}/v1/objects/${digest}`])).status, 304);
    assert.equal(
      (await curl(['-H', `If-None-Match: "other", W/"${digest}"`, `${server.url}/v1/objects/${digest}`])).status,
      304,
    );
    const part = await curl(['-H', 'Range: bytes=10-29', `${server.url}/v1/objects/${digest}`]);
    assert.equal(part.status, 206);
    assert.equal(part.headers['content-range'], `bytes 10-29/${content.length}`);
    assert.equal(part.body.toString(), content.subarray(10, 30).toString());
    const tail = await curl(['-H', 'Range: bytes=19990-', `${server.url}/v1/objects/${digest}`]);
    assert.equal(tail.body.toString(), content.subarray(19990).toString());
    assert.equal((await curl(['-H', 'Range: bytes=999999-', `${server.url}/v1/objects/${digest}`])).status, 416);
  });

  it('serves an object stored by streaming (size not in its zstd header) whole, ignoring a Range', async () => {
    const r = await curl(['-H', 'Range: bytes=0-9', `${server.url}/v1/objects/${digestOf(large)}`]);
    assert.equal(r.status, 200);
    assert.equal(digestOf(r.body), digestOf(large));
  });

  it('streams a mid-sized object decompressed, whole and in a range, the same to concurrent clients', async () => {
    // 3 MiB of content: over the inline-decompression size, under the whole-read limit.
    const mid = Buffer.concat([
      Buffer.alloc(1024 * 1024, 'mid '),
      Buffer.from(zlib.zstdCompressSync(content)),
      Buffer.alloc(2 * 1024 * 1024, 7),
    ]);
    const midDigest = (await store.putObject(mid)).digest;
    const url = `${server.url}/v1/objects/${midDigest}`;
    const whole = await Promise.all([1, 2, 3].map(() => curl([url])));
    for (const r of whole) {
      assert.equal(r.status, 200);
      assert.equal(Number(r.headers['content-length']), mid.length);
      assert.equal(digestOf(r.body), midDigest);
    }
    const part = await curl(['-H', 'Range: bytes=1048570-1048599', url]);
    assert.equal(part.status, 206);
    assert.ok(part.body.equals(mid.subarray(1048570, 1048600)));
    const stored = await curl(['-H', 'Accept-Encoding: zstd', '-H', 'Range: bytes=4-', url]);
    assert.ok(stored.body.equals(fs.readFileSync(store.objectPath(midDigest)).subarray(4)));
  });

  it('refuses to serve decompressed an object whose stored copy does not hash to its name', async () => {
    const named = Buffer.from('the content this object should have'.repeat(10));
    const wrong = digestOf(named);
    fs.mkdirSync(path.dirname(store.objectPath(wrong)), { recursive: true });
    fs.writeFileSync(store.objectPath(wrong), zlib.zstdCompressSync(Buffer.from('other bytes')));
    try {
      const r = await curl([`${server.url}/v1/objects/${wrong}`]);
      assert.equal(r.status, 500);
      assert.match(JSON.parse(r.body.toString()).detail, /is corrupt in the store/);
    } finally {
      fs.rmSync(store.objectPath(wrong), { force: true });
    }
  });

  it('serves the manifest under /v1/manifests, and it hashes to the image identity', async () => {
    const record = store.resolve('web/1');
    const r = await curl([`${server.url}/v1/manifests/${record.manifest}`]);
    assert.equal(r.status, 200);
    assert.equal(digestOf(r.body), record.manifest);
    assert.equal(JSON.parse(r.body.toString()).entries[1].path, 'data');
  });

  it('answers errors as {error, detail} with a useful message', async () => {
    const bad = await curl([`${server.url}/v1/objects/md5:abc`]);
    assert.equal(bad.status, 400);
    assert.match(JSON.parse(bad.body.toString()).detail, /is not a digest: expected sha256:<64 hex>/);
    const missing = await curl([`${server.url}/v1/objects/sha256:${'1'.repeat(64)}`]);
    assert.equal(missing.status, 404);
    assert.deepEqual(Object.keys(JSON.parse(missing.body.toString())), ['error', 'detail']);
    const route = await curl([`${server.url}/v2/whatever`]);
    assert.equal(route.status, 404);
    assert.match(JSON.parse(route.body.toString()).detail, /no route for GET \/v2\/whatever/);
    const batch = await curl([
      '-X',
      'POST',
      '-H',
      'content-type: application/json',
      '--data',
      '{"digests": "all"}',
      `${server.url}/v1/objects/batch`,
    ]);
    assert.equal(batch.status, 400);
    assert.match(JSON.parse(batch.body.toString()).detail, /field 'digests' must be a list/);
  });

  it('looks up a batch of 100,000 digests a thousand at a time, so other requests are answered meanwhile', async () => {
    // What the look-ups had reached at each turn of the event loop (the server runs in this process).
    let lookups = 0;
    const seen: number[] = [];
    const storedSize = store.storedSize;
    store.storedSize = (d) => {
      lookups++;
      return storedSize.call(store, d);
    };
    let watching = true;
    const watch = () => {
      seen.push(lookups);
      if (watching) setImmediate(watch);
    };
    setImmediate(watch);
    try {
      const digests = Array.from({ length: 100_000 }, (_, i) => `sha256:${i.toString(16).padStart(64, '0')}`);
      const r = await fetch(`${server.url}/v1/objects/batch`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ digests }),
      });
      assert.equal(r.status, 404);
      assert.match(((await r.json()) as { detail: string }).detail, /^100000 of 100000 objects are not in this store/);
    } finally {
      watching = false;
      store.storedSize = storedSize;
    }
    assert.ok(
      seen.some((n) => n > 0 && n < 100_000),
      'the event loop never turned while the batch was looked up',
    );
  });

  it("looks up one client's batches one at a time, while another client's go between them", async () => {
    // Which batch each look-up belonged to, in order: every batch's digests start with its own
    // digit (the server runs in this process).
    const order: string[] = [];
    const storedSize = store.storedSize;
    store.storedSize = (d) => {
      order.push(d[7]);
      return storedSize.call(store, d);
    };
    const post = (tag: string, from: string) =>
      new Promise<number>((resolve, reject) => {
        const digests = Array.from({ length: 30_000 }, (_, i) => `sha256:${tag}${i.toString(16).padStart(63, '0')}`);
        const req = http.request(
          `${server.url}/v1/objects/batch`,
          { method: 'POST', localAddress: from, headers: { 'content-type': 'application/json' } },
          (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          },
        );
        req.on('error', reject);
        req.end(JSON.stringify({ digests }));
      });
    try {
      // Two batches from 127.0.0.1 at once, one from 127.0.0.2.
      const statuses = await Promise.all([post('1', '127.0.0.1'), post('2', '127.0.0.1'), post('3', '127.0.0.2')]);
      assert.deepEqual(statuses, [404, 404, 404]);
    } finally {
      store.storedSize = storedSize;
    }
    const span = (tag: string) => [order.indexOf(tag), order.lastIndexOf(tag)];
    const [first, second] = [span('1'), span('2')].sort((a, b) => a[0] - b[0]);
    assert.equal(order.length, 90_000);
    assert.ok(first[1] < second[0], "127.0.0.1's second batch was looked up only after its first");
    const [start, end] = span('3');
    const overlaps = ([from, to]: number[]) => start < to && end > from;
    assert.ok(overlaps(first) || overlaps(second), "127.0.0.2's batch was looked up between 127.0.0.1's look-ups");
  });

  it('answers plain GETs and HEADs of objects before node:http, exactly as node:http would', async () => {
    // The same store behind a server without the fast lane: every request takes node:http's path.
    const slow = await startImageServer(store, undefined, { fastLane: false });
    const parsedBy = { lane: 0, slow: 0 };
    const countLane = () => parsedBy.lane++;
    const countSlow = () => parsedBy.slow++;
    server.server.on('request', countLane);
    slow.server.on('request', countSlow);
    try {
      const manifest = store.resolve('web/1').manifest;
      const cases = [
        [`/v1/objects/${digest}`],
        [`/v1/objects/${digest}`, '-H', 'Accept-Encoding: gzip, zstd'],
        [`/v1/objects/${digest}`, '-I'],
        [`/v1/objects/${digest}`, '-I', '-H', 'Accept-Encoding: zstd'],
        [`/v1/manifests/${manifest}`, '-H', 'Accept-Encoding: zstd'],
        [`/v1/manifests/${manifest}`],
      ];
      for (const [target, ...args] of cases) {
        // Twice each: the first reads the object into memory, the second finds it there.
        for (let i = 0; i < 2; i++) {
          const [a, b] = [
            await curl([...args, `${server.url}${target}`]),
            await curl([...args, `${slow.url}${target}`]),
          ];
          const what = `${args.join(' ')} ${target} (${i ? 'in memory' : 'first'})`;
          assert.equal(a.status, 200, what);
          assert.deepEqual({ ...a.headers, date: '' }, { ...b.headers, date: '' }, what);
          assert.ok(a.body.equals(b.body), what);
        }
      }
      assert.deepEqual(parsedBy, { lane: 0, slow: cases.length * 2 });
      // Anything else on the lane's server is node:http's, on the connection it arrived on.
      const ranged = await curl(['-H', 'Range: bytes=0-9', `${server.url}/v1/objects/${digest}`]);
      assert.equal(ranged.status, 206);
      assert.equal(parsedBy.lane, 1);
    } finally {
      server.server.off('request', countLane);
      await slow.close();
    }
  });

  it('exposes Prometheus metrics counting what it served', async () => {
    const r = await curl([`${server.url}/metrics`]);
    assert.equal(r.status, 200);
    assert.match(r.body.toString(), /cradle_imageserver_requests_total\{route="objects",status="200"\} \d+/);
    assert.match(r.body.toString(), /cradle_imageserver_objects_sent_total \d+/);
  });
});

describe('image server over TLS with client certificates', () => {
  let work: string;
  let server: Awaited<ReturnType<typeof startImageServer>>;
  const f = (name: string) => path.join(work, name);

  before(async () => {
    work = tmpDir();
    // A CA, a server certificate for 127.0.0.1, a client certificate, and a stranger's certificate.
    const openssl = (...args: string[]) => sh('openssl', args);
    openssl(
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      f('ca.key'),
      '-out',
      f('ca.pem'),
      '-days',
      '1',
      '-subj',
      '/CN=test CA',
    );
    const issue = (name: string, ca: string, ext: string) => {
      openssl(
        'req',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        f(`${name}.key`),
        '-out',
        f(`${name}.csr`),
        '-subj',
        `/CN=${name}`,
      );
      fs.writeFileSync(f(`${name}.ext`), ext);
      openssl(
        'x509',
        '-req',
        '-in',
        f(`${name}.csr`),
        '-CA',
        f(`${ca}.pem`),
        '-CAkey',
        f(`${ca}.key`),
        '-CAcreateserial',
        '-out',
        f(`${name}.pem`),
        '-days',
        '1',
        '-extfile',
        f(`${name}.ext`),
      );
    };
    issue('server', 'ca', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
    issue('client', 'ca', 'extendedKeyUsage=clientAuth\n');
    openssl(
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      f('rogue.key'),
      '-out',
      f('rogue.pem'),
      '-days',
      '1',
      '-subj',
      '/CN=rogue',
    );
    const store = new ImageStore(f('store')).init();
    fs.mkdirSync(f('src'));
    fs.writeFileSync(f('src/x'), 'x');
    await addImage(store, 'tls/1', f('src'), { warn: () => {} });
    server = await startImageServer(store, { cert: f('server.pem'), key: f('server.key'), ca: f('ca.pem') });
  });
  after(async () => {
    await server.close();
    removeWorkDir(work);
  });

  it('serves a client with a certificate from the CA', async () => {
    const client = new ImageServerClient(server.url, {
      tls: { ca: f('ca.pem'), cert: f('client.pem'), key: f('client.key') },
    });
    try {
      assert.equal((await client.listImages())[0].name, 'tls/1');
    } finally {
      client.close();
    }
  });

  it('refuses a client without a certificate, or with one the CA did not sign', async () => {
    for (const tls of [{ ca: f('ca.pem') }, { ca: f('ca.pem'), cert: f('rogue.pem'), key: f('rogue.key') }]) {
      const client = new ImageServerClient(server.url, { tls });
      try {
        await assert.rejects(client.listImages(), /image server https:\/\/127\.0\.0\.1:\d+ unreachable/);
      } finally {
        client.close();
      }
    }
  });
});
