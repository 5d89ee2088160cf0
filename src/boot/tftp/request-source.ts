// What a read request is answered with: the resolve hook's bytes, or a file opened with every
// check (paths.ts) and lent to the transfer thread by its descriptor.
import { ERROR_CODE } from '../../protocols/tftp/packets.ts';
import { normaliseName, type OpenedFile, openFile, openInRoot, TftpRefusal } from './paths.ts';
import { toNetascii } from './source.ts';
import type { SourceSpec } from './transfer-thread.ts';

export interface TftpClient {
  address: string;
  port: number;
}

/**
 * Consulted before the file system with the normalised name (no leading '/', no '..'):
 * a Buffer is served as the file, a string is a path to serve (absolute: trusted as is; relative:
 * looked up in the root with every check a client's name gets), undefined falls back to the root,
 * null answers "file not found" without looking in the root (a name the hook owns).
 */
export type TftpResolve = (
  file: string,
  client: TftpClient,
) => Promise<Buffer | Uint8Array | string | null | undefined>;

/** What the transfer sends, its size, and `close` for the caller once the transfer is done. */
export interface RequestSource {
  spec: SourceSpec;
  size: number;
  close(): Promise<void>;
}

/**
 * What to send for `name` (normalised): the resolve hook's bytes or path, or the file in `root`,
 * opened and checked; netascii converted whole, in memory.
 */
export async function openRequestSource(
  name: string,
  mode: string,
  client: TftpClient,
  o: { resolve?: TftpResolve; root?: string; maxNetasciiBytes: number },
): Promise<RequestSource> {
  let found: Buffer | Uint8Array | string | null | undefined;
  if (o.resolve) {
    try {
      found = await o.resolve(name, client);
    } catch (err) {
      throw new TftpRefusal(ERROR_CODE.notDefined, `virtual file failed: ${(err as Error).message}`);
    }
  }
  if (found === null) throw new TftpRefusal(ERROR_CODE.fileNotFound, 'file not found');
  const bytes = (given: Uint8Array): RequestSource => {
    const data = mode === 'netascii' ? toNetascii(Buffer.from(given)) : given;
    return { spec: { kind: 'bytes', data }, size: data.length, close: async () => {} };
  };
  if (found !== undefined && typeof found !== 'string') return bytes(found);
  const absolute = found?.startsWith('/') ?? false;
  if (!absolute && o.root === undefined) throw new TftpRefusal(ERROR_CODE.fileNotFound, 'file not found');
  const file = absolute
    ? await openFile(found!)
    : await openInRoot(o.root!, found === undefined ? name : normaliseName(found));
  if (mode !== 'netascii') {
    const { dev, ino, mtimeMs, ctimeMs } = file.stat;
    return {
      spec: { kind: 'file', fd: file.handle.fd, stat: { dev, ino, size: file.size, mtimeMs, ctimeMs } },
      size: file.size,
      close: () => file.handle.close(),
    };
  }
  // netascii changes the length, and tsize must be exact: the file is converted whole, in memory.
  try {
    if (file.size > o.maxNetasciiBytes)
      throw new TftpRefusal(
        ERROR_CODE.notDefined,
        `file too large for netascii (over ${o.maxNetasciiBytes} bytes): ask in octet mode`,
      );
    return bytes(await readWhole(file));
  } finally {
    await file.handle.close();
  }
}

/** The opened file's `size` bytes, as fstat gave them when it was opened. */
async function readWhole(file: OpenedFile): Promise<Buffer> {
  const out = Buffer.allocUnsafe(file.size);
  for (let got = 0; got < file.size; ) {
    const { bytesRead } = await file.handle.read(out, got, file.size - got, got);
    if (bytesRead === 0) throw new Error(`file shrank while being read (to ${got} of ${file.size} bytes)`);
    got += bytesRead;
  }
  return out;
}
