// Rebirth against a first install, on a lab link at a real rate (issue 18): one machine under TCG,
// the demo OS, the lab's servers behind a link of 1000 Mbit/s each way (`--link-mbit`), a first
// install onto a blank disk and then a rebirth over the installed system. The rebirth finds the
// image's objects on the old disk (src/image/unpack/local-cache.ts); the goal is that it does so
// faster than the link would bring them: power-on to running at most 0.5x the first install's.
// Besides the ratio it prints both runs' phases and the installer's own lines on the object cache.
//
//   flock /tmp/cradle-bench.lock node_modules/.bin/node bench/lab-rebirth.ts
//   (BENCH_LINK_MBIT=0 for an unlimited bridge)
import fs from 'node:fs';
import path from 'node:path';
import { Lab, LAB_DEFAULTS, runLab } from '../src/lab/lab.ts';
import { summaryTable, type Timeline } from '../src/lab/report.ts';
import { runBenchmark, tempDir, writeResults } from './lib.ts';
import { mb, ratioLine, secs } from './measure.ts';

const NAME = 'lab-rebirth';
const LINK_MBIT = Number(process.env.BENCH_LINK_MBIT ?? 1000);

/** The installer's lines about the object cache and the image in memory, from a console log. */
function cacheLines(log: string, from: number): string[] {
  if (!fs.existsSync(log)) return [];
  return fs
    .readFileSync(log)
    .subarray(from)
    .toString()
    .split('\n')
    .filter((l) => /object cache|local cache|old OS|in memory|previous install/.test(l))
    .map((l) => l.trim());
}

await runBenchmark(NAME, async (c) => {
  const work = tempDir(c, 'cradle-bench-lab-rebirth-');
  const lab = new Lab({
    ...LAB_DEFAULTS,
    dir: path.join(work, 'lab'),
    machines: 1,
    image: 'demo',
    namespace: `cradle-bench-${process.pid}`,
    ...(LINK_MBIT ? { linkMbit: LINK_MBIT } : {}),
    log: (l) => console.log(`  ${l}`),
  });
  c.defer('stop the lab', () => lab.destroy());
  const runs: Record<string, Timeline> = {};
  const installerLines: Record<string, string[]> = {};
  for (const rebirth of [false, true]) {
    const name = rebirth ? 'rebirth' : 'first install';
    const console0 = lab.machines[0].serialLog;
    const from = fs.existsSync(console0) ? fs.statSync(console0).size : 0;
    const [t] = await runLab(lab, { rebirth, timeoutSeconds: 1500, accel: 'tcg' });
    await lab.destroy();
    if (t.state !== 'healthy')
      throw new Error(`lab ${name} ended ${t.state}: ${t.problem ?? t.progress?.result?.error ?? ''}`);
    runs[name] = t;
    installerLines[name] = cacheLines(console0, from);
    console.log(`\ndemo OS, ${name}:\n${summaryTable([t])}`);
    for (const l of installerLines[name]) console.log(`  | ${l}`);
  }
  const first = runs['first install'];
  const again = runs.rebirth;
  const total = (t: Timeline) => ((t.healthyAt ?? 0) - t.poweredOnAt) / 1000;
  const phases = (t: Timeline) => t.progress?.result?.phaseSeconds ?? {};
  console.log('\nphase (s)        first install   rebirth');
  for (const p of Object.keys(phases(first)))
    console.log(
      `  ${p.padEnd(16)} ${(phases(first)[p] ?? 0).toFixed(1).padStart(8)} ${(phases(again)[p] ?? 0).toFixed(1).padStart(9)}`,
    );
  const link = LINK_MBIT ? `${LINK_MBIT} Mbit/s link` : 'unlimited bridge';
  console.log(
    ratioLine(
      `rebirth vs first install, power-on to running, ${link}`,
      { label: 'rebirth', value: secs(total(again)), n: total(again) },
      { label: 'first install', value: secs(total(first)), n: total(first) },
      'lower is better; goal at most 0.50x',
    ),
  );
  const tools = (t: Timeline) => phases(t).tools ?? 0;
  console.log(
    ratioLine(
      `rebirth vs first install, the images in memory (tools phase), ${link}`,
      { label: 'rebirth', value: secs(tools(again)), n: tools(again) },
      { label: 'first install', value: secs(tools(first)), n: tools(first) },
      'lower is better',
    ),
  );
  const fetched = (t: Timeline) => t.progress?.result?.objects?.bytesFetched ?? 0;
  console.log(`bytes fetched: first install ${mb(fetched(first))}, rebirth ${mb(fetched(again))}`);
  const stages = (t: Timeline) => ({
    toInstaller: ((t.installerAt ?? 0) - t.poweredOnAt) / 1000,
    install: t.progress?.result?.seconds,
    toRunning: ((t.healthyAt ?? 0) - (t.resultAt ?? 0)) / 1000,
    total: total(t),
    phases: phases(t),
    objects: t.progress?.result?.objects,
  });
  console.log(
    `results: ${writeResults(NAME, { linkMbit: LINK_MBIT, firstInstall: stages(first), rebirth: stages(again), installerLines })}`,
  );
});
