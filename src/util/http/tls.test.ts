// The TLS profile every Cradle server uses (tls.ts), against a real node:https server on loopback.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import tls from 'node:tls';
import { loopbackServerTls } from '../../../test/pki-fixtures.ts';
import { SERVER_TLS_PROFILE } from './tls.ts';

describe('SERVER_TLS_PROFILE', () => {
  let dir: string;
  let server: https.Server;
  let port: number;
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cradle-tls-'));
    server = https.createServer({ ...SERVER_TLS_PROFILE, ...(await loopbackServerTls(dir)) }, (_req, res) =>
      res.end('ok'),
    );
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  after(async () => {
    server?.closeAllConnections();
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a renegotiation the client starts on TLS 1.2 (one left unfinished would stall every answer after it)', async () => {
    const socket = tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false, maxVersion: 'TLSv1.2' });
    try {
      await new Promise((r) => socket.once('secureConnect', r));
      assert.equal(socket.getProtocol(), 'TLSv1.2');
      const refused = await new Promise<string>((resolve) => {
        socket.once('error', (err) => resolve(err.message));
        socket.once('close', () => resolve('closed'));
        socket.renegotiate({}, (err) => resolve(err ? err.message : 'renegotiated'));
      });
      assert.match(refused, /no renegotiation|closed/);
    } finally {
      socket.destroy();
    }
  });
});
