// What the installer image must carry, resolved from the build host: kernel modules in load order
// (with their dependencies and soft dependencies, which busybox's modprobe would not follow:
// ext4 needs crc32c loaded first) and the shared libraries of each program, including the ones
// glibc loads at run time that ldd cannot see (libgcc_s, which cryptsetup's threads need).
import fs from 'node:fs';
import path from 'node:path';
import { run } from '../system/run.ts';

/**
 * A program of the build host, where Debian installs it; `pkg` names the Debian package in the
 * error when it is missing.
 */
export function hostProgram(program: string, pkg?: string): string {
  for (const dir of ['/usr/sbin', '/usr/bin', '/sbin', '/bin']) {
    const p = path.join(dir, program);
    if (fs.existsSync(p)) return p;
  }
  throw new Error(
    `the installer image needs ${program}, which is not installed here: ${pkg ? `apt-get install ${pkg}` : 'scripts/install-deps.sh installs it'}`,
  );
}

export interface ModuleFile {
  name: string;
  path: string;
}

/** Parses `modprobe --show-depends` output: insmod lines in load order; builtins need nothing. */
export function parseShowDepends(output: string): ModuleFile[] {
  const out: ModuleFile[] = [];
  for (const line of output.split('\n')) {
    const m = /^insmod (\S+\.ko(?:\.(?:xz|zst|gz))?)\b/.exec(line.trim());
    if (m)
      out.push({
        name: m[1]
          .split('/')
          .at(-1)!
          .replace(/\.ko(\..*)?$/, '')
          .replace(/-/g, '_'),
        path: m[1],
      });
  }
  return out;
}

/** A module file's path below its kernel's modules directory (kmod may name it under /lib or /usr/lib). */
export function modulePathInTree(kernelVersion: string, file: string): string {
  const marker = `/modules/${kernelVersion}/`;
  const i = file.indexOf(marker);
  if (i < 0) throw new Error(`module ${file} is not under a ${kernelVersion} modules directory`);
  return file.slice(i + marker.length);
}

/** Every module needed for `names`, dependencies first, each once. */
export async function resolveModules(kernelVersion: string, names: string[]): Promise<ModuleFile[]> {
  const seen = new Set<string>();
  const order: ModuleFile[] = [];
  for (const name of names) {
    let output: string;
    try {
      output = (await run('modprobe', ['--set-version', kernelVersion, '--show-depends', name])).stdout;
    } catch (err) {
      throw new Error(`kernel ${kernelVersion} has no module '${name}': ${(err as Error).message}`);
    }
    for (const m of parseShowDepends(output)) {
      if (seen.has(m.path)) continue;
      seen.add(m.path);
      order.push(m);
    }
  }
  return order;
}

/** Parses ldd output into the absolute paths of the libraries (and the dynamic loader). */
export function parseLdd(output: string, program: string): string[] {
  const libs: string[] = [];
  for (const raw of output.split('\n')) {
    const line = raw.trim();
    if (
      !line ||
      line.startsWith('linux-vdso') ||
      line === 'statically linked' ||
      line.includes('not a dynamic executable')
    )
      continue;
    if (line.includes('=> not found'))
      throw new Error(`${program} needs ${line.split(' ')[0]}, which is not installed`);
    const m = /=>\s+(\/\S+)/.exec(line) ?? /^(\/\S+)\s+\(/.exec(line);
    if (m) libs.push(m[1]);
  }
  return libs;
}

/** Libraries glibc opens at run time (dlopen), invisible to ldd, needed by the installer's tools. */
export const RUNTIME_LIBRARIES = ['libgcc_s.so.1'];

/** The shared libraries of `programs`, each once, sorted. */
export async function resolveLibraries(programs: string[]): Promise<string[]> {
  const all = new Set<string>();
  for (const program of programs) {
    let output: string;
    try {
      output = (await run('ldd', [program])).stdout;
    } catch (err) {
      // ldd exits 1 for static binaries ("not a dynamic executable"): they need nothing.
      if (/not a dynamic executable/.test((err as Error).message)) continue;
      throw err;
    }
    for (const lib of parseLdd(output, program)) all.add(lib);
  }
  return [...all].sort();
}
