// A real Debian root file system built with mmdebstrap: the demo image, and the input of round-trip
// tests and benchmarks. Built
// once per machine and cached (CRADLE_CACHE, default /var/tmp/cradle-cache): building takes 20-60 s
// and needs Debian's archive, which this workplace reaches. The package list brings what an OS
// image must carry faithfully: setuid binaries (su, passwd), a capability (ping), device nodes
// (mmdebstrap's root mode creates /dev), hard links, and systemd's many symlinks.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export const cacheDir = process.env.CRADLE_CACHE ?? '/var/tmp/cradle-cache';
const PACKAGES = ['iputils-ping', 'libcap2-bin', 'acl', 'systemd-sysv', 'ifupdown', 'netbase', 'iproute2'];
const SUITE = 'bookworm';
const MIRROR = process.env.CRADLE_DEBIAN_MIRROR ?? 'http://deb.debian.org/debian';

export function debianRootfs(): string {
  const dir = path.join(cacheDir, `debian-${SUITE}-rootfs`);
  if (fs.existsSync(path.join(dir, 'etc', 'debian_version'))) return dir;
  fs.mkdirSync(cacheDir, { recursive: true });
  const tmp = `${dir}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  execFileSync('mmdebstrap', ['--variant=minbase', `--include=${PACKAGES.join(',')}`, '--mode=root', '--quiet', SUITE, tmp, MIRROR], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  try {
    fs.renameSync(tmp, dir);
  } catch (err) {
    // Another process finished first: use its tree.
    fs.rmSync(tmp, { recursive: true, force: true });
    if (!fs.existsSync(path.join(dir, 'etc', 'debian_version'))) throw err;
  }
  return dir;
}

if (import.meta.main) console.log(debianRootfs());
