// `cradle server`: the boot server (DHCP, TFTP, HTTP boot and the machine API) over the machine
// database. Argument parsing only; src/boot/server.ts does the work.
import fs from 'node:fs';
import path from 'node:path';
import { Option, type Command } from 'commander';
import { startBootServer, type Role } from '../boot/server.ts';
import { openInventory } from '../inventory/open.ts';
import { parseStorageLayout } from '../storage/layout.ts';
import { BOOTSERVER_PORT, IMAGESERVER_PORT } from '../util/ports.ts';
import { interfaceIpv4 } from '../system/packet-socket.ts';
import { DEFAULT_LIMITS } from '../util/http/connections.ts';
import { defaultDb } from './db.ts';
import { addConnectionLimitOptions, connectionLimits, tlsTriple, type ConnectionLimitFlags } from './program.ts';
import { SEED_DEFAULT_LAYOUT } from '../storage/seed-layout.ts';

interface ServerFlags extends ConnectionLimitFlags {
  db: string;
  roles: string;
  address?: string;
  interface: string[];
  httpPort: string;
  tftpPort: string;
  proxyDhcp?: boolean;
  unknownMachines: 'ignore' | 'lease' | 'birth';
  imageServer?: string;
  defaultImage?: string;
  defaultLayout?: string;
  toolsImage?: string;
  installerDir?: string;
  depot?: string;
  installerTls?: string;
  tftpRoot?: string;
  kernelArgs: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
  operatorCa: string[];
}

async function installerFromDepot(
  dir: string,
  tls: { ca: string; cert: string; key: string } | undefined,
  log: (line: string) => void,
): Promise<string> {
  const { Depot } = await import('../kit/depot.ts');
  const { servedInstaller } = await import('../kit/served.ts');
  const served = await servedInstaller(new Depot(dir), { tls });
  if (!served)
    throw new Error(
      `the depot ${dir} has no Cradle kit with an installer image: add one ('cradle kit build-cradle', 'cradle kit add'), or give --installer-dir`,
    );
  log(`installer image from kit cradle/${served.kit.kit.version}: ${served.dir}`);
  return served.dir;
}

