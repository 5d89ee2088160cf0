// The transfer thread's engine on loopback: a transfer lost with a thread that dies ends as
// failed, its socket is closed, and the next transfer starts a new thread. (The thread is stopped
// from outside, by terminate(): no input makes it die, which is the point.)
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { describe, it } from 'node:test';
import type { Worker } from 'node:worker_threads';
import { encodeAck } from '../../protocols/tftp/packets.ts';
import { RawClient } from '../../../test/support/tftp-peers.ts';
import { TransferEngine } from './transfer-engine.ts';

const request = (port: number, data: Buffer) => ({
  local: '127.0.0.1',
  client: { address: '127.0.0.1', port },
  source: { kind: 'bytes' as const, data },
  blksize: 512,
  windowsize: 1,
  timeoutMs: 1000,
  retries: 50,
});

describe('TransferEngine', () => {
  it('a thread that dies fails the transfers it held and its sockets are closed; the next transfer runs on a new thread', async () => {
    const lines: string[] = [];
    const engine = await TransferEngine.start({ cacheBytes: 0, maxTransfers: 4 }, (l) => lines.push(l));
    const client = await RawClient.open();
    try {
      const data = Buffer.alloc(2000, 'x');
      const first = engine.transfer(request(client.port, data));
      const block = await client.next();
      assert.equal(block?.packet.op, 'data');
      await (engine as unknown as { worker: Worker }).worker.terminate();
      const lost = await first.done;
      assert.ok('failed' in lost && /transfer thread stopped/.test(lost.failed), JSON.stringify(lost));
      assert.ok(
        lines.some((l) => /1 transfer\(s\) are lost \(1 socket\(s\) closed\)/.test(l)),
        lines.join('\n'),
      );
      // The dead thread's socket is closed: its port can be bound again.
      const reuse = dgram.createSocket('udp4');
      try {
        await new Promise<void>((resolve, reject) => {
          reuse.once('error', reject);
          reuse.bind(block!.port, '127.0.0.1', resolve);
        });
      } finally {
        reuse.close();
      }

      const second = engine.transfer(request(client.port, Buffer.from('after')));
      let r = await client.next(5000);
      while (r?.packet.op === 'data' && r.packet.block !== 1) r = await client.next(5000); // the first's retransmissions, if any
      assert.ok(r?.packet.op === 'data' && r.packet.data.toString() === 'after', JSON.stringify(r?.packet));
      await client.send(encodeAck(1), r.port);
      const end = await second.done;
      assert.ok('outcome' in end && end.outcome.ok, JSON.stringify(end));
      assert.equal(second.heard, true, 'its client acknowledged a block');
    } finally {
      client.close();
      await engine.close();
    }
  });
});
