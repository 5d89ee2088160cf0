// The installer image in the lab (QEMU under TCG on this host; with KVM every figure shrinks a
// lot): its size, and its boot time against a plain busybox initramfs (the peer: the same kernel
// and QEMU, an /init that only prints a marker), to the first line of /init and, for ours, to the
// end of the installer's first step (its clock: Node running, the drivers loaded, the install
// begun; the installer starts beside the drivers and waits for them, so its first line alone would
// come too soon). Power-on to the installed OS, a first install against a rebirth, is
// bench/lab-rebirth.ts.
//
//   flock /tmp/cradle-bench.lock node_modules/.bin/node bench/lab.ts
import fs from 'node:fs';
import path from 'node:path';
import { cachedInstallerImage } from '../src/initramfs/build.ts';
import { concatenatedInitrds, installerInitrds } from '../src/initramfs/installer-files.ts';
import { cacheDir } from '../src/util/build-cache.ts';
import { markerInitramfs, MARKER } from '../src/lab/marker-initramfs.ts';
import { RunningMachine } from '../src/lab/qemu.ts';
import { RUNS, runBenchmark, tempDir, writeResults } from './lib.ts';
import { mb, median, ratioLine, secs } from './measure.ts';

/** Seconds from QEMU's start until each marker appears on the console. */
async function bootTimes(kernel: string, initrd: string, markers: RegExp[], log: string): Promise<number[]> {
  const started = performance.now();
  const m = new RunningMachine(
    [
      'qemu-system-x86_64',
      '-accel',
      'tcg,thread=multi',
      '-smp',
      '2',
      '-m',
      '1536',
      '-nographic',
      '-nodefaults',
      '-serial',
      'stdio',
      '-no-reboot',
      '-net',
      'none',
      '-kernel',
      kernel,
      '-initrd',
      initrd,
      '-append',
      'console=ttyS0 quiet panic=-1',
    ],
    log,
  );
  try {
    const out: number[] = [];
    for (const re of markers) {
      await m.waitFor(re, 120_000);
      out.push((performance.now() - started) / 1000);
    }
    return out;
  } finally {
    await m.stop();
  }
}

await runBenchmark('lab', async (c) => {
  const work = tempDir(c, 'cradle-bench-lab-');
  const image = await cachedInstallerImage(cacheDir);
  const info = JSON.parse(fs.readFileSync(path.join(image, 'build-info.json'), 'utf8')) as {
    initrdBytes: number;
    stage2Bytes: number;
    uncompressedBytes: number;
    parts: Record<string, number>;
    kernelBytes: number;
  };
  const plain = path.join(work, 'busybox.cpio');
  fs.writeFileSync(plain, markerInitramfs());
  const kernel = path.join(image, 'vmlinuz');
  // QEMU's -initrd takes one file: the two stages as a boot loader hands them to the kernel.
  const initrd = path.join(work, 'initrds.img');
  fs.writeFileSync(
    initrd,
    concatenatedInitrds(installerInitrds(image).map((f) => fs.readFileSync(path.join(image, f)))),
  );

  // 1. Boot time, interleaved runs.
  const ours: number[][] = [];
  const peer: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    ours.push(
      await bootTimes(
        kernel,
        initrd,
        [/cradle: installer image built/, /cradle: drivers loaded/, /\] clock: /],
        path.join(work, `ours-${i}.log`),
      ),
    );
    peer.push((await bootTimes(kernel, plain, [new RegExp(MARKER)], path.join(work, `peer-${i}.log`)))[0]);
  }
  const [toInit, toDrivers, toNode] = [0, 1, 2].map((k) => median(ours.map((o) => o[k])));
  const toPeer = median(peer);
  console.log(
    `installer image: first stage ${mb(info.initrdBytes)} zstd, second stage ${mb(info.stage2Bytes)} squashfs (${mb(info.uncompressedBytes)} uncompressed), kernel ${mb(info.kernelBytes)}; plain busybox initramfs ${mb(fs.statSync(plain).size)}`,
  );
  for (const [part, bytes] of Object.entries(info.parts).sort((a, b) => b[1] - a[1]))
    console.log(`  ${part.padEnd(16)} ${mb(bytes)}`);
  console.log(
    `boot (QEMU start to …, median of ${RUNS}): /init ${secs(toInit)}, drivers loaded ${secs(toDrivers)}, installer running ${secs(toNode)}; plain busybox /init ${secs(toPeer)}`,
  );
  const busybox = fs.statSync(plain).size;
  const both = info.initrdBytes + info.stage2Bytes;
  const ratios: [string, string, number, string, number, string][] = [
    // what, our label, ours, peer's label, peer's, note
    [
      'boot to /init',
      'installer image',
      toInit,
      'plain busybox initramfs',
      toPeer,
      'lower is better; the difference is unpacking the first stage and copying the second',
    ],
    ['boot to a running installer', 'installer image', toNode, 'plain busybox /init', toPeer, 'lower is better'],
    [
      'image size, first stage',
      'installer initramfs',
      info.initrdBytes,
      'plain busybox initramfs',
      busybox,
      'what the kernel unpacks: the tools and the drivers',
    ],
    [
      'image size, both stages',
      'installer, both stages',
      both,
      'plain busybox initramfs',
      busybox,
      'what a machine fetches: Node, the tools and the drivers',
    ],
  ];
  for (const [what, ourLabel, ours, peerLabel, theirs, note] of ratios) {
    const show = what.startsWith('image size') ? mb : secs;
    console.log(
      ratioLine(
        what,
        { label: ourLabel, value: show(ours), n: ours },
        { label: peerLabel, value: show(theirs), n: theirs },
        note,
      ),
    );
  }

  console.log(
    `results: ${writeResults('lab', { image: info, boot: { toInit, toDrivers, toNode, plainBusybox: toPeer, runs: RUNS } })}`,
  );
});
