// The Cradle kit (`cradle kit build-cradle`) as a head node gets it: built from this tree, added to
// a depot, its `cradle` component unpacked from the depot's store and the bundled command run from
// there on the kit's own Node (nothing of this repository reachable), and its installer component
// loaded by that bundled command through an image server over the depot, byte for byte the
// installer image the build cache holds.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { Worker } from 'node:worker_threads';
import { after, before, describe, test } from 'node:test';
import type { Digest } from '../src/image/model/digest.ts';
import { unpackImage } from '../src/image/unpack/unpack.ts';
import { cachedInstallerImage, newestKernel } from '../src/initramfs/build.ts';
import type { BuiltKit } from '../src/kit/build.ts';
import { buildCradleKit } from '../src/kit/cradle-kit.ts';
import { CRADLE_KIT_CLI } from '../src/kit/served.ts';
import { HEAD_UNITS } from '../src/setup/services.ts';
import { CRADLE_KIT_INSTALLER, servedInstaller } from '../src/kit/served.ts';
import { Depot, type KitRecord } from '../src/kit/depot.ts';
import { cacheDir } from '../src/util/build-cache.ts';
import { isRoot, removeWorkDir, repoRoot, startImageServer, tmpDir } from './helpers.ts';

const run = promisify(execFile);
const version = (JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string })
  .version;

function cannotBuild(): string | false {
  if (!isRoot()) return 'needs root (the installer image is built from the host kernel; unpacking keeps owners)';
  try {
    newestKernel();
  } catch (err) {
    return `the installer image cannot be built here: ${(err as Error).message}`;
  }
  return false;
}

/** Unpacks a depot image into `target` straight from the depot's store. */
async function unpackFromStore(depot: Depot, image: string, target: string): Promise<void> {
  const manifest = await depot.store.readManifest(depot.store.resolve(image).manifest as Digest);
  await unpackImage(manifest, target, {
    fetcher: {
      fetch: async (wanted, onObject) => {
        for (const w of wanted) onObject(w.digest, await depot.store.readObject(w.digest));
      },
    },
  });
}

