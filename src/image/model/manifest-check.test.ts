// checkedManifest against zod (manifestSchema), on valid entries of every type and on thousands of
// entries broken one field at a time and at random: whatever it accepts, zod accepts too, and it
// returns the very same value (keys in the schema's order); valid manifests take its fast path.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { checkedManifest, MANIFEST_FORMAT } from './manifest-check.ts';
import { manifestSchema } from './manifest-schema.ts';

const meta = { mode: 0o644, uid: 0, gid: 1000, mtime: '1700000000.123456789' };
const VALID: Record<string, unknown>[] = [
  { path: '.', type: 'dir', ...meta, mode: 0o755 },
  { path: 'etc', type: 'dir', ...meta, xattrs: { 'user.a': 'YQ==', 'security.capability': '' } },
  { path: 'etc/f', type: 'file', ...meta, size: 3, digest: `sha256:${'a'.repeat(64)}` },
  { path: 'etc/empty', type: 'file', ...meta, size: 0 },
  { path: 'etc/holes', type: 'file', ...meta, size: 1 << 30, digest: `sha256:${'b'.repeat(64)}`, sparse: true },
  { path: 'etc/l', type: 'symlink', ...meta, mode: 0o777, target: 'f' },
  { path: 'etc/h', type: 'hardlink', target: 'etc/f' },
  { path: 'dev/null', type: 'char', ...meta, rdev: { major: 1, minor: 3 } },
  { path: 'dev/sda', type: 'block', ...meta, rdev: { major: 8, minor: 0 } },
  { path: 'run/p', type: 'fifo', ...meta, mode: 0 },
];

/** Values of every JSON kind, edge cases of the fields' ranges among them. */
const ODD: unknown[] = [
  null,
  true,
  false,
  0,
  -0,
  -1,
  1.5,
  0o7777,
  0o10000,
  0xffffffff,
  0x100000000,
  Number.MAX_SAFE_INTEGER,
  2 ** 53,
  1e300,
  '',
  'x',
  '1.5',
  '0.000000000',
  '-1.000000000',
  '1700000000.12345678',
  `sha256:${'a'.repeat(64)}`,
  `sha256:${'A'.repeat(64)}`,
  'YQ==',
  'Y',
  'a'.repeat(4096),
  [],
  [1],
  {},
  { major: 1, minor: 2 },
  { major: 1 },
  { major: 1, minor: 2, extra: 3 },
  { 'user.a': 'YQ==' },
  { '': 'YQ==' },
  { 'user.a': '!!' },
  'dir',
  'file',
  'hardlink',
  'char',
  '__proto__',
];

function agree(json: unknown, why: string): void {
  const fast = checkedManifest(json);
  if (fast === undefined) return;
  const zod = manifestSchema.safeParse(json);
  assert.ok(zod.success, `${why}: accepted by the check, refused by zod: ${JSON.stringify(json).slice(0, 300)}`);
  assert.equal(JSON.stringify(fast), JSON.stringify(zod.data), `${why}: a different value`);
}

const manifest = (entries: unknown[]) => ({ format: MANIFEST_FORMAT, entries });

