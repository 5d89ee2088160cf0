// `cradle server`: the boot server's roles in one process around one machine database. DHCP
// answers PXE and hands out addresses; TFTP serves the iPXE binaries and each machine's
// configuration files (chosen by the requesting address); HTTP serves iPXE scripts, the installer,
// the configuration files by MAC and the progress API. Roles can be split across hosts.
import { DEFAULT_BOOT_FILES } from './dhcp/client-kind.ts';
import fs from 'node:fs';
import path from 'node:path';
import { createDhcpServer, type DhcpServer, type DhcpServerConfig } from './dhcp/server.ts';
import { createTftpServer, type TftpServer } from './tftp/server.ts';
import { bootHttpHandler, keepLeaseAddress } from './http.ts';
import type { IpxeSettings } from './ipxe.ts';
import { dualProtocolServer, pemCertificates, type ServerTlsFiles } from '../pki/serve.ts';
import { readPem } from '../util/request.ts';
import { configFile, groupOf, isConfigFileName, type BootSettings } from './config-files.ts';
import type { Inventory, Machine } from '../inventory/types.ts';
import type { ConnectionLimits } from '../util/http/connections.ts';
import { listen } from '../util/listen.ts';

export type Role = 'dhcp' | 'tftp' | 'http';

export interface BootServerOptions {
  inventory: Inventory;
  roles: Role[];
  /** This server's address as machines reach it. */
  address: string;
  httpPort: number;
  tftpPort: number;
  /** Interfaces DHCP listens on. */
  interfaces: string[];
  dhcp: DhcpServerConfig;
  settings: Omit<BootSettings, 'bootServerUrl'>;
  installerDir?: string;
  /** Served by TFTP: iPXE binaries (undionly.kpxe, ipxe.efi, ...). */
  tftpRoot?: string;
  kernelArgs: string;
  /**
   * HTTPS next to HTTP on the HTTP port: installers report over it with their certificate, and
   * the machine API and the dashboard need a client certificate the CA signed (or, for them
   * only, one of an operator CA: `operatorCa`).
   */
  tls?: ServerTlsFiles;
  /** Connection limits of the HTTP port (util/http/connections.ts). */
  limits?: ConnectionLimits;
  /** Unknown MACs that DHCP served are registered in state birth (DhcpServerConfig.unknownMachines 'birth'). */
  log: (line: string) => void;
}

export interface RunningBootServer {
  httpUrl?: string;
  tftp?: { address: string; port: number };
  close(): Promise<void>;
}

/** Where Debian's ipxe package puts the binaries PXE firmware chainloads. */
export const DEBIAN_IPXE_DIR = '/usr/lib/ipxe';
/** What PXE firmware is told to load by default (boot/dhcp/client-kind.ts), and iPXE's other builds. */
const IPXE_BINARIES = [...Object.values(DEFAULT_BOOT_FILES), 'snponly.efi', 'ipxe.pxe', 'ipxe.lkrn'];

/** The machine behind a TFTP client address: by static IP, else by its current lease. */
async function machineAt(inv: Inventory, ip: string): Promise<{ machine: Machine; leaseMac?: string } | undefined> {
  const machines = await inv.listMachines();
  const stat = machines.find((m) => m.ip === ip);
  if (stat) return { machine: stat };
  const lease = (await inv.listLeases()).find((l) => l.ip === ip && Date.parse(l.expiresAt) > Date.now());
  const leased = lease && machines.find((m) => m.macs.includes(lease.mac));
  return leased ? { machine: leased, leaseMac: lease.mac } : undefined;
}

