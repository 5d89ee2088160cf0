// Where the answers come from, as the kernel command line says (`cradle.answers=`, as Kusu's
// boot arguments reached its installer): a path on the installation medium, an http(s):// URL
// (with `cradle.answers-fingerprint=` the server's certificate is pinned by its SHA-256
// fingerprint instead of checked against a CA), or `label:NAME`, a file system with that label
// (a USB stick) holding cradle-answers.yaml (or .yml, .json) at its top. Nothing is written: a
// labelled file system is mounted read-only and unmounted again.
import { once } from 'node:events';
import fs from 'node:fs';
import type https from 'node:https';
import type http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import tls from 'node:tls';
import { run } from '../system/run.ts';
import { AnswersError } from './answers.ts';
import { httpModuleFor } from '../util/http/node-http.ts';

export type AnswersLocation =
  | { kind: 'media'; path: string }
  | { kind: 'url'; url: string; fingerprint?: string }
  | { kind: 'label'; label: string };

/** An answer file is small; anything larger is not one. */
export const MAX_ANSWERS_BYTES = 1024 * 1024;
export const ANSWER_FILE_NAMES = ['cradle-answers.yaml', 'cradle-answers.yml', 'cradle-answers.json'];

/** `AA:BB:...`, `sha256:aabb...` or bare hex, as 64 lower-case hex digits. */
export function normalizeFingerprint(text: string): string {
  const hex = text
    .replace(/^sha256:/i, '')
    .replace(/:/g, '')
    .toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(hex))
    throw new AnswersError(
      `'${text}' is not a SHA-256 fingerprint: give 64 hex digits, e.g. as 'openssl x509 -noout -fingerprint -sha256' prints them`,
    );
  return hex;
}

export function parseAnswersLocation(value: string, fingerprint?: string): AnswersLocation {
  if (/^https?:\/\//i.test(value)) {
    if (fingerprint && !/^https:/i.test(value))
      throw new AnswersError(`cradle.answers-fingerprint pins a certificate: ${value} is plain http, use https://`);
    return { kind: 'url', url: value, ...(fingerprint ? { fingerprint: normalizeFingerprint(fingerprint) } : {}) };
  }
  if (fingerprint) throw new AnswersError('cradle.answers-fingerprint goes with an https:// cradle.answers');
  const label = /^label:(.+)$/i.exec(value);
  if (label) {
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(label[1]))
      throw new AnswersError(`cradle.answers=${value}: a label is letters, digits, '.', '_' and '-'`);
    return { kind: 'label', label: label[1] };
  }
  if (value.split('/').includes('..'))
    throw new AnswersError(`cradle.answers=${value}: a path on the medium has no '..'`);
  return { kind: 'media', path: value };
}

/**
 * A TLS connection to `u` whose certificate has the pinned fingerprint, checked after the
 * handshake and before a byte of the request is sent.
 */
async function pinnedSocket(u: URL, fingerprint: string, timeoutMs: number): Promise<tls.TLSSocket> {
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const socket = tls.connect({
    host,
    port: Number(u.port || 443),
    ...(net.isIP(host) ? {} : { servername: host }),
    rejectUnauthorized: false, // the pin decides, not a CA
  });
  socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`no answer in ${timeoutMs / 1000} s`)));
  await once(socket, 'secureConnect');
  // The handshake's deadline is over; the request's own takes over from here.
  socket.setTimeout(0);
  const cert = socket.getPeerCertificate();
  const got = cert?.fingerprint256 ? normalizeFingerprint(cert.fingerprint256) : 'none';
  if (got !== fingerprint) {
    socket.destroy();
    throw new PinError(
      `the server's certificate has fingerprint ${got}, not the pinned ${fingerprint}: nothing was read`,
    );
  }
  return socket;
}

class PinError extends Error {}

/**
 * A GET of an http(s):// URL, its certificate pinned by `fingerprint` when given (instead of
 * checked against a CA). Resolves with a 200 response; anything else is an error saying why,
 * prefixed with `what` (e.g. "the answers at URL").
 */
