// Step 3: the configuration files (Dominator's "Configuration data"): config.json, imagename,
// imageserver, storage-layout.json, tools-imagename, plus our optional `bootserver` (where progress
// is reported). Already present in the TFTP directory → used as they are. Otherwise written by a
// -configurationLoader programme, fetched from -configurationBaseUrl, or fetched by TFTP. Every
// file is validated before anything else happens, and a bad one names the file, field and fix.
import fs from 'node:fs';
import path from 'node:path';
import { tftpGet, TftpError } from '../protocols/tftp/client.ts';
import { machineConfigNotes, parseMachineConfig } from '../netconfig/machine-config.ts';
import { parseStorageLayout, storageLayoutNotes } from '../storage/layout.ts';
import { writeFileAtomic } from '../util/atomic-file.ts';
import { checkImageName } from '../image/model/names.ts';
import type { Configuration, InstallContext } from './context.ts';
import type { EthernetInterface } from './interfaces.ts';

export const CONFIG_FILES = [
  'config.json',
  'imagename',
  'imageserver',
  'storage-layout.json',
  'tools-imagename',
  'bootserver',
] as const;
const REQUIRED = new Set(['config.json']);

export class ConfigurationError extends Error {
  override name = 'ConfigurationError';
}

/** Fetches the configuration files into `dir`: by the loader programme, over HTTP, or by TFTP. */
export async function fetchConfiguration(
  ctx: InstallContext,
  dir: string,
  interfaces: EthernetInterface[],
  activeInterface: string,
  tftpServer: string | undefined,
): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  if (ctx.opts.configurationLoader) {
    ctx.log.info(`running configuration loader ${ctx.opts.configurationLoader}`);
    await ctx.exec.read(ctx.opts.configurationLoader, [dir, activeInterface], { env: hookEnv() });
  } else if (ctx.opts.configurationBaseUrl) {
    await fetchOverHttp(ctx, ctx.opts.configurationBaseUrl, dir, interfaces);
  } else {
    if (!tftpServer)
      throw new ConfigurationError(
        'no TFTP server: DHCP gave no next-server (siaddr) or option 66; pass --tftp-server-hostname, tftpserver= on the kernel command line, or --configuration-base-url',
      );
    await fetchOverTftp(ctx, tftpServer, dir);
  }
}

