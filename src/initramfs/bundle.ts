// Cradle bundled for where it runs without a checkout (the installer image's second stage, the
// Cradle kit): a command and everything it imports as one ES module, and each worker thread's
// module as a small ES module of its own beside it, `NAME.mjs`, where util/threads.ts
// threadModule looks for it. A thread given the command's whole bundle instead parsed all of it
// (2.7 MB) before its first job: 120 ms on this machine's cores, seconds under emulation.
import fs from 'node:fs';
import { isBuiltin } from 'node:module';
import path from 'node:path';
import { build as esbuild, type Plugin, type StdinOptions } from 'esbuild';

const repoRoot = path.resolve(import.meta.dirname, '../..');

/**
 * Packages the installer imports that esbuild cannot bundle (a native addon): shipped as files
 * beside the bundle. The PTY of the remote shell is the only one.
 */
export const UNBUNDLED_PACKAGES = ['@lydell/node-pty', `@lydell/node-pty-${process.platform}-${process.arch}`];

/** The installer's threads (util/threads.ts startThread's modules): the unpacker's. */
export const INSTALLER_THREADS = ['src/image/unpack/tree-writer-thread.ts', 'src/image/unpack/cache-thread.ts'];

/** Every thread the whole `cradle` command starts: the installer's, the servers' and the image store's. */
export const CRADLE_THREADS = [
  ...INSTALLER_THREADS,
  'src/boot/dhcp/receive-worker.ts',
  'src/boot/tftp/transfer-thread.ts',
  'src/image/store/object-writer-worker.ts',
];

/** A file of a bundle, by its name in the bundle's directory. */
export interface BundledFile {
  name: string;
  data: Uint8Array;
}

/** A command bundled: its module, and its threads' modules to go beside it. */
export interface Bundle {
  main: Uint8Array;
  threads: BundledFile[];
}

/** A package's files (what Node loads: no type declarations, no read-me). */
export function packageFiles(name: string): { rel: string; from: string }[] {
  const root = path.join(repoRoot, 'node_modules', name);
  if (!fs.existsSync(path.join(root, 'package.json')))
    throw new Error(`the installer image needs the npm package ${name}, which is not installed (npm ci)`);
  return (fs.readdirSync(root, { recursive: true, encoding: 'utf8' }) as string[])
    .filter((rel) => fs.statSync(path.join(root, rel)).isFile() && !/\.(d\.ts|md|map)$/.test(rel))
    .sort()
    .map((rel) => ({ rel: rel.split(path.sep).join('/'), from: path.join(root, rel) }));
}

/**
 * The installer and everything it imports as one ES module, and its threads' modules, Node's
 * built-in modules taken with require() (builtinsByRequire).
 */
export async function bundleInstaller(): Promise<Bundle> {
  return {
    main: await bundleModule(path.join(repoRoot, 'src/cli/installer-main.ts'), [builtinsByRequire]),
    threads: await bundleThreads(INSTALLER_THREADS),
  };
}

/** Each thread's module (a path from the repository's root) bundled as `NAME.mjs`. */
export async function bundleThreads(sources: string[]): Promise<BundledFile[]> {
  const files: BundledFile[] = [];
  for (const source of sources) {
    const name = `${path.basename(source, '.ts')}.mjs`;
    if (files.some((f) => f.name === name))
      throw new Error(`two threads' modules are both named ${name}: a bundle's directory holds one`);
    files.push({ name, data: await bundleModule(path.join(repoRoot, source), [builtinsByRequire]) });
  }
  return files;
}

/**
 * Node's built-in modules through require() instead of `import`: an ES module's import of a
 * built-in makes Node build an ES facade of it, reading every export once, and node:http's lazy
 * exports (WebSocket, …) then load Node's own fetch implementation (undici), which the installer
 * never uses. Measured with --cpu-prof on the installer's start: a fifth of Node's share of it.
 */
export const builtinsByRequire: Plugin = {
  name: 'builtins-by-require',
  setup(b) {
    b.onResolve({ filter: /^[a-z_/:]+$/ }, (a) =>
      a.kind === 'import-statement' && isBuiltin(a.path)
        ? { path: a.path.replace(/^node:/, ''), namespace: 'node-builtin' }
        : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'node-builtin' }, (a) => ({
      contents: `module.exports = require(${JSON.stringify(`node:${a.path}`)});`,
      loader: 'js',
    }));
  },
};

/** An entry point (a file, or source text) and everything it imports as one ES module. */
export async function bundleModule(entry: string | StdinOptions, plugins: Plugin[] = []): Promise<Uint8Array> {
  const result = await esbuild({
    plugins,
    ...(typeof entry === 'string' ? { entryPoints: [entry] } : { stdin: entry }),
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node26',
    write: false,
    minifyWhitespace: true,
    legalComments: 'none',
    logLevel: 'silent',
    external: UNBUNDLED_PACKAGES,
    // CommonJS dependencies call require(); an ES module has none unless given one.
    banner: {
      js: "import { createRequire as __cradleRequire } from 'node:module'; const require = __cradleRequire(import.meta.url);",
    },
  });
  return result.outputFiles[0].contents;
}