export async function getUrl(
  url: string,
  what: string,
  o: { fingerprint?: string; timeoutMs?: number } = {},
): Promise<http.IncomingMessage> {
  const u = new URL(url);
  const timeoutMs = o.timeoutMs ?? 30_000;
  const fail = (why: string) => new AnswersError(`${what}: ${why}`);
  const unreachable = (err: Error) =>
    fail(`${err.message} (is the address right, the server up, the network configured?)`);
  let socket: tls.TLSSocket | undefined;
  try {
    socket = o.fingerprint ? await pinnedSocket(u, normalizeFingerprint(o.fingerprint), timeoutMs) : undefined;
  } catch (err) {
    throw err instanceof PinError ? fail(err.message) : unreachable(err as Error);
  }
  return new Promise((resolve, reject) => {
    // Over the pinned socket, the pin has decided. No `agent`: with `agent: false` Node makes an
    // agent of its own, which ignores `createConnection` and opens a second, unchecked connection.
    const options: https.RequestOptions = socket ? { createConnection: () => socket } : {};
    const req = httpModuleFor(u).get(u, { ...options, timeout: timeoutMs }, (res) => {
      // One request per connection: once the body is read (or abandoned) the socket goes too,
      // rather than idling until a timer ends it.
      const connection = res.socket;
      res.once('close', () => {
        connection?.destroy();
        socket?.destroy();
      });
      if (res.statusCode === 200) return resolve(res);
      res.resume();
      reject(fail(`the server answered ${res.statusCode} ${res.statusMessage ?? ''}`.trimEnd()));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer in ${timeoutMs / 1000} s`)));
    req.on('error', (err) => reject(unreachable(err)));
  });
}

/** Fetches the answers over HTTP(S): bounded, with a deadline, pinned when a fingerprint is given. */
export async function fetchAnswers(url: string, fingerprint?: string, timeoutMs = 30_000): Promise<string> {
  const what = `the answers at ${url}`;
  const res = await getUrl(url, what, { fingerprint, timeoutMs });
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const c of res as AsyncIterable<Buffer>) {
    bytes += c.length;
    if (bytes > MAX_ANSWERS_BYTES) {
      res.destroy();
      throw new AnswersError(`${what}: more than ${MAX_ANSWERS_BYTES} bytes: not an answer file`);
    }
    chunks.push(c);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Kits named by URL in the answers (`kits.urls`). */
export interface KitUrl {
  url: string;
  fingerprint?: string;
}

/**
 * Checks every kit URL answers 200 (its certificate's pin first), before any disk is touched:
 * an unreachable server or a wrong fingerprint is refused naming the URL. Nothing is downloaded.
 */
export async function probeKitUrls(urls: KitUrl[], timeoutMs = 30_000): Promise<void> {
  for (const k of urls) {
    const res = await getUrl(k.url, `the kit at ${k.url}`, { fingerprint: k.fingerprint, timeoutMs });
    res.destroy();
  }
}

/**
 * Streams a kit into `file` (created new, 0600), pinned as the answers are. Its bytes are not
 * trusted: the depot verifies the kit whole before it stores anything of it.
 */
export async function fetchKit(k: KitUrl, file: string, stallMs = 60_000): Promise<number> {
  const res = await getUrl(k.url, `the kit at ${k.url}`, { fingerprint: k.fingerprint, timeoutMs: stallMs });
  let bytes = 0;
  res.on('data', (c: Buffer) => {
    bytes += c.length;
  });
  await pipeline(res, fs.createWriteStream(file, { flags: 'wx', mode: 0o600 })).catch((err: Error) => {
    throw new AnswersError(`the kit at ${k.url}: ${err.message} after ${bytes} bytes`);
  });
  return bytes;
}

function readBounded(file: string): string {
  const st = fs.statSync(file);
  if (st.size > MAX_ANSWERS_BYTES) throw new AnswersError(`${file}: ${st.size} bytes: not an answer file`);
  return fs.readFileSync(file, 'utf8');
}

/** The answers' text and where it was found, for the log and the messages. */
export async function readAnswers(
  loc: AnswersLocation,
  opts: { media?: string } = {},
): Promise<{ text: string; from: string }> {
  switch (loc.kind) {
    case 'url':
      return { text: await fetchAnswers(loc.url, loc.fingerprint), from: loc.url };
    case 'media': {
      // On the medium when there is one (the ISO), else as a person on a running system means it.
      const file = opts.media ? path.join(opts.media, loc.path) : path.resolve(loc.path);
      if (!fs.existsSync(file)) throw new AnswersError(`no answer file at ${file} (cradle.answers=${loc.path})`);
      return { text: readBounded(file), from: file };
    }
    case 'label': {
      const found = await run('blkid', ['-L', loc.label]).catch(() => undefined);
      const device = found?.stdout.trim();
      if (!device)
        throw new AnswersError(
          `no file system labelled ${loc.label} (cradle.answers=label:${loc.label}): is the stick in?`,
        );
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cradle-answers-'));
      try {
        await run('mount', ['-o', 'ro', device, dir]);
        try {
          const name = ANSWER_FILE_NAMES.find((n) => fs.existsSync(path.join(dir, n)));
          if (!name)
            throw new AnswersError(
              `${device} (label ${loc.label}) has none of ${ANSWER_FILE_NAMES.join(', ')} at its top`,
            );
          return { text: readBounded(path.join(dir, name)), from: `${device}:/${name}` };
        } finally {
          await run('umount', [dir]);
        }
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    }
  }
}
