// One machine's installer medium, as Dominator's `hyper-control make-installer-iso` makes it: the
// installer image with that machine's configuration files in its initramfs at /tftpdata, so the
// installer finds config.json present and takes Path A (its address from config.json, no DHCP, no
// TFTP): for sites without DHCP, or a BMC's virtual media. The files are exactly what the boot
// server would serve the machine (boot/config-files.ts over the machine database), checked by the
// installer's own reader before anything is written. They travel as a second cpio archive after
// the image's initramfs (the kernel unpacks both), so the image itself stays the same for every
// machine and carries no machine's data.
import fs from 'node:fs';
import path from 'node:path';
import { CONFIG_FILE_NAMES, configFile, groupOf, type BootSettings } from '../boot/config-files.ts';
import { readConfiguration } from '../installer/load-configuration.ts';
import type { Inventory } from '../inventory/types.ts';
import { subnetOf } from '../netconfig/machine-config.ts';
import { SEED_DEFAULT_LAYOUT } from '../storage/seed-layout.ts';
import { BOOTSERVER_PORT, IMAGESERVER_PORT } from '../util/ports.ts';
import { cpioNewc } from './cpio.ts';
import { concatenatedInitrds } from './installer-files.ts';

/** Where the installer looks for injected configuration (its --tftp-directory default). */
export const TFTPDATA_DIR = 'tftpdata';

export interface MachineFile {
  name: string;
  data: Buffer;
}

export interface MachineIsoSettingsInput {
  /** The boot server's address as machines reach it (`cradle server --address`). */
  address?: string;
  /** The servers serve HTTPS (`cradle server --tls-cert`): the files name https:// URLs. */
  https?: boolean;
  imageServer?: string;
  bootServerUrl?: string;
  defaultImage?: string;
  defaultLayout?: Record<string, unknown>;
  toolsImage?: string;
}

/**
 * The boot server's settings as `cradle server` derives them from the same flags: the image server
 * at ADDRESS:6971 and the boot server at http://ADDRESS:6977 (https for both with TLS), unless
 * named; Dominator's default layout unless one is given.
 */
export function machineIsoSettings(i: MachineIsoSettingsInput): BootSettings {
  if (!i.address && !(i.imageServer && i.bootServerUrl))
    throw new Error(
      "--machine needs the boot server's address as machines reach it: pass --address IP (or both --image-server and --boot-server-url)",
    );
  const scheme = i.https ? 'https' : 'http';
  return {
    imageServer:
      i.imageServer ?? (i.https ? `https://${i.address}:${IMAGESERVER_PORT}` : `${i.address}:${IMAGESERVER_PORT}`),
    bootServerUrl: i.bootServerUrl ?? `${scheme}://${i.address}:${BOOTSERVER_PORT}`,
    defaultImage: i.defaultImage,
    defaultLayout: i.defaultLayout ?? SEED_DEFAULT_LAYOUT,
    toolsImage: i.toolsImage,
  };
}

/**
 * The configuration files the boot server would serve `hostname`, refused unless they install it
 * without DHCP: the machine must be known, have an address in one of the subnets, and the files
 * must pass the installer's own checks (an image to install, a valid layout).
 */
export async function machineTftpdata(
  inv: Inventory,
  hostname: string,
  settings: BootSettings,
  scratch: string,
): Promise<MachineFile[]> {
  const machine = await inv.getMachine(hostname);
  if (!machine)
    throw new Error(`no machine named '${hostname}' in the machine database ('cradle machine list' shows them)`);
  const subnets = await inv.listSubnets();
  const group = await groupOf(inv, machine);
  const files: MachineFile[] = [];
  for (const name of CONFIG_FILE_NAMES) {
    const text = configFile(name, machine, subnets, settings, group);
    if (text !== undefined) files.push({ name, data: Buffer.from(text) });
  }
  const dir = path.join(scratch, TFTPDATA_DIR);
  fs.mkdirSync(dir, { recursive: true });
  for (const f of files) fs.writeFileSync(path.join(dir, f.name), f.data);
  let config: ReturnType<typeof readConfiguration>;
  try {
    config = readConfiguration(dir, true);
  } catch (err) {
    throw new Error(`machine '${hostname}': its configuration would not install: ${(err as Error).message}`);
  }
  const { HostIpAddress: ip } = config.machine.Machine;
  if (!ip)
    throw new Error(
      `machine '${hostname}' has no IP address in the database: booted from its ISO the installer takes its address from config.json (no DHCP); give it one ('cradle machine rm ${hostname}', then 'cradle machine add ${hostname} --ip ADDR --subnet ID ...')`,
    );
  if (!subnetOf(ip, config.machine.Subnets))
    throw new Error(
      `machine '${hostname}': its address ${ip} is in none of the database's subnets, so the installer could not configure its network ('cradle subnet add')`,
    );
  return files;
}

/** The machine's files as a cpio archive of /tftpdata, to follow the image's initramfs. */
export function tftpdataArchive(files: MachineFile[]): Buffer {
  return Buffer.concat(
    cpioNewc([
      { type: 'dir', path: TFTPDATA_DIR, mode: 0o755 },
      ...files.map((f) => ({ type: 'file' as const, path: `${TFTPDATA_DIR}/${f.name}`, data: f.data, mode: 0o644 })),
    ]),
  );
}

/** The image's initramfs with the machine's /tftpdata archive after it. */
export function machineInitramfs(initramfs: Buffer, files: MachineFile[]): Buffer {
  return concatenatedInitrds([initramfs, tftpdataArchive(files)]);
}
