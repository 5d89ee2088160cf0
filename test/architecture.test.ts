// The shape of src/ that docs/architecture.md promises, checked on every run: no import cycle
// between modules, and imports point only down the layers (a helper never reaches up into the
// installer; the installer never into the CLI). Type-only imports count too: a cycle of types is
// still a knot a newcomer has to untie.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

const src = path.resolve(import.meta.dirname, '../src');

/** Each folder of src/ and its layer: a module may import from its own layer or a lower one. */
export const LAYERS: Record<string, number> = {
  util: 0,
  system: 0,
  image: 1,
  // Within image/: the model, then the store and unpacking, then packing sources and transfer.
  'image/model': 1,
  'image/store': 1.1,
  'image/unpack': 1.1,
  'image/pack': 1.2,
  'image/transfer': 1.2,
  protocols: 1,
  netconfig: 1,
  storage: 1,
  inventory: 1,
  pki: 1,
  installer: 2,
  kit: 2,
  setup: 2,
  status: 3,
  boot: 2,
  initramfs: 2,
  lab: 4,
  cli: 5,
};

/** Every module of src/ (tests excluded) and the modules of src/ it imports. */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  const walk = (dir: string) => {
    for (const ent of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, ent.name);
      if (ent.isDirectory()) walk(p);
      else if (ent.name.endsWith('.ts') && !ent.name.endsWith('.test.ts')) {
        const text = fs.readFileSync(p, 'utf8');
        const deps = [
          ...text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^;]*?\bfrom\s+'(\.[^']+)'|import\(\s*'(\.[^']+)'\s*\)/g),
        ]
          .map((m) => path.relative(src, path.resolve(path.dirname(p), m[1] ?? m[2])))
          .filter((d) => !d.startsWith('..'));
        graph.set(path.relative(src, p), deps);
      }
    }
  };
  walk(src);
  return graph;
}

/** The most specific folder of LAYERS a module is in (image/model before image). */
const folderOf = (module: string) => {
  const parts = module.split(path.sep);
  const sub = parts.slice(0, 2).join('/');
  return LAYERS[sub] !== undefined && parts.length > 2 ? sub : parts[0];
};

test('every folder of src/ has a layer', () => {
  const folders = fs
    .readdirSync(src, { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => e.name);
  assert.deepEqual(
    folders.filter((f) => LAYERS[f] === undefined),
    [],
    'add the new folder to LAYERS and to docs/architecture.md',
  );
});

test('imports point down the layers', () => {
  const wrong: string[] = [];
  for (const [module, deps] of importGraph()) {
    for (const dep of deps) {
      const from = LAYERS[folderOf(module)];
      const to = LAYERS[folderOf(dep)];
      if (to > from || (folderOf(dep) !== folderOf(module) && to === from && folderOf(module).includes('/')))
        wrong.push(`${module} (layer ${from}) imports ${dep} (layer ${to})`);
    }
  }
  assert.deepEqual(wrong, []);
});

test('no import cycle between modules', () => {
  const graph = importGraph();
  const cycles: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (m: string) => {
    state.set(m, 'open');
    stack.push(m);
    for (const d of graph.get(m) ?? []) {
      if (state.get(d) === 'open') cycles.push([...stack.slice(stack.indexOf(d)), d].join(' -> '));
      else if (!state.has(d)) visit(d);
    }
    stack.pop();
    state.set(m, 'done');
  };
  for (const m of graph.keys()) if (!state.has(m)) visit(m);
  assert.deepEqual(cycles, []);
});
