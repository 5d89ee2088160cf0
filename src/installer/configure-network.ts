// Step 7: the new system's network. Links with carrier are trunked (a bond when two or more), the
// machine's addresses configured, and a VLAN plus bridge made for each managed subnet, as Dominator's
// installer does; rendered for ifupdown or systemd-networkd, whichever the image carries, with the
// interface names pinned. A -networkConfigurator programme replaces all of this.
import fs from 'node:fs';
import path from 'node:path';
import { networkFlavour, renderNetworkFiles, writeNetworkFiles } from '../netconfig/files.ts';
import { planNetwork } from '../netconfig/plan.ts';
import type { Manifest } from '../image/model/manifest.ts';
import type { MachineConfig } from '../netconfig/machine-config.ts';
import type { InstallContext } from './context.ts';
import { type EthernetInterface, hasCarrier } from './interfaces.ts';
import { hookEnv } from './load-configuration.ts';

/** What step 7 needs: this machine's configuration, its interfaces, and the image (to choose the flavour). */
export interface NetworkInput {
  machine: MachineConfig;
  interfaces: EthernetInterface[];
  activeInterface: string;
  /** The image installed; without it (a dry run) the flavour is read from the mounted root. */
  manifest?: Manifest;
}

export async function configureNetwork(ctx: InstallContext, input: NetworkInput): Promise<void> {
  const { opts, exec } = ctx;
  const root = opts.mountPoint;
  if (opts.networkConfigurator) {
    await exec.change(opts.networkConfigurator, [opts.tftpDirectory, root, input.activeInterface, opts.tmpRoot], {
      env: hookEnv(),
    });
    return;
  }
  const machine = input.machine;
  const links = input.interfaces.map((i) => ({ name: i.name, mac: i.mac, up: hasCarrier(opts.sysfs, i.name) }));
  const plan = planNetwork(machine, links);
  for (const w of plan.warnings) ctx.log.info(`network: ${w}`);
  for (const name of plan.down) {
    if (name === input.activeInterface) continue;
    await exec
      .change('ip', ['link', 'set', 'dev', name, 'down'])
      .catch((err: Error) => ctx.log.info(`${name}: ${err.message}`));
  }

  const paths = new Set(input.manifest?.entries.map((e) => e.path));
  const detected = networkFlavour((p) => (input.manifest ? paths.has(p) : fs.existsSync(path.join(root, p))));
  const flavour = detected ?? 'ifupdown';
  if (!detected)
    ctx.log.info('the image has neither ifupdown nor systemd-networkd: writing /etc/network/interfaces anyway');
  const rendered = renderNetworkFiles({
    plan,
    flavour,
    pinned: input.interfaces,
    hostname: machine.Machine.Hostname,
    resolv: plan.defaultSubnet,
  });
  await exec.act(`write the ${flavour} network configuration`, () => writeNetworkFiles(root, rendered));
  ctx.log.info(
    `network: ${flavour} configuration written for ${
      links
        .filter((l) => l.up)
        .map((l) => l.name)
        .join(', ') || 'no live link'
    }`,
  );
}
