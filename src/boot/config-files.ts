// Dominator's five configuration files for one machine, generated from the machine database: what
// the installer fetches by TFTP (virtual files, chosen by the requesting address) or over HTTP
// (`--configuration-base-url`, chosen by MAC). config.json is Dominator's GetMachineInfoResponse
// with every field the database keeps, so a Dominator installer could use it as well, and a
// machine imported from a config.json is served the same document.
import { machineTo } from '../inventory/dominator-config.ts';
import type { Inventory, Machine, NodeGroup, Subnet } from '../inventory/types.ts';

export interface BootSettings {
  /** Image server address as the installer should reach it, e.g. 10.0.0.1:6971. */
  imageServer: string;
  /** This boot server's base URL, e.g. http://10.0.0.1:6977 (progress reports go there). */
  bootServerUrl: string;
  /** Installed when a machine has no RequiredImage tag. */
  defaultImage?: string;
  /** storage-layout.json for machines without a layout of their own. */
  defaultLayout: Record<string, unknown>;
  toolsImage?: string;
}

export const CONFIG_FILE_NAMES = [
  'config.json',
  'imagename',
  'imageserver',
  'storage-layout.json',
  'tools-imagename',
  'bootserver',
] as const;
export type ConfigFileName = (typeof CONFIG_FILE_NAMES)[number];

/** config.json: the machine with the address it is to keep, and every subnet (inventory/dominator-config.ts). */
export function machineConfig(m: Machine, subnets: Subnet[]): Record<string, unknown> {
  return machineTo(m, subnets);
}

/** config.json's text, as served and as `cradle machine export` prints it. */
export function configJson(m: Machine, subnets: Subnet[]): string {
  return `${JSON.stringify(machineConfig(m, subnets), null, 2)}\n`;
}

/** The machine's node group, when it belongs to one. */
export async function groupOf(inv: Inventory, m: Machine | undefined): Promise<NodeGroup | undefined> {
  return m?.nodeGroup ? inv.getNodeGroup(m.nodeGroup) : undefined;
}

/**
 * The image a machine installs: its RequiredImage tag, else its node group's stream (the image
 * server resolves it to the group's newest build), else the server's default.
 */
export function imageFor(m: Machine, settings: Pick<BootSettings, 'defaultImage'>): string | undefined {
  return m.tags.RequiredImage ?? (m.nodeGroup ? `nodegroup/${m.nodeGroup}` : settings.defaultImage);
}

/**
 * One file's content, or undefined when this machine has no such file (the installer's optional
 * ones). `group` is the machine's node group, whose layout applies unless the machine has its own.
 */
export function configFile(
  name: ConfigFileName,
  m: Machine,
  subnets: Subnet[],
  settings: BootSettings,
  group?: NodeGroup,
): string | undefined {
  switch (name) {
    case 'config.json':
      return configJson(m, subnets);
    case 'imagename': {
      const image = imageFor(m, settings);
      return image ? `${image}\n` : undefined;
    }
    case 'imageserver':
      return `${settings.imageServer}\n`;
    case 'storage-layout.json':
      return `${JSON.stringify(m.storageLayout ?? group?.storageLayout ?? settings.defaultLayout, null, 2)}\n`;
    case 'tools-imagename':
      return settings.toolsImage ? `${settings.toolsImage}\n` : undefined;
    case 'bootserver':
      return `${settings.bootServerUrl}\n`;
  }
}

export function isConfigFileName(name: string): name is ConfigFileName {
  return (CONFIG_FILE_NAMES as readonly string[]).includes(name);
}
