// Interface names in the installed system must be the names the configuration was rendered for.
// The installer sees kernel names (eth0, ...); the new OS's udev would rename them. Pin each name
// to its NIC: a udev rule by bus address (Dominator's format, for ifupdown systems) or a
// systemd .link file by MAC (for systemd-networkd systems). Sorted by name, so output is stable.
export interface PinnedInterface {
  name: string;
  mac: string;
  busId: string;
}

export function renderUdevRules(ifaces: PinnedInterface[]): string {
  const path = '/etc/udev/rules.d/70-persistent-net.rules';
  const lines = [`# ${path} -- created by the Cradle installer`, ''];
  for (const i of [...ifaces].sort((a, b) => a.name.localeCompare(b.name))) {
    lines.push(
      `SUBSYSTEM=="net", ACTION=="add", DRIVERS=="?*", ATTR{type}=="1", KERNELS=="${i.busId}", NAME="${i.name}"`,
    );
  }
  return `${lines.join('\n')}\n`;
}

/** One .link file per interface, named so it sorts before systemd's 99-default.link. */
export function renderLinkFiles(ifaces: Pick<PinnedInterface, 'name' | 'mac'>[]): Map<string, string> {
  const files = new Map<string, string>();
  for (const i of [...ifaces].sort((a, b) => a.name.localeCompare(b.name))) {
    files.set(
      `10-cradle-${i.name}.link`,
      `# written by the Cradle installer\n[Match]\nMACAddress=${i.mac}\n\n[Link]\nName=${i.name}\n`,
    );
  }
  return files;
}
