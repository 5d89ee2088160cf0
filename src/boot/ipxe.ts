// The iPXE script a machine gets at each network boot, by its state: machines to be (re)installed
// boot the installer; installed (healthy) ones, failed ones (an operator decides: `cradle machine
// set-state NAME rebirth` retries) and unknown ones boot from their own disk (`exit` hands back to
// the firmware, which tries the next boot device). The DHCP server follows the same rule. The kernel command
// line carries where the installer finds its configuration, so no TFTP is needed after iPXE.
import { FIRST_STAGE } from '../initramfs/installer-files.ts';
import type { Machine, MachineState, NodeGroup } from '../inventory/types.ts';

export interface IpxeSettings {
  /** This boot server's base URL as machines reach it, e.g. http://10.0.0.1:6977. */
  baseUrl: string;
  /** Where the installer reports: the base URL, or its https:// twin when the server has TLS. */
  reportUrl?: string;
  /** Extra kernel arguments for the installer (console, quiet, ...). */
  kernelArgs: string;
  /** The installer image's initrds in load order (installerInitrds); initrd.img alone when unset. */
  initrds?: string[];
}

const INSTALL_STATES: readonly MachineState[] = ['birth', 'rebirth', 'clean', 'installing'];

export function bootsInstaller(state: MachineState): boolean {
  return INSTALL_STATES.includes(state);
}

/**
 * iPXE script text for a machine (or an unknown MAC, when `machine` is undefined). Its node
 * group's installer flags go on the installer's kernel command line as `cradle.NAME=VALUE`.
 */
export function ipxeScript(mac: string, machine: Machine | undefined, s: IpxeSettings, group?: NodeGroup): string {
  const lines = [
    '#!ipxe',
    `# Cradle boot server: ${machine ? `${machine.hostname}, state ${machine.state}` : `unknown machine ${mac}`}`,
  ];
  if (!machine || !bootsInstaller(machine.state)) {
    lines.push('echo Booting from the local disk', 'exit');
    return `${lines.join('\n')}\n`;
  }
  const initrds = s.initrds ?? [FIRST_STAGE];
  const args = [
    // The EFI stub's spelling; iPXE on BIOS hands the kernel every initrd below in this order.
    ...initrds.map((f) => `initrd=${f}`),
    `cradle.configuration-base-url=${s.baseUrl}/config/${mac}`,
    `cradle.report-url=${s.reportUrl ?? s.baseUrl}`,
    `BOOTIF=01-${mac.replace(/:/g, '-')}`,
    s.kernelArgs,
    ...(group?.installerFlags ?? []).map((f) => `cradle.${f}`),
  ].filter(Boolean);
  lines.push(
    `echo Installing ${machine.hostname} (${machine.state})`,
    `kernel ${s.baseUrl}/installer/vmlinuz ${args.join(' ')}`,
    ...initrds.map((f) => `initrd ${s.baseUrl}/installer/${f}`),
    'boot',
  );
  return `${lines.join('\n')}\n`;
}