export async function startBootServer(o: BootServerOptions): Promise<RunningBootServer> {
  // Firmware fetches over plain HTTP; the installer reports over HTTPS when there is TLS.
  let baseUrl = `http://${o.address}:${o.httpPort}`;
  const settings: BootSettings = {
    ...o.settings,
    bootServerUrl: o.tls ? `https://${o.address}:${o.httpPort}` : baseUrl,
  };
  const ipxe: IpxeSettings = { baseUrl, reportUrl: settings.bootServerUrl, kernelArgs: o.kernelArgs };
  const closers: (() => Promise<void>)[] = [];
  const running: RunningBootServer = {
    close: async () => {
      for (const c of closers.reverse()) await c();
    },
  };
  try {
    if (o.roles.includes('http')) {
      const handler = bootHttpHandler({
        inventory: o.inventory,
        settings,
        ipxe,
        installerDir: o.installerDir,
        log: o.log,
        requireClientCertificates: !!o.tls,
        ...(o.tls ? { siteCa: pemCertificates(readPem(o.tls.ca, 'the client CA')) } : {}),
      });
      const dual = dualProtocolServer(handler, o.tls, o.limits);
      const addr = await listen(dual.server, o.httpPort, o.address === '0.0.0.0' ? undefined : o.address);
      running.httpUrl = `http://${o.address}:${addr.port}`;
      // Port 0 asked for any free port: what machines are told is the one bound.
      ipxe.baseUrl = baseUrl = running.httpUrl;
      ipxe.reportUrl = settings.bootServerUrl = o.tls ? running.httpUrl.replace(/^http:/, 'https:') : running.httpUrl;
      closers.push(() => dual.close());
      o.log(
        o.tls
          ? `HTTP boot on ${running.httpUrl}, HTTPS on the same port: reports, the machine API and the dashboard need a client certificate of ${o.tls.ca}${o.tls.operatorCa?.length ? `; the machine API and the dashboard also one of ${o.tls.operatorCa.join(', ')} (operators only)` : ''}`
          : `HTTP boot on ${running.httpUrl}; no TLS: the machine API and the dashboard are open to anyone who reaches this port (--tls-cert, --tls-key, --tls-ca)`,
      );
    }
    if (o.roles.includes('tftp')) {
      const tftp: TftpServer = createTftpServer({
        root: o.tftpRoot,
        address: o.address,
        port: o.tftpPort,
        log: o.log,
        // Dominator's configuration files, generated for whoever asks, by its address.
        // Configuration names are never served from the root: a stray file there must not reach
        // the wrong machine (null: not found).
        resolve: async (file, client) => {
          const name = path.posix.basename(file);
          // Without a root of the operator's, Debian's iPXE binaries by name: the package links
          // ipxe.efi into /boot, outside any directory a TFTP root check would accept.
          if (o.tftpRoot === undefined && !file.includes('/') && IPXE_BINARIES.includes(file)) {
            const p = path.join(DEBIAN_IPXE_DIR, file);
            return fs.existsSync(p) ? p : null;
          }
          if (!isConfigFileName(name) || file.includes('/')) return undefined;
          const found = await machineAt(o.inventory, client.address);
          if (!found) return null;
          const machine = await keepLeaseAddress(o.inventory, found.machine, found.leaseMac);
          const group = await groupOf(o.inventory, machine);
          const text = configFile(name, machine, await o.inventory.listSubnets(), settings, group);
          return text === undefined ? null : Buffer.from(text);
        },
      });
      running.tftp = await tftp.listen();
      closers.push(() => tftp.close());
      o.log(`TFTP on ${running.tftp.address}:${running.tftp.port}`);
    }
    if (o.roles.includes('dhcp')) {
      if (!o.interfaces.length) throw new Error('the dhcp role needs --interface (the networks it answers on)');
      const dhcp: DhcpServer = createDhcpServer({
        interfaces: o.interfaces,
        inventory: o.inventory,
        config: { httpBootUrl: baseUrl, tftpServer: o.address, ...o.dhcp },
        log: o.log,
        onUnknownMachine: async (mac, info) => {
          o.log(
            `unknown machine ${mac} on ${info.interface ?? info.relay ?? '?'} (${info.firmware ?? 'no PXE'})${info.served ? ': given a pool address' : ''}`,
          );
          if (!info.served || o.dhcp.unknownMachines !== 'birth' || (await o.inventory.findMachineByMac(mac))) return;
          const hostname = `m-${mac.replace(/:/g, '')}`;
          await o.inventory.addMachine({
            hostname,
            macs: [mac],
            tags: {},
            state: 'birth',
            ...(info.subnetId ? { subnetId: info.subnetId } : {}),
          });
          o.log(`registered ${mac} as ${hostname} (birth)`);
        },
      });
      await dhcp.start();
      closers.push(() => dhcp.close());
      o.log(`DHCP on ${o.interfaces.join(', ')} (${o.dhcp.mode ?? 'server'} mode)`);
    }
  } catch (err) {
    await running.close();
    throw err;
  }
  return running;
}
