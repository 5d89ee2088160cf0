// How a QEMU machine's serial console reaches the host, for RunningMachine (qemu.ts): QEMU's own
// stdin and stdout (pipes), or a PTY QEMU makes (a real terminal, as a person at a serial console
// has: the setup wizard asks line by line on it). Either way the console is bytes in, bytes out.
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import tty from 'node:tty';

export type ConsoleMode = 'stdio' | 'pty';

/** The console as RunningMachine uses it: keys to the machine, and when its output ends. */
export interface ConsoleTransport {
  write(data: string | Uint8Array): void;
  /** Resolves once no more output will come (the machine's side is gone, or close() was called). */
  readonly ended: Promise<void>;
  close(): void;
}

/** The label of the PTY character device: `char device redirected to /dev/pts/N (label con0)`. */
export const PTY_LABEL = 'con0';

/**
 * QEMU's arguments for the console: stdio, or a PTY whose output QEMU also appends to `log` (so
 * what the machine printed before anyone opened the PTY is kept).
 */
export function consoleArgs(mode: ConsoleMode, log?: string): string[] {
  if (mode === 'stdio') return ['-serial', 'stdio'];
  if (!log) throw new Error('a PTY console needs its log file: QEMU writes the console output there');
  return [
    '-chardev',
    `pty,id=${PTY_LABEL},logfile=${log.replaceAll(',', ',,')},logappend=on`,
    '-serial',
    `chardev:${PTY_LABEL}`,
  ];
}

/** The PTY QEMU says it made for the console, from what it prints at start (QEMU 7 on stdout). */
export function ptyDevice(said: string): string | undefined {
  return new RegExp(`char device redirected to (/dev/pts/\\d+) \\(label ${PTY_LABEL}\\)`).exec(said)?.[1];
}

/** The console on QEMU's stdin and stdout. */
export function stdioConsole(child: ChildProcess, onData: (chunk: Buffer) => void): ConsoleTransport {
  child.stdin!.on('error', () => {});
  child.stdout!.on('data', onData);
  return {
    write: (data) => void child.stdin!.write(data),
    // 'close', not 'exit': the console's last output may still be in the pipe at 'exit'.
    ended: new Promise((r) => child.once('close', () => r())),
    close: () => child.stdin!.end(),
  };
}

/**
 * The console on QEMU's PTY, opened as a terminal: raw (the host's line discipline neither echoes
 * what the machine prints back into it nor holds keys until Enter), without becoming this
 * process's controlling terminal. Output ends when QEMU closes its side (reads then fail with EIO,
 * after what was buffered has been read).
 */
export function openPtyConsole(device: string, onData: (chunk: Buffer) => void): ConsoleTransport {
  const { O_RDWR, O_WRONLY, O_NOCTTY } = fs.constants;
  const reader = new tty.ReadStream(fs.openSync(device, O_RDWR | O_NOCTTY));
  reader.setRawMode(true);
  // A file stream writes from the thread pool: a machine that reads no keys (its UART full) holds
  // up one write, never the event loop (tty.WriteStream writes block).
  const writer = fs.createWriteStream(device, { fd: fs.openSync(device, O_WRONLY | O_NOCTTY) });
  writer.on('error', () => {});
  const ended = new Promise<void>((resolve) => {
    reader.on('data', (chunk: Buffer) => onData(chunk));
    reader.once('error', () => reader.destroy());
    reader.once('close', () => {
      writer.destroy();
      resolve();
    });
  });
  reader.resume();
  return {
    write: (data) => {
      if (!writer.destroyed) writer.write(data);
    },
    ended,
    close: () => reader.destroy(),
  };
}
