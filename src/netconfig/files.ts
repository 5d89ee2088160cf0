// A network plan as the files a new system reads at boot, for ifupdown or systemd-networkd,
// whichever its image carries, with the interface names pinned; and writing them into the new
// root without following its symlinks. Shared by the installer (step 7) and the head node's setup,
// so a compute node and its head node get their networks from one renderer.
import fs from 'node:fs';
import path from 'node:path';
import { mkdirInRoot, writeInRoot } from '../util/in-root.ts';
import { type ResolverSettings, renderHostname, renderInterfaces, renderResolvConf } from './ifupdown.ts';
import { renderNetworkd } from './networkd.ts';
import { type PinnedInterface, renderLinkFiles, renderUdevRules } from './pinning.ts';
import type { NetworkPlan } from './plan.ts';

export type NetworkFlavour = 'ifupdown' | 'networkd';

/** ifupdown when the image has it (Debian's default), else systemd-networkd when present. */
export function networkFlavour(has: (path: string) => boolean): NetworkFlavour | undefined {
  if (has('sbin/ifup') || has('usr/sbin/ifup')) return 'ifupdown';
  if (has('lib/systemd/systemd-networkd') || has('usr/lib/systemd/systemd-networkd')) return 'networkd';
  return undefined;
}

export interface NetworkFiles {
  /** Paths relative to the new root, and their text. */
  files: Map<string, string>;
  /** systemd units to enable, each wanted by its target (as its [Install] section says). */
  enable: { unit: string; wantedBy: string }[];
}

export interface NetworkFilesInput {
  plan: NetworkPlan;
  flavour: NetworkFlavour;
  /** The NICs whose names are pinned; a udev rule needs the bus address, a .link file the MAC. */
  pinned: (Omit<PinnedInterface, 'busId'> & { busId?: string })[];
  hostname?: string;
  /**
   * Where /etc/resolv.conf's servers come from: a subnet's, or `dhcp` to leave the file to the
   * DHCP client (ifupdown's dhclient, networkd's resolved) rather than write one that hides its.
   */
  resolv: ResolverSettings | undefined | 'dhcp';
}

export function renderNetworkFiles(i: NetworkFilesInput): NetworkFiles {
  const files = new Map<string, string>();
  const enable: NetworkFiles['enable'] = [];
  if (i.hostname) files.set('etc/hostname', renderHostname(i.hostname));
  if (i.flavour === 'ifupdown') {
    files.set('etc/network/interfaces', renderInterfaces(i.plan));
    const withBus = i.pinned.filter((p): p is PinnedInterface => !!p.busId);
    files.set('etc/udev/rules.d/70-persistent-net.rules', renderUdevRules(withBus));
  } else {
    for (const [name, text] of renderNetworkd(i.plan)) files.set(`etc/systemd/network/${name}`, text);
    for (const [name, text] of renderLinkFiles(i.pinned)) files.set(`etc/systemd/network/${name}`, text);
    // As `systemctl enable systemd-networkd` does (its Also=): the socket, and the wait that
    // makes network-online.target mean the addresses are there.
    enable.push(
      { unit: 'systemd-networkd.service', wantedBy: 'multi-user.target' },
      { unit: 'systemd-networkd.socket', wantedBy: 'sockets.target' },
      { unit: 'systemd-networkd-wait-online.service', wantedBy: 'network-online.target' },
    );
  }
  if (i.resolv !== 'dhcp') files.set('etc/resolv.conf', renderResolvConf(i.resolv));
  return { files, enable };
}

/** Enables a unit of the new system as `systemctl enable` would for WantedBy=TARGET. */
export function enableUnit(
  root: string,
  unit: string,
  unitDir = '/lib/systemd/system',
  wantedBy = 'multi-user.target',
): void {
  const wants = mkdirInRoot(root, `etc/systemd/system/${wantedBy}.wants`);
  const link = path.join(wants, unit);
  if (!fs.lstatSync(link, { throwIfNoEntry: false })) fs.symlinkSync(path.posix.join(unitDir, unit), link);
}

/** Writes the files (never through a symlink the image put there, e.g. resolv.conf) and enables the units. */
export function writeNetworkFiles(root: string, rendered: NetworkFiles): void {
  for (const [p, text] of rendered.files) writeInRoot(root, p, text);
  for (const e of rendered.enable) enableUnit(root, e.unit, undefined, e.wantedBy);
}
