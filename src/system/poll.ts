// poll(2) through node:ffi. It blocks the calling thread: only for worker threads (the DHCP
// server's receiving thread, the TFTP server's transfer thread).
import { constants as osConstants } from 'node:os';
import { addressOf, errno, glibc, syscallError } from './glibc.ts';

const POLLIN = 1;
const { EINTR } = osConstants.errno;

/** A poll(2) set of file descriptors, each watched for reading, kept between calls. */
export class PollSet {
  private set = Buffer.alloc(0);
  /** Where `set` is, as the binding takes it (addressOf): found once per buffer, not per wait. */
  private setAddress = 0n;
  private fds: number[] = [];
  /** How many, as the FFI binding takes it (a BigInt), made once per set rather than per wait. */
  private count = 0n;

  /** Watches exactly `fds` from the next wait on. */
  watch(fds: number[]): void {
    this.fds = fds;
    this.count = BigInt(fds.length);
    if (this.set.length < fds.length * 8 || this.setAddress === 0n) {
      this.set = Buffer.alloc(Math.max(64, fds.length * 2) * 8);
      this.setAddress = addressOf(this.set);
    }
    fds.forEach((fd, i) => {
      this.set.writeInt32LE(fd, i * 8);
      this.set.writeInt16LE(POLLIN, i * 8 + 4);
    });
  }

  /**
   * Blocks until a watched descriptor is readable (or has an error) or `timeoutMs` passes; calls
   * `ready` with each such descriptor.
   */
  wait(timeoutMs: number, ready: (fd: number) => void): void {
    const count = this.fds.length;
    for (let i = 0; i < count; i++) this.set.writeInt16LE(0, i * 8 + 6);
    const n = glibc().poll(this.setAddress, this.count, timeoutMs);
    if (n < 0) {
      const e = errno();
      if (e === EINTR) return;
      throw syscallError('poll', `on ${count} descriptors`, e);
    }
    for (let i = 0, left = n; i < count && left > 0; i++)
      if (this.set.readInt16LE(i * 8 + 6) !== 0) {
        left--;
        ready(this.fds[i]);
      }
  }
}

/**
 * Blocks until one of `fds` is readable or `timeoutMs` passes (-1: forever); returns the readable
 * ones (any revents: POLLIN, or POLLERR/POLLHUP/POLLNVAL, means "look at this fd now").
 */
export function pollReadable(fds: number[], timeoutMs: number): number[] {
  const set = new PollSet();
  set.watch(fds);
  const ready: number[] = [];
  set.wait(timeoutMs, (fd) => ready.push(fd));
  return ready;
}
