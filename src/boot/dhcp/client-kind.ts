// What a DHCP request says about its client, and what follows from that alone: which boot
// firmware it runs (clientKind: PXE, iPXE, the architecture of option 93 or 60), the file that
// firmware is told to load (bootFile), the firmware to record for a known machine, and the host
// name it offers. Pure; malformed optional options read as absent (lenient).
import type { Machine } from '../../inventory/types.ts';
import { Opt, optionString, optionU16, type DhcpPacket } from '../../protocols/dhcp/packet.ts';
import type { Decision, Firmware, PolicyContext } from './policy-types.ts';

export const DEFAULT_BOOT_FILES: Record<Firmware, string> = {
  bios: 'undionly.kpxe',
  uefi32: 'ipxe-i386.efi',
  uefi64: 'ipxe.efi',
  arm64: 'ipxe-arm64.efi',
};
/** RFC 4578 / IANA processor architecture types (option 93) → the iPXE build for it. */
const ARCH_FIRMWARE = new Map<number, Firmware>([
  [0, 'bios'],
  [6, 'uefi32'],
  [7, 'uefi64'],
  [9, 'uefi64'],
  [11, 'arm64'],
]);

/** A malformed optional option is treated as absent: it must not cost the client its answer. */
export function lenient<T>(read: () => T): T | undefined {
  try {
    return read();
  } catch {
    return undefined;
  }
}

/** What the request says about the client's boot firmware. */
export interface ClientKind {
  pxe: boolean;
  ipxe: boolean;
  arch?: number;
  firmware?: Firmware;
}

export function clientKind(p: DhcpPacket): ClientKind {
  const vendor = lenient(() => optionString(p.options, Opt.VENDOR_CLASS)) ?? '';
  const pxe = vendor.startsWith('PXEClient');
  // iPXE sends option 77 as the bare string "iPXE"; RFC 3004 clients length-prefix each class.
  const uc = p.options.get(77);
  const ipxe =
    !!uc && (uc.toString('latin1') === 'iPXE' || (uc[0] === 4 && uc.subarray(1, 5).toString('latin1') === 'iPXE'));
  // Option 93 first; PXE ROMs also encode it in option 60 ("PXEClient:Arch:00007:UNDI:003016").
  let arch = lenient(() => optionU16(p.options, Opt.CLIENT_ARCH));
  if (arch === undefined && p.options.get(Opt.CLIENT_ARCH)?.length)
    arch = lenient(() => p.options.get(Opt.CLIENT_ARCH)!.readUInt16BE(0));
  if (arch === undefined) {
    const m = /^PXEClient:Arch:(\d{5})/.exec(vendor);
    if (m) arch = Number(m[1]);
  }
  return { pxe: pxe || ipxe, ipxe, arch, firmware: arch === undefined ? undefined : ARCH_FIRMWARE.get(arch) };
}

/** The client's option 12 if it is a valid host name (the inventory refuses others), lower-cased. */
export function clientHostname(p: DhcpPacket): string | undefined {
  const h = lenient(() => optionString(p.options, Opt.HOSTNAME))?.toLowerCase();
  return h && h.length <= 253 && h.split('.').every((l) => /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(l))
    ? h
    : undefined;
}

/** The firmware a known machine PXE-boots with, when the inventory records another one. */
export function firmwarePatch(m: Machine | undefined, k: ClientKind): Decision['machinePatch'] {
  if (!m || k.arch === undefined || !k.pxe) return undefined;
  const fw = k.arch === 0 ? 'bios' : 'uefi';
  return m.firmware === fw ? undefined : { firmware: fw };
}

/** The boot file for this client, or why there is none. */
export function bootFile(ctx: PolicyContext, k: ClientKind, mac: string): { file?: string; why: string } {
  if (k.ipxe) return { file: `${httpBase(ctx)}/boot/${mac}.ipxe`, why: 'iPXE: HTTP script' };
  if (!k.pxe) return { why: 'not a PXE client' };
  if (!k.firmware) return { why: `no iPXE build for client architecture ${k.arch ?? '(none)'}` };
  return {
    file: ctx.config.bootFiles?.[k.firmware] ?? DEFAULT_BOOT_FILES[k.firmware],
    why: `PXE ${k.firmware}: chainload iPXE`,
  };
}

const httpBase = (ctx: PolicyContext) => (ctx.config.httpBootUrl ?? `http://${ctx.serverIp}:6977`).replace(/\/+$/, '');
