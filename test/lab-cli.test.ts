// `cradle lab`'s options, refused before anything is built or started when they do not go
// together: the plain lab's options on a head node's cluster, and the head node's on the plain lab.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { cradleFails, isRoot } from './helpers.ts';

test('cradle lab: options that mean nothing for the run asked for are refused, saying why', {
  skip: !isRoot() && 'the lab checks for root first',
}, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cradle-lab-cli-'));
  try {
    const lab = (...args: string[]) => ['lab', '--dir', dir, ...args];
    await cradleFails(lab('--head-node', '--machines', '3'), /--machines is not for --head-node: give --compute N/);
    await cradleFails(
      lab('--head-node', '--no-tls'),
      /--tls is not for --head-node: a head node always serves with mutual TLS/,
    );
    await cradleFails(lab('--compute', '2'), /--compute goes with --head-node/);
    await cradleFails(
      lab('--head-node', '--interactive', '--answers', 'x.yaml'),
      /--interactive: the wizard writes the answers/,
    );
    await cradleFails(
      lab('--head-node', '--rebirth', '--answers', 'x.yaml'),
      /--rebirth starts the installed head node from its disks/,
    );
    await cradleFails(lab('--head-node', '--compute', '21'), /--compute takes a whole number from 0 to 20, not '21'/);
    // A rebirth needs the previous run's cluster, named: nothing is started without it.
    await cradleFails(
      lab('--head-node', '--rebirth', '--accel', 'tcg'),
      /--rebirth needs the previous run's cluster in .*missing .*head-node\.iso/,
    );
    assert.deepEqual(
      fs.readdirSync(dir).filter((f) => f.endsWith('.raw')),
      [],
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
