// The options of a read request (RFC 2347 blksize 2348, timeout and tsize 2349, windowsize 7440)
// against the server's limits: what the transfer uses and the OACK that says so.
import { encodeOack, type TftpOptions } from '../../protocols/tftp/packets.ts';

/** Window sizes stay below half the 16-bit block space, so an ACK's block is never ambiguous. */
export const MAX_WINDOWSIZE = 32767;
/**
 * RFC 2349 allows up to 255 s; a client asking for more than this is not given it (the option is
 * left out), since a vanished client would hold its transfer for (retries + 1) times as long.
 */
const MAX_TIMEOUT_S = 60;

export interface Negotiated {
  blksize: number;
  windowsize: number;
  timeoutMs: number;
  oack: Buffer | undefined;
}

/**
 * The options honoured, clamped to the server's limits, in the order asked. An option the server
 * does not know or whose value it cannot use is left out of the OACK (RFC 2347), never refused:
 * PXE ROMs do not retry without options. With no option honoured, there is no OACK and the
 * transfer is plain RFC 1350 (512-byte blocks, one at a time).
 */
export function negotiate(
  options: TftpOptions,
  size: number,
  limits: { maxBlksize: number; maxWindowsize: number; timeoutMs: number },
): Negotiated {
  const out: Negotiated = { blksize: 512, windowsize: 1, timeoutMs: limits.timeoutMs, oack: undefined };
  const reply: [string, string][] = [];
  for (const [name, value] of options) {
    if (!/^[0-9]{1,10}$/.test(value)) continue;
    const n = Number(value);
    if (name === 'blksize' && n >= 8) {
      out.blksize = Math.min(n, limits.maxBlksize);
      reply.push([name, String(out.blksize)]);
    } else if (name === 'windowsize' && n >= 1) {
      out.windowsize = Math.min(n, limits.maxWindowsize);
      reply.push([name, String(out.windowsize)]);
    } else if (name === 'timeout' && n >= 1 && n <= MAX_TIMEOUT_S) {
      out.timeoutMs = n * 1000;
      reply.push([name, String(n)]);
    } else if (name === 'tsize' && size > 0) reply.push([name, String(size)]);
    // An empty file's tsize is left out: curl (7.88) takes "tsize 0" for an invalid OACK and fails.
    // A client that gets no tsize just learns the size by the transfer, which here is one empty block.
  }
  if (reply.length) out.oack = encodeOack(reply);
  return out;
}
