// The boot server's HTTP side (port 6977): iPXE scripts per machine, the installer's kernel and
// initramfs, each machine's configuration files (the installer's --configuration-base-url), the
// progress API the installer posts to, the report of an installed system, and the machine API.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { Inventory, Machine } from '../inventory/types.ts';
import { HttpError, readJsonBody, sendError, sendJson, type Req, type Res } from '../image/http-util.ts';
import { configFile, isConfigFileName, type BootSettings } from './config-files.ts';
import { applyEvents, eventsBodySchema, machineOf } from './events.ts';
import { ipxeScript, type IpxeSettings } from './ipxe.ts';

export interface BootHttpOptions {
  inventory: Inventory;
  settings: BootSettings;
  ipxe: IpxeSettings;
  /** Directory holding the installer's vmlinuz and initrd.img. */
  installerDir?: string;
  log?: (line: string) => void;
}

const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

function macParam(raw: string): string {
  const mac = decodeURIComponent(raw).toLowerCase().replace(/-/g, ':');
  if (!MAC_RE.test(mac)) throw new HttpError(400, 'bad MAC address', `'${raw}' is not a MAC address such as de:ad:be:ef:00:01`);
  return mac;
}

export function createBootHttpServer(o: BootHttpOptions): http.Server {
  const log = o.log ?? (() => {});
  const inv = o.inventory;

  /** The installer boots again after a successful install only if that install's result was lost. */
  async function scriptFor(mac: string): Promise<string> {
    const m = await inv.findMachineByMac(mac);
    if (m?.state === 'installing' && (await inv.getProgress(m.hostname))?.result?.ok) {
      return ipxeScript(mac, { ...m, state: 'healthy' }, o.ipxe); // installed, not yet reported in
    }
    return ipxeScript(mac, m, o.ipxe);
  }

  async function configFor(macs: string[], file: string, res: Res): Promise<void> {
    if (!isConfigFileName(file)) throw new HttpError(404, 'not found', `no configuration file '${file}'`);
    let m: Machine | undefined;
    for (const mac of macs) m ??= await inv.findMachineByMac(mac);
    if (!m) throw new HttpError(404, 'unknown machine', `no machine has MAC ${macs.join(' or ')}: add it with 'cradle machine add'`);
    const lease = await inv.getLease(m.macs[0]);
    const text = configFile(file, m, await inv.listSubnets(), o.settings, lease?.ip);
    if (text === undefined) throw new HttpError(404, 'not found', `${m.hostname} has no ${file}`);
    res.writeHead(200, { 'content-type': file.endsWith('.json') ? 'application/json' : 'text/plain', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
    res.end(text);
  }

  // The installer's kernel and initramfs go to every machine of a rack at once: held in memory
  // (re-read when the file changes) and written from there, instead of read again per machine.
  const held = new Map<string, { mtimeMs: number; size: number; data: Buffer }>();
  function sendFile(req: Req, res: Res, file: string): void {
    const st = fs.statSync(file, { throwIfNoEntry: false });
    if (!st?.isFile()) throw new HttpError(404, 'not found', `${path.basename(file)} is not on this boot server (build it with 'cradle build-installer')`);
    let h = held.get(file);
    if (!h || h.mtimeMs !== st.mtimeMs || h.size !== st.size) {
      h = { mtimeMs: st.mtimeMs, size: st.size, data: fs.readFileSync(file) };
      held.set(file, h);
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': h.data.length, 'last-modified': st.mtime.toUTCString() });
    res.end(req.method === 'HEAD' ? undefined : h.data);
  }

  async function route(req: Req, res: Res): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://boot');
    const p = url.pathname;
    let m: RegExpExecArray | null;
    if (req.method === 'GET' && (m = /^\/boot\/([^/]+)\.ipxe$/.exec(p))) {
      const text = await scriptFor(macParam(m[1]));
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
      return void res.end(text);
    }
    if (req.method === 'GET' && (m = /^\/config\/([^/]+)\/([^/]+)$/.exec(p))) return configFor([macParam(m[1])], m[2], res);
    if (req.method === 'GET' && (m = /^\/config\/([^/]+)$/.exec(p))) return configFor(url.searchParams.getAll('mac').map(macParam), m[1], res);
    if ((req.method === 'GET' || req.method === 'HEAD') && (m = /^\/installer\/(vmlinuz|initrd\.img)$/.exec(p))) {
      if (!o.installerDir) throw new HttpError(404, 'not found', 'this boot server serves no installer (--installer-dir)');
      return sendFile(req, res, path.join(o.installerDir, m[1]));
    }
    if (req.method === 'POST' && p === '/api/v1/installer/events') {
      const parsed = eventsBodySchema.safeParse(await readJsonBody(req, 4 * 1024 * 1024));
      if (!parsed.success) throw new HttpError(400, 'bad request', `events: field '${parsed.error.issues[0].path.join('.')}': ${parsed.error.issues[0].message}`);
      const machine = await machineOf(inv, parsed.data.machine);
      if (!machine) throw new HttpError(404, 'unknown machine', `no machine has MAC ${parsed.data.machine.macs.join(', ')}`);
      await applyEvents(inv, machine, parsed.data.events);
      res.writeHead(204);
      return void res.end();
    }
    if (req.method === 'POST' && p === '/api/v1/report') {
      const body = (await readJsonBody(req, 64 * 1024)) as { mac?: string; hostname?: string };
      const machine = await machineOf(inv, { macs: body.mac ? [macParam(body.mac)] : [], hostname: body.hostname });
      if (!machine) throw new HttpError(404, 'unknown machine', 'give the reporting machine\'s "mac" or "hostname"');
      // Only an install in progress ends this way; a machine waiting for (re)birth stays so.
      const updated = machine.state === 'installing' ? await inv.setState(machine.hostname, 'healthy', 'the installed system reported in') : machine;
      return sendJson(res, 200, { hostname: updated.hostname, state: updated.state });
    }
    if (req.method === 'GET' && p === '/api/v1/machines') {
      const machines = await inv.listMachines();
      const withProgress = await Promise.all(machines.map(async (x) => ({ ...x, progress: (await inv.getProgress(x.hostname)) ?? null })));
      return sendJson(res, 200, { machines: withProgress });
    }
    if (req.method === 'GET' && (m = /^\/api\/v1\/machines\/([a-z0-9.-]+)$/.exec(p))) {
      const x = await inv.getMachine(m[1]);
      if (!x) throw new HttpError(404, 'unknown machine', `no machine named ${m[1]}`);
      return sendJson(res, 200, { machine: x, progress: (await inv.getProgress(x.hostname)) ?? null, history: await inv.history(x.hostname) });
    }
    throw new HttpError(404, 'not found', `no route for ${req.method} ${p}`);
  }

  return http.createServer((req, res) => {
    const started = performance.now();
    route(req, res)
      .catch((err) => sendError(res, err))
      .finally(() => log(`${req.socket.remoteAddress} ${req.method} ${req.url} ${res.statusCode} ${((performance.now() - started) / 1000).toFixed(3)} s`));
  });
}
