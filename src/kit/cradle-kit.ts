// The Cradle kit (Kusu's "base" kit): what a head node needs of Cradle itself, built from this
// source tree as an add-on kit for any OS. Its `cradle` component is the pinned Node runtime and
// the whole `cradle` command bundled into one file, with the head node's systemd units; its `installer` component is the installer
// image compute nodes network-boot, which the boot server serves out of the depot (docs/kits.md).
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cachedInstallerImage } from '../initramfs/build.ts';
import { bundleModule, bundleThreads, CRADLE_THREADS, packageFiles, UNBUNDLED_PACKAGES } from '../initramfs/bundle.ts';
import { FIRST_STAGE, INSTALLER_KERNEL, SECOND_STAGE } from '../initramfs/installer-files.ts';
import { resolveLibraries } from '../initramfs/resolve.ts';
import { run } from '../system/run.ts';
import { buildDirFor, cacheDir, placeBuilt, pruneCache } from '../util/build-cache.ts';
import { buildKit, type BuiltKit } from './build.ts';
import { CRADLE_KIT_CLI, CRADLE_KIT_INSTALLER } from './served.ts';

const repoRoot = path.resolve(import.meta.dirname, '../..');

export const CRADLE_KIT_NAME = CRADLE_KIT_INSTALLER.kit;

// `--version` is answered here because the command line itself has no version to give. The
// wrapper's compile cache is for this bundle alone: the programs cradle runs do not inherit it.
const entrySource = (version: string) => `
delete process.env.NODE_COMPILE_CACHE;
if (process.argv[2] === '--version' || process.argv[2] === '-V') console.log(${JSON.stringify(version)});
else await import('./main.ts');
`;

/** The one shared library of Node's that the Cradle kit carries (see assembleCli). */
const CARRIED_LIBRARY = 'libatomic.so.1';

export interface CradleKitOptions {
  out: string;
  /** Default: this source tree's version (package.json). */
  version?: string;
  sign?: { cert: string; key: string };
  /** The installer image's kernel; default the newest /boot/vmlinuz-*. */
  kernel?: string;
  log?: (line: string) => void;
}

export async function buildCradleKit(opts: CradleKitOptions): Promise<BuiltKit> {
  const log = opts.log ?? (() => {});
  const version =
    opts.version ??
    (JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
  const arch = process.arch === 'x64' ? 'x86_64' : process.arch === 'arm64' ? 'aarch64' : undefined;
  if (!arch)
    throw new Error(`the Cradle kit carries this host's Node runtime, and ${process.arch} is no kit architecture`);
  if (process.getuid?.() !== 0)
    log(`building as uid ${process.getuid?.()}: the kit's files will be owned by that uid, not root`);
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'cradle-kit-cradle-'));
  try {
    const cli = path.join(scratch, 'cradle');
    await assembleCli(cli, version);
    const installer = path.join(scratch, 'installer');
    const image = await cachedInstallerImage(cacheDir, opts.kernel);
    log(`installer image: ${image}`);
    for (const [at, file] of [
      [CRADLE_KIT_INSTALLER.vmlinuz, INSTALLER_KERNEL],
      [CRADLE_KIT_INSTALLER.initrd, FIRST_STAGE],
      [CRADLE_KIT_INSTALLER.stage2, SECOND_STAGE],
    ])
      put(installer, at, fs.readFileSync(path.join(image, file)), 0o644);
    for (const tree of [cli, installer]) normalise(tree);
    return await buildKit(
      {
        name: CRADLE_KIT_NAME,
        version,
        kind: 'addon',
        arch,
        description: 'Cradle for the head node: the cradle command on its Node runtime, and the installer image',
        components: [
          {
            name: CRADLE_KIT_CLI.component,
            nodeGroups: ['head'],
            os: ['any'],
            description: `the cradle command (${CRADLE_KIT_CLI.wrapper}) and its Node runtime under /opt/cradle`,
            source: cli,
          },
          {
            name: CRADLE_KIT_INSTALLER.component,
            nodeGroups: ['head'],
            os: ['any'],
            description: 'the installer image (kernel and initramfs) compute nodes network-boot',
            source: installer,
          },
        ],
      },
      opts.out,
      { sign: opts.sign, log },
    );
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

/** The runtime, the bundle with the packages it leaves out, and the wrapper on the PATH. */
async function assembleCli(root: string, version: string): Promise<void> {
  const node = path.join(repoRoot, 'node_modules/node/bin/node');
  if (!fs.existsSync(node)) throw new Error(`the pinned Node runtime ${node} is not installed (npm ci)`);
  put(root, CRADLE_KIT_CLI.node, fs.readFileSync(node), 0o755);
  // Its debugging symbols are a third of its size; strip gives the same bytes every time.
  await run('strip', ['--strip-unneeded', path.join(root, CRADLE_KIT_CLI.node)]);
  const lib = path.dirname(CRADLE_KIT_CLI.bundle);
  put(
    root,
    CRADLE_KIT_CLI.bundle,
    await bundleModule({
      contents: entrySource(version),
      resolveDir: path.join(repoRoot, 'src/cli'),
      sourcefile: 'cradle-kit-entry.ts',
      loader: 'ts',
    }),
    0o644,
  );
  // Every thread's own module beside the bundle, where util/threads.ts threadModule finds it.
  for (const t of await bundleThreads(CRADLE_THREADS)) put(root, `${lib}/${t.name}`, t.data, 0o644);
  for (const name of UNBUNDLED_PACKAGES)
    for (const f of packageFiles(name))
      put(root, `${lib}/node_modules/${name}/${f.rel}`, fs.readFileSync(f.from), 0o644);
  // The head node's services (systemd/ in this repository): cradle setup enables them.
  for (const unit of fs.readdirSync(path.join(repoRoot, 'systemd')).filter((f) => f.endsWith('.service')))
    put(root, `${CRADLE_KIT_CLI.units}/${unit}`, fs.readFileSync(path.join(repoRoot, 'systemd', unit)), 0o644);
  // Node needs libatomic, which a minimal OS (Debian's minbase) leaves out: it comes along, found
  // through the wrapper. Only it: a carried libstdc++ could shadow a newer one for the programs
  // cradle runs.
  const atomic = (await resolveLibraries([path.join(root, CRADLE_KIT_CLI.node)])).find(
    (l) => path.basename(l) === CARRIED_LIBRARY,
  );
  if (atomic) put(root, `${CRADLE_KIT_CLI.libraries}/${CARRIED_LIBRARY}`, fs.readFileSync(atomic), 0o644);
  const wrapper = [
    '#!/bin/sh',
    `LD_LIBRARY_PATH=/${CRADLE_KIT_CLI.libraries}\${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} NODE_COMPILE_CACHE=/${CRADLE_KIT_CLI.compileCache} exec /${CRADLE_KIT_CLI.node} --disable-warning=ExperimentalWarning /${CRADLE_KIT_CLI.bundle} "$@"`,
    '',
  ].join('\n');
  put(root, CRADLE_KIT_CLI.wrapper, Buffer.from(wrapper), 0o755);
}

function put(root: string, rel: string, data: Uint8Array, mode: number): void {
  const file = path.join(root, rel);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, data);
  fs.chmodSync(file, mode);
}