export function registerServerCommand(program: Command): void {
  const collect = (v: string, acc: string[]) => [...acc, v];
  const cmd = program
    .command('server')
    .description('boot server: DHCP (PXE), TFTP, HTTP boot and the machine API, over the machine database')
    .option(
      '--db <url>',
      'machine database: a SQLite file or postgres://... (env CRADLE_DB; on a head node its settings file)',
      defaultDb(),
    )
    .option('--roles <list>', 'what to run: dhcp,tftp,http', 'dhcp,tftp,http')
    .option('--interface <name>', 'network DHCP answers on (repeatable)', collect, [] as string[])
    .option('--address <ip>', "this server's address as machines reach it (default: the first --interface's)")
    .option('--http-port <port>', 'HTTP boot and API port', String(BOOTSERVER_PORT))
    .option('--tftp-port <port>', 'TFTP port', '69')
    .option('--proxy-dhcp', 'another DHCP server gives addresses: only add boot information for PXE clients')
    .addOption(
      new Option(
        '--unknown-machines <what>',
        'MACs not in the database: ignore, lease (an address only), birth (register and install)',
      )
        .choices(['ignore', 'lease', 'birth'])
        .default('ignore'),
    )
    .option('--image-server <address>', 'image server as machines reach it (default: this address, port 6971)')
    .option('--default-image <name>', 'installed on machines without a RequiredImage tag')
    .option(
      '--default-layout <file>',
      "storage-layout.json for machines without their own (default: Dominator's default)",
    )
    .option('--tools-image <name>', 'the installer tools image (tools-imagename)')
    .option('--installer-dir <dir>', 'the installer image: vmlinuz and initrd.img (cradle build-installer)')
    .option(
      '--depot <dir>',
      "a head node's depot: the installer image comes from its Cradle kit (unless --installer-dir)",
    )
    .option(
      '--installer-tls <dir>',
      'with --depot: the installer image carries this certificate (DIR/cert.pem, DIR/key.pem) and --tls-ca, so installers present it',
    )
    .option('--tftp-root <dir>', "files served by TFTP (default: Debian's iPXE binaries, /usr/lib/ipxe)")
    .option('--kernel-args <args>', 'extra kernel arguments for the installer', 'console=tty0 console=ttyS0,115200n8')
    .option(
      '--tls-cert <file>',
      'serve HTTPS too (same port) with this certificate; the installers then report over it',
    )
    .option('--tls-key <file>', 'key of --tls-cert')
    .option(
      '--tls-ca <file>',
      'CA whose client certificates may report (installers) and use the API and dashboard (operators)',
    )
    .option(
      '--operator-ca <file>',
      "with --tls-ca: another CA (a site's own PKI) whose client certificates may use the API and dashboard, never report as installers (repeatable)",
      collect,
      [] as string[],
    );
  addConnectionLimitOptions(cmd, DEFAULT_LIMITS).action(async (f: ServerFlags) => {
    const roles = f.roles.split(',').map((r) => r.trim()) as Role[];
    const bad = roles.filter((r) => !['dhcp', 'tftp', 'http'].includes(r));
    if (bad.length) throw new Error(`--roles: unknown role ${bad.join(', ')}; use dhcp, tftp, http`);
    // Read from the kernel, not os.networkInterfaces(), which leaves out links without carrier.
    const address = f.address ?? (f.interface[0] ? interfaceIpv4(f.interface[0])?.address : undefined);
    if (!address)
      throw new Error(
        'no server address: pass --address, or --interface of a network this host has an IPv4 address on',
      );
    if (address === '0.0.0.0')
      throw new Error(
        "--address is what machines are told to reach: give this host's address on their network, not 0.0.0.0",
      );
    // An empty one is none: a head node's settings file from before CRADLE_OPERATOR_CA gives ''.
    const operatorCa = f.operatorCa.filter(Boolean);
    if (operatorCa.length && !f.tlsCa)
      throw new Error('--operator-ca goes with --tls-ca, --tls-cert and --tls-key: operators are known by HTTPS');
    const triple = tlsTriple(f, 'plain HTTP');
    const tls = triple && operatorCa.length ? { ...triple, operatorCa } : triple;
    const layout = f.defaultLayout
      ? parseStorageLayout(fs.readFileSync(f.defaultLayout, 'utf8'), f.defaultLayout)
      : SEED_DEFAULT_LAYOUT;
    const log = (line: string) => console.error(`${new Date().toISOString()} ${line}`);
    if (f.installerTls && !f.tlsCa) throw new Error('--installer-tls goes with --tls-ca (the CA the installers trust)');
    const installerTls =
      f.installerTls && f.tlsCa
        ? { ca: f.tlsCa, cert: path.join(f.installerTls, 'cert.pem'), key: path.join(f.installerTls, 'key.pem') }
        : undefined;
    const installerDir = f.installerDir ?? (f.depot ? await installerFromDepot(f.depot, installerTls, log) : undefined);
    const inventory = await openInventory(f.db);
    const server = await startBootServer({
      inventory,
      roles,
      address,
      httpPort: Number(f.httpPort),
      tftpPort: Number(f.tftpPort),
      interfaces: f.interface,
      dhcp: { mode: f.proxyDhcp ? 'proxy' : 'server', unknownMachines: f.unknownMachines },
      // A fleet with TLS has its image server on TLS too, unless told otherwise.
      settings: {
        imageServer:
          f.imageServer ?? (tls ? `https://${address}:${IMAGESERVER_PORT}` : `${address}:${IMAGESERVER_PORT}`),
        defaultImage: f.defaultImage,
        defaultLayout: layout as Record<string, unknown>,
        toolsImage: f.toolsImage,
      },
      installerDir,
      tftpRoot: f.tftpRoot,
      kernelArgs: f.kernelArgs,
      tls,
      limits: connectionLimits(f, DEFAULT_LIMITS),
      log,
    });
    const stop = async () => {
      await server.close();
      await inventory.close();
      process.exit(0);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}