describe('the Cradle kit', { skip: cannotBuild() }, () => {
  let work: string;
  let built: BuiltKit;
  let depot: Depot;
  let record: KitRecord;
  let root: string;
  /** The bundled command from the unpacked component, run on the component's Node, outside the repository. */
  let cradle: (...args: string[]) => Promise<string>;

  before(async () => {
    work = tmpDir('cradle-kit-cradle-test-');
    const kitFile = path.join(work, 'cradle.kit');
    built = await buildCradleKit({ out: kitFile });
    depot = new Depot(path.join(work, 'depot'));
    ({ record } = await depot.add(kitFile));
    root = path.join(work, 'head');
    await unpackFromStore(depot, record.images.components[CRADLE_KIT_CLI.component], root);
    const env = { ...process.env };
    delete env.NODE_PATH;
    delete env.NODE_OPTIONS;
    cradle = async (...args) =>
      (
        await run(
          path.join(root, CRADLE_KIT_CLI.node),
          ['--disable-warning=ExperimentalWarning', path.join(root, CRADLE_KIT_CLI.bundle), ...args],
          { cwd: work, env, encoding: 'utf8' },
        )
      ).stdout;
  });
  after(() => {
    if (work) removeWorkDir(work);
  });

  test("kit.json: an add-on for the head node on any OS, its version this tree's", () => {
    const kit = record.kit;
    assert.equal(record.digest, built.digest);
    assert.equal(kit.name, 'cradle');
    assert.equal(kit.version, version);
    assert.equal(kit.kind, 'addon');
    assert.deepEqual(
      kit.components.map((c) => [c.name, c.nodeGroups, c.os]),
      [
        ['cradle', ['head'], ['any']],
        ['installer', ['head'], ['any']],
      ],
    );
    assert.deepEqual(kit, built.kit);
  });

  test('the cradle component: the runtime, the bundle with its native packages, the wrapper on the PATH', () => {
    const mode = (rel: string) => fs.statSync(path.join(root, rel)).mode & 0o7777;
    assert.equal(mode(CRADLE_KIT_CLI.node), 0o755);
    assert.equal(mode(CRADLE_KIT_CLI.wrapper), 0o755);
    assert.equal(mode('opt/cradle'), 0o755);
    assert.equal(
      fs.readFileSync(path.join(root, CRADLE_KIT_CLI.wrapper), 'utf8'),
      // biome-ignore lint/suspicious/noTemplateCurlyInString: the shell's own ${...}, not a template
      '#!/bin/sh\nLD_LIBRARY_PATH=/opt/cradle/lib/native${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} NODE_COMPILE_CACHE=/var/cache/cradle/node-compile-cache exec /opt/cradle/bin/node --disable-warning=ExperimentalWarning /opt/cradle/lib/cradle.mjs "$@"\n',
    );
    assert.ok(fs.existsSync(path.join(root, 'opt/cradle/lib/node_modules/@lydell/node-pty/package.json')));
    assert.ok(
      fs.existsSync(path.join(root, CRADLE_KIT_CLI.libraries, 'libatomic.so.1')),
      "Node's libatomic comes along",
    );
    for (const unit of HEAD_UNITS)
      assert.match(
        fs.readFileSync(path.join(root, CRADLE_KIT_CLI.units, unit), 'utf8'),
        /^ExecStart=\/usr\/local\/bin\/cradle /m,
        `${unit}: the head node's units come with the command`,
      );
    // Fixed, so the same source builds the same kit.
    const epoch = Number(process.env.SOURCE_DATE_EPOCH ?? 0) * 1000;
    for (const rel of ['.', 'usr', CRADLE_KIT_CLI.node, CRADLE_KIT_CLI.bundle])
      assert.equal(fs.lstatSync(path.join(root, rel)).mtimeMs, epoch, rel);
  });

  test('the bundled command runs from the unpacked tree: its version, and the depot it came from', async () => {
    assert.equal((await cradle('--version')).trim(), version);
    assert.match(
      await cradle('kit', 'list', '--depot', depot.root),
      new RegExp(`^cradle\\s+${version.replaceAll('.', '\\.')}\\s+addon\\s+-\\s+cradle,installer\\s+-$`, 'm'),
    );
  });

  test("the wrapper's compile cache: the bundle's compiled code is kept there, and not handed to the programs cradle runs", async () => {
    const cache = path.join(work, 'compile-cache');
    const bundle = path.join(root, CRADLE_KIT_CLI.bundle);
    const node = path.join(root, CRADLE_KIT_CLI.node);
    const env: NodeJS.ProcessEnv = { ...process.env, NODE_COMPILE_CACHE: cache };
    delete env.NODE_OPTIONS;
    // Loaded before the bundle, it tells what the process's environment holds when it ends: what
    // a program cradle ran in the meantime would have been given.
    const probe = path.join(work, 'env-probe.mjs');
    fs.writeFileSync(
      probe,
      "process.on('exit', () => process.stderr.write('at exit: ' + (process.env.NODE_COMPILE_CACHE ?? 'unset') + '\\n'));\n",
    );
    const help = async () => {
      const args = ['--disable-warning=ExperimentalWarning', '--import', probe, bundle, 'machine', '--help'];
      return run(node, args, { env, encoding: 'utf8' });
    };
    const first = await help();
    assert.ok(fs.readdirSync(cache, { recursive: true }).length > 0, 'the first run filled the cache');
    assert.equal(first.stderr, 'at exit: unset\n');
    assert.equal((await help()).stdout, first.stdout, 'a run from the cache answers the same');
  });

  test("the DHCP server's receiving thread loads from beside the bundle", async () => {
    // An interface that does not exist: the thread runs and reports it, which proves it loaded.
    const worker = new Worker(path.join(root, 'opt/cradle/lib/receive-worker.mjs'), {
      workerData: { listen: [{ ifname: 'no-such-if0', port: 67 }], wakeFd: -1 },
    });
    try {
      const message = await new Promise((resolve, reject) => {
        worker.once('message', resolve);
        worker.once('error', reject);
      });
      assert.deepEqual(message, { kind: 'error', message: "no network interface named 'no-such-if0'" });
    } finally {
      await worker.terminate();
    }
  });

  test("the TFTP server's transfer thread loads from beside the bundle", async () => {
    const worker = new Worker(path.join(root, 'opt/cradle/lib/transfer-thread.mjs'), { workerData: { cacheBytes: 0 } });
    try {
      const message = await new Promise((resolve, reject) => {
        worker.once('message', resolve);
        worker.once('error', reject);
      });
      assert.deepEqual(message, { kind: 'ready' });
    } finally {
      await worker.terminate();
    }
  });

  test("cradle image add from the bundled command: the store's writer threads load from beside the bundle", async () => {
    const tree = path.join(work, 'small-tree');
    fs.mkdirSync(path.join(tree, 'etc'), { recursive: true });
    for (let i = 0; i < 50; i++) fs.writeFileSync(path.join(tree, 'etc', `f${i}`), `file ${i}\n`.repeat(i + 1));
    const store = path.join(work, 'bundled-store');
    assert.match(await cradle('image', 'add', '--store', store, 'small/v1', tree), /50 new objects/);
    assert.match(await cradle('image', 'verify', '--store', store), /store is consistent/);
  });

  test('the installer component, loaded by the bundled command from the depot (worker threads and all), is the cached installer image', async () => {
    const server = await startImageServer(depot.store);
    const target = path.join(work, 'installer');
    try {
      await cradle(
        'installer',
        'load-image',
        '--imageserver',
        server.url,
        '--no-mounts',
        record.images.components[CRADLE_KIT_INSTALLER.component],
        target,
      );
    } finally {
      await server.close();
    }
    const image = await cachedInstallerImage(cacheDir);
    for (const [rel, name] of [
      [CRADLE_KIT_INSTALLER.vmlinuz, 'vmlinuz'],
      [CRADLE_KIT_INSTALLER.initrd, 'initrd.img'],
      [CRADLE_KIT_INSTALLER.stage2, 'stage2.img'],
    ]) {
      assert.ok(fs.readFileSync(path.join(target, rel)).equals(fs.readFileSync(path.join(image, name))), `${rel}`);
    }
  });

  test("a head node's boot server (cradle server --depot) serves this kit's installer image", async () => {
    const served = await servedInstaller(depot);
    assert.equal(served?.kit.digest, record.digest);
    const image = await cachedInstallerImage(cacheDir);
    for (const name of ['vmlinuz', 'initrd.img', 'stage2.img'])
      assert.ok(fs.readFileSync(path.join(served.dir, name)).equals(fs.readFileSync(path.join(image, name))), name);
  });
});
