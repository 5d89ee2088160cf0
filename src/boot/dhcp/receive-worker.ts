// The DHCP server's receiving thread: one packet socket per (interface, port), read as soon as
// the kernel queues something. node:ffi calls are synchronous and Node cannot watch a foreign fd,
// so the main thread could only poll on a timer (the client's 10 ms); a server answers a rack of
// machines at once and should add no latency of its own, so this thread blocks in poll(2) instead
// and hands each batch to the main thread. The main thread stops it through an eventfd.
import { parentPort, workerData } from 'node:worker_threads';
import { PacketReceiver } from '../../protocols/dhcp/socket.ts';
import { pollReadable } from '../../system/poll.ts';

export interface ReceiveWorkerData {
  listen: { ifname: string; port: number }[];
  wakeFd: number;
}

/** What the worker posts: 'ready' once, then batches; 'error' ends it. */
export type ReceiveMessage =
  | { kind: 'ready' }
  | { kind: 'error'; message: string }
  | { kind: 'lost'; ifname: string; message: string }
  | {
      kind: 'batch';
      ifname: string;
      packets: {
        source: string;
        destination: string;
        sourcePort: number;
        destinationPort: number;
        payload: Uint8Array;
      }[];
      /** Frames on the port that were not whole IPv4/UDP datagrams. */
      malformed: string[];
    };

/** A DHCP message whose giaddr (bytes 24-27) is set: it came through a relay agent. */
const relayed = (m: Uint8Array) => m.length >= 28 && (m[24] | m[25] | m[26] | m[27]) !== 0;

const data = workerData as ReceiveWorkerData;
const post = (m: ReceiveMessage) => parentPort!.postMessage(m);
const receivers: PacketReceiver[] = [];
try {
  for (const l of data.listen) receivers.push(new PacketReceiver(l.ifname, l.port));
  post({ kind: 'ready' });
  const byFd = new Map(receivers.map((r) => [r.fd, r]));
  for (;;) {
    const ready = pollReadable([data.wakeFd, ...byFd.keys()], -1);
    if (ready.includes(data.wakeFd)) break;
    for (const fd of ready) {
      const r = byFd.get(fd)!;
      let got: ReturnType<typeof r.drain>;
      try {
        got = r.drain();
      } catch (err) {
        // This interface is gone (deleted, or an error that will not clear): stop polling it, keep the others.
        post({ kind: 'lost', ifname: r.ifname, message: (err as Error).message });
        byFd.delete(fd);
        r.close();
        continue;
      }
      if (got.length === 0) continue;
      const packets = [];
      const malformed = [];
      for (const d of got) {
        if (typeof d === 'string') malformed.push(d);
        // A relayed request (giaddr set) is the UDP socket's to answer (server.ts receive): not
        // copied and posted only to be dropped there, which under a relay's flood was a twentieth
        // of the main thread's time.
        else if (relayed(d.payload)) continue;
        // A copy of exactly the payload: a view into a pooled buffer would clone the whole pool.
        else packets.push({ ...d, payload: new Uint8Array(d.payload) });
      }
      if (packets.length || malformed.length) post({ kind: 'batch', ifname: r.ifname, packets, malformed });
    }
  }
} catch (err) {
  post({ kind: 'error', message: (err as Error).message });
} finally {
  for (const r of receivers) r.close();
}
