// The installer image in the lab (QEMU under TCG on this host; with KVM every figure shrinks a
// lot): its size, and its boot time against a plain busybox initramfs (the peer: the same kernel
// and QEMU, an /init that only prints a marker), to the first line of /init and, for ours, to the
// installer's first log line (Node running). Power-on to the installed OS, a first install against
// a rebirth, is bench/lab-rebirth.ts.
//
//   flock /tmp/cradle-bench.lock node_modules/.bin/node bench/lab.ts
import fs from 'node:fs';
import path from 'node:path';
import { cachedInstallerImage } from '../src/initramfs/build.ts';
import { cacheDir } from '../src/util/build-cache.ts';
import { markerInitramfs, MARKER } from '../src/lab/marker-initramfs.ts';
import { RunningMachine } from '../src/lab/qemu.ts';
import { mb, median, ratioLine, RUNS, runBenchmark, secs, tempDir, writeResults } from './lib.ts';

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
    uncompressedBytes: number;
    parts: Record<string, number>;
    kernelBytes: number;
  };
  const plain = path.join(work, 'busybox.cpio');
  fs.writeFileSync(plain, markerInitramfs());
  const kernel = path.join(image, 'vmlinuz');

  // 1. Boot time, interleaved runs.
  const ours: number[][] = [];
  const peer: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    ours.push(
      await bootTimes(
        kernel,
        path.join(image, 'initrd.img'),
        [/cradle: installer image built/, /cradle: drivers loaded/, /\[\s*\d+\.\d+\] /],
        path.join(work, `ours-${i}.log`),
      ),
    );
    peer.push((await bootTimes(kernel, plain, [new RegExp(MARKER)], path.join(work, `peer-${i}.log`)))[0]);
  }
  const [toInit, toDrivers, toNode] = [0, 1, 2].map((k) => median(ours.map((o) => o[k])));
  const toPeer = median(peer);
  console.log(
    `installer image: initramfs ${mb(info.initrdBytes)} zstd (${mb(info.uncompressedBytes)} unpacked), kernel ${mb(info.kernelBytes)}; plain busybox initramfs ${mb(fs.statSync(plain).size)}`,
  );
  for (const [part, bytes] of Object.entries(info.parts).sort((a, b) => b[1] - a[1]))
    console.log(`  ${part.padEnd(16)} ${mb(bytes)}`);
  console.log(
    `boot (QEMU start to …, median of ${RUNS}): /init ${secs(toInit)}, drivers loaded ${secs(toDrivers)}, installer running ${secs(toNode)}; plain busybox /init ${secs(toPeer)}`,
  );
  console.log(
    ratioLine(
      'boot to /init',
      { label: 'installer image', value: secs(toInit), n: toInit },
      { label: 'plain busybox initramfs', value: secs(toPeer), n: toPeer },
      'lower is better; the difference is unpacking the larger initramfs',
    ),
  );
  console.log(
    ratioLine(
      'boot to a running installer',
      { label: 'installer image', value: secs(toNode), n: toNode },
      { label: 'plain busybox /init', value: secs(toPeer), n: toPeer },
      'lower is better',
    ),
  );
  console.log(
    ratioLine(
      'image size',
      { label: 'installer initramfs', value: mb(info.initrdBytes), n: info.initrdBytes },
      { label: 'plain busybox initramfs', value: mb(fs.statSync(plain).size), n: fs.statSync(plain).size },
      'what Node, the tools and the drivers cost',
    ),
  );

  console.log(
    `results: ${writeResults('lab', { image: info, boot: { toInit, toDrivers, toNode, plainBusybox: toPeer, runs: RUNS } })}`,
  );
});
