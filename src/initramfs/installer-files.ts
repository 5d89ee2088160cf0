// The files of an installer image as `cradle build-installer` writes them and everything that
// serves or boots them reads them: the boot server, the Cradle kit, the ISOs, kexec-image.
//
// The image boots in two stages, as Kusu's installer did (a small initrd, then a stage2 image
// mounted rather than unpacked). The first stage (initrd.img, zstd) is what the kernel unpacks:
// /init, busybox, the tools and their libraries, the kernel modules. The second (stage2.img) is
// Node and the installer as a squashfs, which /init checks against the digest the first stage
// carries and mounts: the kernel then decompresses only the pages Node reads. The boot loader
// loads both as initrds, first stage first; Linux unpacks them one after the other. stage2.img is
// a cpio archive holding the one squashfs file, in a zstd frame of stored blocks (squashfs.ts says
// why): the kernel copies it, it decompresses nothing.
import fs from 'node:fs';
import path from 'node:path';

export const INSTALLER_KERNEL = 'vmlinuz';
export const FIRST_STAGE = 'initrd.img';
export const SECOND_STAGE = 'stage2.img';

/** Where the first stage finds the second stage's squashfs (stage2.img's one file). */
export const SECOND_STAGE_FILE = '/stage2.squashfs';
/** Where /init mounts it: Node, the bundle and its packages. */
export const SECOND_STAGE_MOUNT = '/usr/lib/cradle';
/** The squashfs's SHA-256 (hex), carried by the first stage. */
export const SECOND_STAGE_DIGEST = '/etc/installer/stage2.sha256';

/**
 * The initrds a boot loader loads from an installer image's directory, in order: the first stage,
 * then the second when the directory has one (an image built before the second stage existed is
 * one initrd.img holding everything).
 */
export function installerInitrds(dir: string): string[] {
  return [FIRST_STAGE, ...(fs.existsSync(path.join(dir, SECOND_STAGE)) ? [SECOND_STAGE] : [])];
}

/**
 * Archives as one initrd, for loaders that take one file (`kexec --initrd`, QEMU's -initrd) and
 * for archives added to an image (a machine's configuration, a site's certificates): each but the
 * last padded to a multiple of 4 bytes. Linux reads an uncompressed cpio archive only where it
 * starts at a multiple of 4 bytes (init/initramfs.c) and skips zeros between archives: after a
 * compressed one whose length is not a multiple of 4, the next must be padded to it, or the kernel
 * reports "invalid magic at start of compressed archive" and leaves the rest out.
 */
export function concatenatedInitrds(files: Uint8Array[]): Buffer {
  return Buffer.concat(
    files.flatMap((f, i) => (i < files.length - 1 ? [f, Buffer.alloc((4 - (f.length % 4)) % 4)] : [f])),
  );
}