/** A small seeded generator, so a failure names a case that can be run again. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

describe('checkedManifest against zod', () => {
  test('valid manifests of every entry type: the fast path, with the value zod gives', () => {
    const json = manifest(VALID);
    assert.ok(checkedManifest(json), 'the check accepts them');
    agree(json, 'valid');
    // Keys in another order: zod returns them in the schema's order, and so does the check.
    const reordered = manifest(VALID.map((e) => Object.fromEntries(Object.entries(e).reverse())));
    assert.ok(checkedManifest(reordered));
    agree(reordered, 'reordered');
    assert.equal(JSON.stringify(checkedManifest(reordered)), JSON.stringify(checkedManifest(json)));
  });

  test('each field of each entry removed, replaced by an odd value, or joined by another', () => {
    let cases = 0;
    for (const e of VALID) {
      const keys = [...new Set([...Object.keys(e), 'type', 'size', 'digest', 'sparse', 'target', 'rdev', 'xattrs'])];
      for (const k of keys) {
        const { [k]: _, ...without } = e;
        agree(manifest([without]), `${e.path} without ${k}`);
        for (const v of ODD) agree(manifest([{ ...e, [k]: v }]), `${e.path} with ${k}=${JSON.stringify(v)}`);
        cases += ODD.length + 1;
      }
      agree(manifest([{ ...e, unknown: 1 }]), `${e.path} with an unknown key`);
      agree(
        JSON.parse(`{"format":"${MANIFEST_FORMAT}","entries":[${JSON.stringify(e).replace('{', '{"__proto__":1,')}]}`),
        'a __proto__ key',
      );
    }
    assert.ok(cases > 2000, `${cases} cases`);
  });

  test('extended attributes, checked by hand: names and base64 values as zod takes them', () => {
    const dir = VALID[1];
    const names = ['user.a', '', '1', '__proto__', 'security.capability', 'a'.repeat(300), 'constructor'];
    const values = [
      '',
      'YQ==',
      'YWI=',
      'YWJj',
      'YQ',
      'Y===',
      'YQ=a',
      '====',
      'Y Q==',
      'YQ==\n',
      '+/+/',
      '-_-_',
      1,
      null,
      [],
      {},
    ];
    for (const name of names)
      for (const value of values) {
        agree(manifest([{ ...dir, xattrs: { [name]: value } }]), `xattr ${name}=${JSON.stringify(value)}`);
        agree(manifest([{ ...dir, xattrs: { 'user.b': 'YQ==', [name]: value } }]), `xattrs user.b and ${name}`);
        const parsed = JSON.parse(`{"${name}": ${JSON.stringify(value)}}`);
        agree(manifest([{ ...dir, xattrs: parsed }]), `xattr ${name} from JSON`);
      }
    // The common case takes the fast path, names in their order (numeric names first, as in zod).
    const x = { 'user.z': 'YWJj', '1': '', 'security.capability': 'AQAAAg==' };
    const fast = checkedManifest(manifest([{ ...dir, xattrs: x }]));
    assert.ok(fast);
    assert.deepEqual(Object.keys(fast.entries[0].xattrs as object), ['1', 'user.z', 'security.capability']);
  });

  test('the manifest itself: its format, its keys, its entries', () => {
    for (const json of [
      null,
      [],
      {},
      { format: MANIFEST_FORMAT },
      { format: MANIFEST_FORMAT, entries: [] },
      { format: MANIFEST_FORMAT, entries: {} },
      { format: 'cradle-image-manifest/2', entries: VALID },
      { format: MANIFEST_FORMAT, entries: VALID, extra: true },
      { format: MANIFEST_FORMAT, entries: [...VALID, null] },
      { format: MANIFEST_FORMAT, entries: [...VALID, []] },
    ])
      agree(json, JSON.stringify(json).slice(0, 80));
    assert.equal(checkedManifest({ format: MANIFEST_FORMAT, entries: VALID, extra: true }), undefined);
  });

  test('random entries, field by field: 20,000 of them', () => {
    const next = random(18);
    const pick = <T>(xs: readonly T[]) => xs[Math.floor(next() * xs.length)];
    const fields = [
      'type',
      'path',
      'mode',
      'uid',
      'gid',
      'mtime',
      'xattrs',
      'size',
      'digest',
      'sparse',
      'target',
      'rdev',
    ];
    let accepted = 0;
    for (let i = 0; i < 20_000; i++) {
      const e: Record<string, unknown> = { ...pick(VALID) };
      for (const f of fields) {
        const r = next();
        if (r < 0.1) delete e[f];
        else if (r < 0.2) e[f] = pick(ODD);
      }
      if (checkedManifest(manifest([e]))) accepted++;
      agree(manifest([e]), `random case ${i}`);
    }
    assert.ok(accepted > 500, `the random cases reach the fast path too (${accepted})`);
  });
});
