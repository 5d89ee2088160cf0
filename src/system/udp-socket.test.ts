// Connected UDP sockets and poll(2) through node:ffi, against node:dgram peers on loopback.
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { PollSet } from './poll.ts';
import { ConnectedUdpSocket, sockaddrIn } from './udp-socket.ts';

async function peer(): Promise<dgram.Socket> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  return s;
}
const portOf = (s: dgram.Socket) => (s.address() as AddressInfo).port;

describe('ConnectedUdpSocket and PollSet', () => {
  it('sends to its peer, receives only from it, and polls readable', async () => {
    const p = await peer();
    const stranger = await peer();
    const u = new ConnectedUdpSocket('127.0.0.1', { address: '127.0.0.1', port: portOf(p) });
    const buf = Buffer.alloc(2048);
    try {
      const got = new Promise<[Buffer, dgram.RemoteInfo]>((r) => p.once('message', (m, i) => r([m, i])));
      assert.equal(u.send(Buffer.from('hello')), 0);
      const [msg, from] = await got;
      assert.equal(msg.toString(), 'hello');
      assert.equal(u.receive(buf), -1, 'nothing queued');
      const poll = new PollSet();
      poll.watch([u.fd]);
      let early = 0;
      poll.wait(0, () => early++);
      assert.equal(early, 0, 'not readable yet');
      const ready: number[] = [];
      // A stranger's datagram never reaches a connected socket; the peer's does.
      await new Promise((r) => stranger.send('not for you', from.port, '127.0.0.1', r));
      await new Promise((r) => p.send('ack', from.port, '127.0.0.1', r));
      for (let i = 0; i < 100 && ready.length === 0; i++) poll.wait(50, (fd) => ready.push(fd));
      assert.deepEqual(ready, [u.fd]);
      const n = u.receive(buf);
      assert.equal(buf.subarray(0, n).toString(), 'ack');
      assert.equal(u.receive(buf), -1, 'the stranger was dropped by the kernel');
    } finally {
      u.close();
      p.close();
      stranger.close();
    }
  });

  it('reports a peer that has gone (ICMP port unreachable) as ECONNREFUSED', async () => {
    const p = await peer();
    const port = portOf(p);
    await new Promise<void>((r) => p.close(() => r()));
    const u = new ConnectedUdpSocket('127.0.0.1', { address: '127.0.0.1', port });
    const buf = Buffer.alloc(64);
    try {
      assert.equal(u.send(Buffer.from('anyone?')), 0);
      const poll = new PollSet();
      poll.watch([u.fd]);
      let ready = false;
      for (let i = 0; i < 100 && !ready; i++) poll.wait(50, () => (ready = true));
      assert.ok(ready, 'the error makes the socket readable');
      assert.throws(() => u.receive(buf), { code: 'ECONNREFUSED' });
    } finally {
      u.close();
    }
  });

  it('refuses what is not an IPv4 address, naming it', () => {
    assert.throws(() => sockaddrIn('::1', 69), /not an IPv4 address: '::1'/);
    assert.throws(() => sockaddrIn('10.0.0.256', 69), /not an IPv4 address/);
    assert.throws(() => sockaddrIn('1..2.3', 69), /not an IPv4 address/);
    assert.deepEqual([...sockaddrIn('10.1.2.3', 69).subarray(0, 8)], [2, 0, 0, 69, 10, 1, 2, 3]);
  });
});
