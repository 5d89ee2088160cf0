// kit.json's rules, each with the message an author sees.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodeKit, KitError, kitDigest, parseKit } from './format.ts';

const M = `sha256:${'a'.repeat(64)}`;
const os = { cradleKit: 1, name: 'debian', version: '12.8-1', kind: 'os', os: 'debian-12', arch: 'x86_64', image: M };
const addon = {
  cradleKit: 1,
  name: 'slurm',
  version: '24.05',
  kind: 'addon',
  arch: 'x86_64',
  components: [{ name: 'slurmd', nodeGroups: ['compute'], os: ['debian-12'], manifest: M }],
};
const parse = (k: object) => parseKit(Buffer.from(JSON.stringify(k)));

test('an OS kit and an add-on kit parse; the same kit encodes to the same bytes and identity', () => {
  assert.equal(parse(os).components.length, 0);
  assert.equal(parse(addon).components[0].description, '');
  assert.equal(kitDigest(encodeKit(parse(addon))), kitDigest(encodeKit(parse(addon))));
});

test('each rule refuses with the field and the fix', () => {
  const cases: [object, RegExp][] = [
    [{ ...os, image: undefined }, /field 'image'.*an OS kit needs "os".*and "image"/],
    [{ ...addon, components: [] }, /an add-on kit needs at least one component/],
    [{ ...addon, image: M }, /an add-on kit brings no OS image/],
    [{ ...addon, components: [{ ...addon.components[0], os: [] }] }, /components\.0\.os.*names the OS it supports/],
    [{ ...addon, components: [addon.components[0], addon.components[0]] }, /component 'slurmd' appears twice/],
    [{ ...addon, components: [{ ...addon.components[0], nodeGroups: [] }] }, /name at least one node group/],
    [{ ...addon, name: 'Slurm!' }, /field 'name'.*lowercase letters/],
    [{ ...addon, components: [{ ...addon.components[0], manifest: 'md5:x' }] }, /expected a digest/],
    [{ ...addon, cradleKit: 2 }, /not a Cradle kit of format 1/],
    [{ ...addon, extra: true }, /extra|Unrecognized key/],
  ];
  for (const [k, why] of cases)
    assert.throws(
      () => parse(k),
      (e: Error) => e instanceof KitError && why.test(e.message),
      JSON.stringify(k),
    );
});
