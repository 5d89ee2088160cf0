// Choosing a node group's kits and components: the rules as golden cases (what an operator's
// --kit and --component give, and each refusal with its reason).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { KitRecord } from './depot.ts';
import { type Kit, KitError, kitSchema } from './format.ts';
import { chooseKits } from './node-group.ts';

const d = (c: string) => `sha256:${c.repeat(64)}` as KitRecord['digest'];
const record = (kit: Partial<Kit> & Pick<Kit, 'name' | 'kind'>, digest: string): KitRecord => ({
  kit: kitSchema.parse({ cradleKit: 1, version: '1', arch: 'x86_64', ...kit }),
  digest: d(digest),
  addedAt: '2026-12-06T00:00:00.000Z',
  signed: false,
  images: { components: {} },
});
const component = (name: string, nodeGroups: string[], os: string[] = []) => ({
  name,
  description: '',
  nodeGroups,
  os,
  manifest: d('f'),
});

const debian = record(
  {
    name: 'debian',
    kind: 'os',
    os: 'debian-12',
    image: d('e'),
    components: [component('head-tools', ['head']), component('compute-tools', ['compute'])],
  },
  '1',
);
const rocky = record({ name: 'rocky', kind: 'os', os: 'rocky-9', image: d('e') }, '2');
const slurm = record(
  {
    name: 'slurm',
    kind: 'addon',
    components: [component('slurmd', ['compute'], ['debian-12']), component('slurmctld', ['head'], ['debian-12'])],
  },
  '3',
);
const rockyOnly = record(
  { name: 'lustre', kind: 'addon', components: [component('client', ['compute'], ['rocky-9'])] },
  '4',
);
const cradle = record({ name: 'cradle', kind: 'addon', components: [component('cradle', ['head'], ['any'])] }, '5');
const arm = record(
  { name: 'gpu', kind: 'addon', arch: 'aarch64', components: [component('driver', ['compute'], ['debian-12'])] },
  '6',
);
const depot = [debian, rocky, slurm, rockyOnly, cradle, arm];
const lookup = (label: string) => {
  const r = depot.find((x) => x.kit.name === label.split('/')[0]);
  if (!r) throw new KitError(`no kit '${label}'`);
  return r;
};
const refused = (fn: () => unknown, re: RegExp) =>
  assert.throws(fn, (e) => e instanceof KitError && re.test(e.message));

describe('choosing a node group’s kits', () => {
  it("without --component: every component of the named kits meant for the group, the OS kit's own first", () => {
    const c = chooseKits('compute', [debian, slurm], [], lookup);
    assert.deepEqual(c.osKit, { name: 'debian', version: '1', digest: d('1') });
    assert.deepEqual(
      c.components.map((x) => `${x.name}:${x.component}`),
      ['debian:compute-tools', 'slurm:slurmd'],
    );
    assert.deepEqual(
      chooseKits('head', [debian, slurm, cradle], [], lookup).components.map((x) => x.component),
      ['head-tools', 'slurmctld', 'cradle'],
      "a component for any OS ('any') fits every OS",
    );
  });

  it('with --component: exactly those, in that order, their kits found in the depot', () => {
    const c = chooseKits('login', [debian], ['slurm:slurmctld', 'cradle/1:cradle'], lookup);
    assert.deepEqual(
      c.components.map((x) => `${x.name}/${x.version}:${x.component}@${x.digest.slice(7, 8)}`),
      ['slurm/1:slurmctld@3', 'cradle/1:cradle@5'],
    );
  });

  it('refuses, saying why', () => {
    refused(
      () => chooseKits('compute', [slurm], [], lookup),
      /node group 'compute' has no OS kit: name one with --kit/,
    );
    refused(
      () => chooseKits('compute', [debian, rocky], [], lookup),
      /names two OS kits \(debian\/1, rocky\/1\): a group installs one operating system/,
    );
    refused(
      () => chooseKits('compute', [debian, rockyOnly], [], lookup),
      /component lustre\/1:client supports rocky-9, not debian-12 \(the OS of node group 'compute', from kit debian\/1\)/,
    );
    refused(
      () => chooseKits('compute', [debian], ['lustre:client'], lookup),
      /component lustre\/1:client supports rocky-9, not debian-12/,
    );
    refused(
      () => chooseKits('compute', [debian], ['gpu:driver'], lookup),
      /component gpu\/1:driver is for aarch64, node group 'compute''s OS kit debian\/1 for x86_64/,
    );
    refused(
      () => chooseKits('storage', [debian, slurm], [], lookup),
      /kit slurm\/1 has no component for node group 'storage' \(its components are for: compute, head\)/,
    );
    refused(() => chooseKits('compute', [debian], ['slurm:munge'], lookup), /kit slurm\/1 has no component 'munge'/);
    refused(() => chooseKits('compute', [debian], ['slurm:slurmd', 'slurm:slurmd'], lookup), /chosen twice/);
    refused(() => chooseKits('compute', [debian], ['rocky:x'], lookup), /kit rocky\/1 has no component 'x'/);
    refused(() => chooseKits('compute', [debian], ['slurmd'], lookup), /write KIT:COMPONENT/);
  });
});
