// Shared fixtures for the integration tests: temporary directories, an in-process image server,
// a tree with every kind of inode and metadata an OS image holds, and a metadata-checking tree diff.
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import type http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { createImageServer, listen, type TlsFiles } from '../src/image/transfer/server.ts';
import type { ImageStore } from '../src/image/store/store.ts';
import { getXattrs, splitDev } from '../src/system/libc.ts';
import { mountsUnder } from '../src/system/mounts.ts';

export const repoRoot = path.resolve(import.meta.dirname, '..');
export const cradleBin = path.join(repoRoot, 'bin', 'cradle');
const execFileAsync = promisify(execFile);

export function tmpDir(prefix = 'cradle-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/**
 * Removes a test's work directory, refusing to if anything is still mounted under it: a recursive
 * remove through a bind mount of the host's /dev or /tmp would wipe the host's.
 */
export function removeWorkDir(dir: string): void {
  for (const m of mountsUnder(dir).reverse()) execFileSync('umount', ['-l', m]);
  const left = mountsUnder(dir);
  if (left.length) throw new Error(`not removing ${dir}: still mounted under it: ${left.join(', ')}`);
  fs.rmSync(dir, { recursive: true, force: true });
}

export function sh(cmd: string, args: string[], opts: { cwd?: string; input?: string } = {}): string {
  return execFileSync(cmd, args, {
    encoding: 'utf8',
    cwd: opts.cwd,
    input: opts.input,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

/**
 * curl, the peer client of Cradle's web ports: the status code and the body. `via` runs it
 * somewhere else, e.g. ['ip', 'netns', 'exec', NS].
 */
export async function curlStatus(args: string[], via: string[] = []): Promise<{ status: number; body: string }> {
  const argv = [...via, 'curl', '-sS', '-o', '-', '-w', '\n%{http_code}', ...args];
  const { stdout } = await execFileAsync(argv[0], argv.slice(1), { encoding: 'utf8' });
  const i = stdout.lastIndexOf('\n');
  return { status: Number(stdout.slice(i + 1)), body: stdout.slice(0, i) };
}

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/** Starts an image server on a free loopback port; `close()` stops it. */
export async function startImageServer(
  store: ImageStore,
  tls?: TlsFiles,
  options: { fastLane?: boolean } = {},
): Promise<{ url: string; server: http.Server; close: () => Promise<void> }> {
  const server = createImageServer({ store, tls, ...options });
  const addr: AddressInfo = await listen(server, 0, '127.0.0.1');
  const url = `${tls ? 'https' : 'http'}://127.0.0.1:${addr.port}`;
  return {
    url,
    server,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * Builds, as root, a tree holding everything the image format must carry: nested directories with
 * odd modes, setuid/setgid files, a file capability, a POSIX ACL, a user xattr, foreign owners,
 * nanosecond mtimes, symlinks (absolute, relative, dangling), a hard-link group, a FIFO, character
 * and block devices, a sparse file, an empty file and a large file.
 */
export function makeFeatureTree(root: string): void {
  const p = (rel: string) => path.join(root, rel);
  fs.mkdirSync(p('usr/bin'), { recursive: true });
  fs.mkdirSync(p('etc/deep/er/still'), { recursive: true });
  fs.mkdirSync(p('dev'));
  fs.mkdirSync(p('tmp'));
  fs.chmodSync(p('tmp'), 0o1777);
  fs.writeFileSync(p('usr/bin/su'), 'setuid binary\n');
  fs.chmodSync(p('usr/bin/su'), 0o4755);
  fs.writeFileSync(p('usr/bin/wall'), 'setgid binary\n');
  fs.chownSync(p('usr/bin/wall'), 0, 5);
  fs.chmodSync(p('usr/bin/wall'), 0o2755);
  fs.writeFileSync(p('usr/bin/ping'), 'capable binary\n');
  fs.chmodSync(p('usr/bin/ping'), 0o755);
  sh('setcap', ['cap_net_raw+ep', p('usr/bin/ping')]);
  fs.writeFileSync(p('etc/acl-file'), 'acl\n');
  sh('setfacl', ['-m', 'u:1234:rw', p('etc/acl-file')]);
  fs.writeFileSync(p('etc/user-xattr'), 'xattr\n');
  sh('setfattr', ['-n', 'user.cradle', '-v', '0xdeadbeef00ff', p('etc/user-xattr')]);
  fs.writeFileSync(p('etc/deep/er/still/owned'), 'owned\n');
  fs.chownSync(p('etc/deep/er/still/owned'), 1234, 5678);
  fs.chownSync(p('etc/deep/er'), 4321, 8765);
  fs.chmodSync(p('etc/deep/er'), 0o750);
  fs.writeFileSync(p('etc/empty'), '');
  fs.symlinkSync('/usr/bin/su', p('usr/bin/absolute-link'));
  fs.symlinkSync('../bin/su', p('etc/relative-link'));
  fs.symlinkSync('nowhere/at/all', p('etc/dangling-link'));
  fs.lchownSync(p('etc/dangling-link'), 77, 88);
  fs.writeFileSync(p('usr/bin/perl'), 'hard linked\n');
  fs.linkSync(p('usr/bin/perl'), p('usr/bin/perl5.36'));
  fs.linkSync(p('usr/bin/perl'), p('etc/perl-too'));
  fs.writeFileSync(p('usr/bin/same-content-other-inode'), 'hard linked\n');
  sh('mkfifo', ['-m', '0620', p('dev/initctl')]);
  sh('mknod', ['-m', '0666', p('dev/null'), 'c', '1', '3']);
  sh('mknod', ['-m', '0660', p('dev/sda'), 'b', '8', '0']);
  sh('mknod', ['-m', '0600', p('dev/big-minor'), 'c', '259', '300000']);
  const sparse = fs.openSync(p('etc/sparse'), 'w');
  fs.writeSync(sparse, Buffer.from('head'), 0, 4, 0);
  fs.writeSync(sparse, Buffer.from('middle'), 0, 6, 8 * 1024 * 1024);
  fs.ftruncateSync(sparse, 32 * 1024 * 1024);
  fs.closeSync(sparse);
  const big = Buffer.alloc(40 * 1024 * 1024);
  for (let i = 0; i < big.length; i += 4096) big.writeUInt32LE((i * 2654435761) >>> 0, i);
  fs.writeFileSync(p('usr/big-file'), big);
  // Incompressible and over the server's whole-read limit: streamed from disk in batch responses.
  fs.writeFileSync(p('usr/random-large'), randomBytes(20 * 1024 * 1024));
  // Nanosecond mtimes, set last (bottom-up) so creating entries does not disturb them.
  sh('touch', ['-h', '-d', '@1700000000.123456789', p('usr/bin/su')]);
  sh('touch', ['-h', '-d', '@1600000000.000000001', p('etc/dangling-link')]);
  sh('touch', ['-d', '@1500000000.999999999', p('etc/deep/er/still')]);
  sh('touch', ['-d', '@1400000000.5', p('etc/deep')]);
}

export interface TreeNode {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  mtimeNs: bigint;
  size: bigint;
  blocks: bigint;
  sha256?: string;
  target?: string;
  rdev?: string;
  xattrs: Record<string, string>;
  inode: string;
}

/** Every path of a tree with the metadata a faithful copy must keep. */
export function describeTree(root: string, skip: (rel: string) => boolean = () => false): Map<string, TreeNode> {
  const out = new Map<string, TreeNode>();
  const visit = (rel: string) => {
    const abs = rel === '.' ? root : path.join(root, rel);
    const st = fs.lstatSync(abs, { bigint: true });
    const type = st.isDirectory()
      ? 'dir'
      : st.isFile()
        ? 'file'
        : st.isSymbolicLink()
          ? 'symlink'
          : st.isCharacterDevice()
            ? 'char'
            : st.isBlockDevice()
              ? 'block'
              : st.isFIFO()
                ? 'fifo'
                : 'other';
    const xattrs: Record<string, string> = {};
    for (const [k, v] of Object.entries(getXattrs(abs))) xattrs[k] = v.toString('hex');
    const node: TreeNode = {
      type,
      mode: Number(st.mode & 0o7777n),
      uid: Number(st.uid),
      gid: Number(st.gid),
      mtimeNs: st.mtimeNs,
      size: type === 'dir' ? 0n : st.size,
      blocks: st.blocks,
      xattrs,
      inode: `${st.ino}`,
    };
    if (type === 'file') node.sha256 = createHash('sha256').update(fs.readFileSync(abs)).digest('hex');
    if (type === 'symlink') node.target = fs.readlinkSync(abs);
    if (type === 'char' || type === 'block') node.rdev = JSON.stringify(splitDev(st.rdev));
    out.set(rel, node);
    if (type === 'dir' && (rel === '.' || st.dev === fs.lstatSync(root, { bigint: true }).dev)) {
      for (const name of fs.readdirSync(abs).sort()) {
        const child = rel === '.' ? name : `${rel}/${name}`;
        if (!skip(child)) visit(child);
      }
    }
  };
  visit('.');
  return out;
}

/**
 * Differences between two trees, as readable lines (empty when faithful). Hard links are compared
 * as groups of paths sharing an inode; sparse files must not take more blocks than the original.
 */
export function diffTrees(a: Map<string, TreeNode>, b: Map<string, TreeNode>): string[] {
  const problems: string[] = [];
  for (const [rel, x] of a) {
    const y = b.get(rel);
    if (!y) {
      problems.push(`${rel}: missing`);
      continue;
    }
    for (const key of ['type', 'mode', 'uid', 'gid', 'mtimeNs', 'size', 'sha256', 'target', 'rdev'] as const) {
      if (x[key] !== y[key]) problems.push(`${rel}: ${key} ${String(x[key])} became ${String(y[key])}`);
    }
    if (JSON.stringify(x.xattrs) !== JSON.stringify(y.xattrs))
      problems.push(`${rel}: xattrs ${JSON.stringify(x.xattrs)} became ${JSON.stringify(y.xattrs)}`);
    if (x.type === 'file' && x.blocks * 512n < x.size && y.blocks > x.blocks)
      problems.push(`${rel}: sparse file took ${y.blocks} blocks, the original ${x.blocks}`);
  }
  for (const rel of b.keys()) if (!a.has(rel)) problems.push(`${rel}: unexpected extra path`);
  const groups = (t: Map<string, TreeNode>) => {
    const byInode = new Map<string, string[]>();
    for (const [rel, n] of t) if (n.type !== 'dir') byInode.set(n.inode, [...(byInode.get(n.inode) ?? []), rel]);
    return new Set([...byInode.values()].filter((g) => g.length > 1).map((g) => g.sort().join(' = ')));
  };
  const ga = groups(a);
  const gb = groups(b);
  for (const g of ga) if (!gb.has(g)) problems.push(`hard-link group lost: ${g}`);
  for (const g of gb) if (!ga.has(g)) problems.push(`unexpected hard-link group: ${g}`);
  return problems;
}

/**
 * The command line of an installer that fails at once (it refuses a real install on a system that
 * runs from a disk, this one) and then waits `failureWait` seconds: the state an operator uses its
 * port in. Its files go under `work`; with `status`, its port listens on a free loopback port.
 * Wrapped in `unshare` (a mount namespace of its own, and more with `namespaces`).
 */
export function failingInstaller(
  work: string,
  o: { failureWait: number; status: boolean; namespaces?: string[] },
  extra: string[] = [],
): string[] {
  fs.mkdirSync(path.join(work, 'sys', 'class', 'net'), { recursive: true });
  return [
    'unshare',
    ...(o.namespaces ?? ['--mount', '--propagation', 'private']),
    cradleBin,
    'installer',
    '--no-dry-run',
    '--no-reboot',
    '--failure-wait',
    String(o.failureWait),
    ...(o.status ? ['--status-address', '127.0.0.1', '--status-port', '0'] : ['--no-status']),
    '--tftp-directory',
    path.join(work, 'tftp'),
    '--log-directory',
    path.join(work, 'log'),
    '--sysfs-directory',
    path.join(work, 'sys'),
    '--build-timestamp',
    path.join(work, 'none'),
    ...extra,
  ];
}

/** `cradle ARGS` must fail, saying `why` on stderr. */
export async function cradleFails(args: string[], why: RegExp, env?: NodeJS.ProcessEnv): Promise<void> {
  const stderr = await execFileAsync(cradleBin, args, { encoding: 'utf8', env }).then(
    () => undefined,
    (e: { stderr: string }) => e.stderr,
  );
  assert.ok(stderr !== undefined, `cradle ${args.join(' ')} should fail`);
  assert.match(stderr, why);
}
