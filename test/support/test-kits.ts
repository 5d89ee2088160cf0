// Small kits for the tests, built with `cradle kit build` as an operator builds them: an OS kit
// (when `os` is given) or an add-on with one component, from a few files or a tree given.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { cradleBin } from '../helpers.ts';

const run = promisify(execFile);

export interface TestKit {
  name: string;
  version: string;
  /** An OS kit bringing this OS (e.g. debian-12); an add-on when absent. */
  os?: string;
  /** An add-on's component: NAME:GROUP[,GROUP]:OS (its source is the kit's tree). */
  component?: string;
  /** The tree: these files, or a directory already made. */
  files?: Record<string, string | Buffer>;
  tree?: string;
}

/** Writes DIR/NAME.kit and returns its path. */
export async function buildTestKit(dir: string, k: TestKit): Promise<string> {
  let tree = k.tree;
  if (!tree) {
    tree = path.join(dir, `${k.name}-${k.version}-tree`);
    for (const [rel, content] of Object.entries(k.files ?? { [`usr/share/doc/${k.name}/README`]: `${k.name}\n` })) {
      fs.mkdirSync(path.dirname(path.join(tree, rel)), { recursive: true });
      fs.writeFileSync(path.join(tree, rel), content);
    }
  }
  const out = path.join(dir, `${k.name}.kit`);
  const kind = k.os ? ['--kind', 'os', '--os', k.os, '--image', tree] : ['--kind', 'addon'];
  const [name, groups, os] = (k.component ?? '').split(':');
  const component = k.component ? ['--component', `${name}:${groups}:${tree}:${os}`] : [];
  await run(cradleBin, ['kit', 'build', '--out', out, '--name', k.name, '--version', k.version, ...kind, ...component]);
  return out;
}