/** The environment hook programmes get: a known PATH, not the installer's. */
export function hookEnv(): NodeJS.ProcessEnv {
  return { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/', LANG: 'C.UTF-8' };
}

/**
 * Dominator's TFTP fetch: every configuration file from `server` (HOST or HOST:PORT) into `dir`,
 * config.json required, the others when the server has them; then `random-seed`, when the server
 * has one, mixed into /dev/urandom. Also `load-configuration-from-tftp`'s whole work.
 */
export async function fetchOverTftp(
  ctx: Pick<InstallContext, 'exec' | 'log'>,
  server: string,
  dir: string,
): Promise<void> {
  for (const file of CONFIG_FILES) {
    try {
      const { data } = await tftpGet(server, file, { maxBytes: 4 * 1024 * 1024 });
      writeFileAtomic(path.join(dir, file), data);
      ctx.log.info(`fetched ${file} (${data.length} bytes) from tftp://${server}`);
    } catch (err) {
      if (err instanceof TftpError && err.notFound && !REQUIRED.has(file)) continue;
      throw new ConfigurationError(`cannot fetch ${file} from TFTP server ${server}: ${(err as Error).message}`);
    }
  }
  try {
    const { data } = await tftpGet(server, 'random-seed', { maxBytes: 4096 });
    await ctx.exec.act('mix random-seed into /dev/urandom', () => {
      fs.writeFileSync('/dev/urandom', data);
      ctx.log.info(`mixed random-seed (${data.length} bytes) from tftp://${server} into /dev/urandom`);
    });
  } catch {
    // optional
  }
}

/** -configurationBaseUrl: GET <base>/<file>?mac=..&serial_number=.., with a timeout and retries. */
async function fetchOverHttp(
  ctx: InstallContext,
  base: string,
  dir: string,
  interfaces: EthernetInterface[],
): Promise<void> {
  const query = new URLSearchParams();
  for (const i of interfaces) query.append('mac', i.mac);
  const serial = machineSerial(ctx.opts.sysfs);
  if (serial) query.append('serial_number', serial);
  for (const file of CONFIG_FILES) {
    const url = `${base.replace(/\/+$/, '')}/${file}?${query}`;
    let res: Response | undefined;
    let lastError: unknown;
    for (let attempt = 0; attempt < 4 && !res; attempt++) {
      if (attempt) await new Promise((r) => setTimeout(r, 500 * 2 ** attempt));
      try {
        res = await fetch(url, { signal: AbortSignal.timeout(30_000) });
      } catch (err) {
        lastError = err;
      }
    }
    if (!res) throw new ConfigurationError(`cannot fetch ${url}: ${(lastError as Error).message}`);
    if (res.status === 404 && !REQUIRED.has(file)) continue;
    if (!res.ok) throw new ConfigurationError(`cannot fetch ${url}: HTTP ${res.status}`);
    const data = Buffer.from(await res.arrayBuffer());
    writeFileAtomic(path.join(dir, file), data);
    ctx.log.info(`fetched ${file} (${data.length} bytes) from ${base}`);
  }
}

const BOGUS_SERIALS = new Set(['0123456789', 'System Serial Number', 'To be filled by O.E.M.', 'Default string']);

export function machineSerial(sysfs: string): string | undefined {
  for (const f of ['product_serial', 'board_serial']) {
    try {
      const s = fs
        .readFileSync(path.join(sysfs, 'class', 'dmi', 'id', f), 'utf8')
        .slice(0, 256)
        .trim();
      if (s && !BOGUS_SERIALS.has(s)) return s;
    } catch {
      // not readable
    }
  }
  return undefined;
}

function readOptional(dir: string, file: string): string | undefined {
  try {
    return fs.readFileSync(path.join(dir, file), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Reads and validates every configuration file; the first problem found is the error. */
export function readConfiguration(dir: string, needStorage: boolean): Configuration {
  const configText = readOptional(dir, 'config.json');
  if (configText === undefined) throw new ConfigurationError(`${dir}/config.json is missing`);
  const machine = parseMachineConfig(configText, path.join(dir, 'config.json'));
  const word = (file: string) => readOptional(dir, file)?.trim() || undefined;
  const imageName = word('imagename');
  const toolsImageName = word('tools-imagename');
  for (const [file, value] of [
    ['imagename', imageName],
    ['tools-imagename', toolsImageName],
  ] as const) {
    if (value !== undefined) {
      try {
        checkImageName(value);
      } catch (err) {
        throw new ConfigurationError(`${dir}/${file}: ${(err as Error).message}`);
      }
    }
  }
  const config: Configuration = {
    machine,
    imageName,
    toolsImageName,
    imageServer: word('imageserver'),
    bootServer: word('bootserver'),
  };
  if (needStorage) {
    if (!imageName)
      throw new ConfigurationError(`${dir}/imagename is missing or empty: name the image (or stream) to install`);
    const layoutText = readOptional(dir, 'storage-layout.json');
    if (layoutText === undefined)
      throw new ConfigurationError(
        `${dir}/storage-layout.json is missing: it says how to lay out the drives (docs/schemas/storage-layout.schema.json)`,
      );
    config.layout = parseStorageLayout(layoutText, path.join(dir, 'storage-layout.json'));
  }
  return config;
}

/**
 * What the configuration holds that this installer accepts but does not use (fields of Dominator's
 * types Cradle ignores, keys that are not Dominator's): logged, so a site sees what had no effect.
 */
export function configurationNotes(config: Configuration, dir: string): string[] {
  return [
    ...machineConfigNotes(config.machine, path.join(dir, 'config.json')),
    ...(config.layout ? storageLayoutNotes(config.layout, path.join(dir, 'storage-layout.json')) : []),
  ];
}