/**
 * Directories 0755 whatever the umask, and every mtime SOURCE_DATE_EPOCH (default 0): the same
 * source gives the same manifests, so the same kit, and adding a rebuilt kit again changes nothing.
 */
function normalise(root: string): void {
  const epoch = Number(process.env.SOURCE_DATE_EPOCH ?? 0);
  if (!Number.isInteger(epoch) || epoch < 0)
    throw new Error(`SOURCE_DATE_EPOCH=${process.env.SOURCE_DATE_EPOCH}: give whole seconds since 1970`);
  for (const rel of ['.', ...(fs.readdirSync(root, { recursive: true, encoding: 'utf8' }) as string[])]) {
    const p = path.join(root, rel);
    if (fs.lstatSync(p).isDirectory()) fs.chmodSync(p, 0o755);
    fs.lutimesSync(p, epoch, epoch);
  }
}

/**
 * The Cradle kit of this source tree, built once into the cache: keyed by every source file the
 * bundle can hold (src/, systemd/, package.json), the pinned runtime and the installer image it
 * carries. The lab's head node takes it on its ISO run after run.
 */
export async function cachedCradleKit(cache: string, log?: (line: string) => void): Promise<string> {
  const image = await cachedInstallerImage(cache);
  const hash = createHash('sha256').update(path.basename(image));
  for (const dir of ['src', 'systemd']) {
    const files = (fs.readdirSync(path.join(repoRoot, dir), { recursive: true, encoding: 'utf8' }) as string[])
      .filter((f) => !f.endsWith('.test.ts') && fs.statSync(path.join(repoRoot, dir, f)).isFile())
      .sort();
    for (const f of files) hash.update(`${dir}/${f}\n`).update(fs.readFileSync(path.join(repoRoot, dir, f)));
  }
  hash.update(fs.readFileSync(path.join(repoRoot, 'package.json')));
  const node = fs.statSync(path.join(repoRoot, 'node_modules/node/bin/node'));
  hash.update(`${node.size} ${node.mtimeMs}`);
  const dir = path.join(cache, `cradle-kit-${hash.digest('hex').slice(0, 16)}`);
  const kit = path.join(dir, `${CRADLE_KIT_NAME}.kit`);
  if (fs.existsSync(kit)) return kit;
  const tmp = buildDirFor(dir);
  fs.mkdirSync(tmp);
  await buildCradleKit({ out: path.join(tmp, `${CRADLE_KIT_NAME}.kit`), log });
  placeBuilt(tmp, dir, `${CRADLE_KIT_NAME}.kit`);
  pruneCache('cradle-kit-');
  return kit;
}
