// The boot server's HTTP side (port 6977): iPXE scripts per machine, the installer's kernel and
// initramfs, each machine's configuration files (the installer's --configuration-base-url), the
// progress API the installer posts to (events and log lines), the report of an installed system,
// the machine API and the fleet dashboard (dashboard.ts).
import type { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import { z } from 'zod';
import type http from 'node:http';
import path from 'node:path';
import { ConflictError, NotFoundError, type Inventory, type Machine } from '../inventory/types.ts';
import { ValidationError } from '../inventory/validate.ts';
import { safeListener } from '../util/http/listener.ts';
import { HTML_HEADERS, HttpError, readJsonBody, sendJson, type Req, type Res } from '../util/http/respond.ts';
import { configFile, groupOf, isConfigFileName, type BootSettings } from './config-files.ts';
import { applyEvents, applyLog, eventsBodySchema, machineOf } from './events.ts';
import {
  DASHBOARD_JS,
  fleetPage,
  logStart,
  machinePage,
  machineRows,
  machineSummary,
  type MachineView,
} from './dashboard.ts';
import { clientIdentity, type Caller } from '../pki/serve.ts';
import { ipxeScript, type IpxeSettings } from './ipxe.ts';
import { installerInitrds } from '../initramfs/installer-files.ts';

export interface BootHttpOptions {
  inventory: Inventory;
  settings: BootSettings;
  ipxe: IpxeSettings;
  /** Directory holding the installer's vmlinuz and initrd.img. */
  installerDir?: string;
  /**
   * Served with TLS: the installers' reports, the machine API and the dashboard then need a
   * client certificate the CA signed. What firmware fetches (iPXE scripts, the installer, the
   * configuration files) and the installed system's report stay open, as firmware has no
   * certificate.
   */
  requireClientCertificates?: boolean;
  /**
   * The site CA's certificates (--tls-ca): the installer's certificate must be one of theirs,
   * since the handshake also accepts the operator CAs' (--operator-ca), for operators only.
   */
  siteCa?: readonly X509Certificate[];
  log?: (line: string) => void;
}

const EVENTS_BODY_LIMIT = 4 * 1024 * 1024;
const REPORT_BODY_LIMIT = 64 * 1024;
const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
const reportSchema = z.object({ mac: z.string().max(64).optional(), hostname: z.string().max(253).optional() });

/**
 * `mac` parameters one configuration request may give: each is a database look-up. Cradle's
 * installer sends one per Ethernet interface; the events' schema takes as many MACs.
 */
const MAX_MAC_PARAMS = 64;

/** The `mac` parameters of `url`, each checked (macParam), and no more than MAX_MAC_PARAMS. */
function macParams(url: URL): string[] {
  const raw = url.searchParams.getAll('mac');
  if (raw.length > MAX_MAC_PARAMS)
    throw new HttpError(
      400,
      'too many MAC addresses',
      `${raw.length} 'mac' parameters: give at most ${MAX_MAC_PARAMS} (the machine's interfaces)`,
    );
  return raw.map(macParam);
}

function macParam(raw: string): string {
  let decoded: string;
  try {
    decoded = decodeURIComponent(raw);
  } catch {
    throw new HttpError(400, 'bad MAC address', `'${raw}' is not a MAC address such as de:ad:be:ef:00:01`);
  }
  const mac = decoded.toLowerCase().replace(/-/g, ':');
  if (!MAC_RE.test(mac))
    throw new HttpError(400, 'bad MAC address', `'${raw}' is not a MAC address such as de:ad:be:ef:00:01`);
  return mac;
}

/**
 * A machine installed from a pool keeps the address it was leased: the installed system configures
 * it statically, so it becomes the machine's reservation (and stops being a pool lease that would
 * expire and go to another machine).
 */
export async function keepLeaseAddress(inv: Inventory, m: Machine, mac = m.macs[0]): Promise<Machine> {
  if (m.ip) return m;
  const lease = await inv.getLease(mac);
  if (!lease || Date.parse(lease.expiresAt) < Date.now()) return m;
  const updated = await inv.updateMachine(m.hostname, { ip: lease.ip, subnetId: lease.subnetId });
  await inv.releaseLease(mac);
  return updated;
}

/** The request comes from the machine itself: its address, or a current lease of one of its MACs. */
async function fromMachine(inv: Inventory, m: Machine, remote: string | undefined): Promise<boolean> {
  const ip = remote?.replace(/^::ffff:/, '');
  if (!ip) return false;
  if (m.ip === ip) return true;
  for (const mac of m.macs) {
    const lease = await inv.getLease(mac);
    if (lease?.ip === ip && Date.parse(lease.expiresAt) > Date.now()) return true;
  }
  return false;
}

function statusOf(err: unknown): unknown {
  if (err instanceof NotFoundError) return new HttpError(404, 'not found', err.message);
  if (err instanceof ConflictError) return new HttpError(409, 'conflict', err.message);
  if (err instanceof ValidationError) return new HttpError(400, 'bad request', err.message);
  if (err instanceof URIError)
    return new HttpError(400, 'bad path', `the path is not valid percent-encoding: ${err.message}`);
  return err;
}

/** The boot server's HTTP side as a request handler (served plain, or plain and TLS on one port). */
export function bootHttpHandler(o: BootHttpOptions): http.RequestListener {
  const log = o.log ?? (() => {});
  const inv = o.inventory;

  /**
   * A machine whose install succeeded boots its disk while it has not reported in yet. Only a
   * result recorded since it entered `installing` counts: an older one belongs to an earlier run.
   */
  async function scriptFor(mac: string): Promise<string> {
    const m = await inv.findMachineByMac(mac);
    if (m && (await installedNotReported(m))) return ipxeScript(mac, { ...m, state: 'healthy' }, o.ipxe);
    // Read at each boot: the directory may be rebuilt while the server runs.
    const initrds = o.installerDir ? installerInitrds(o.installerDir) : undefined;
    return ipxeScript(mac, m, { ...o.ipxe, ...(initrds ? { initrds } : {}) }, await groupOf(inv, m));
  }

  async function installedNotReported(m: Machine): Promise<boolean> {
    if (m.state !== 'installing') return false;
    const p = await inv.getProgress(m.hostname);
    return Boolean(p?.result?.ok) && Date.parse(p!.updatedAt) >= Date.parse(m.stateChangedAt);
  }

  /**
   * Dominator's fleet manager's lookup for /tftpdata/FILE: hostname=, then ip=, then the asking
   * address, then each mac= (serial_number= is not kept in Cradle's database).
   */
  async function machineAsked(url: URL, remote: string | undefined): Promise<Machine | undefined> {
    const hostname = url.searchParams.get('hostname');
    if (hostname) return inv.getMachine(hostname);
    for (const ip of [url.searchParams.get('ip'), remote?.replace(/^::ffff:/, '')]) {
      if (!ip) continue;
      const found = await inv.findMachineByIp(ip);
      if (found) return found;
    }
    return undefined;
  }

  async function configFor(macs: string[], file: string, res: Res, known?: Machine): Promise<void> {
    if (!isConfigFileName(file)) throw new HttpError(404, 'not found', `no configuration file '${file}'`);
    let m = known;
    let asking: string | undefined;
    for (const mac of macs) {
      if (m) break;
      m = await inv.findMachineByMac(mac);
      asking = mac;
    }
    if (!m)
      throw new HttpError(
        404,
        'unknown machine',
        `no machine has MAC ${macs.join(' or ') || '(none given)'}: add it with 'cradle machine add'`,
      );
    m = await keepLeaseAddress(inv, m, asking);
    const text = configFile(file, m, await inv.listSubnets(), o.settings, await groupOf(inv, m));
    if (text === undefined) throw new HttpError(404, 'not found', `${m.hostname} has no ${file}`);
    res.writeHead(200, {
      'content-type': file.endsWith('.json') ? 'application/json' : 'text/plain',
      'content-length': Buffer.byteLength(text),
      'cache-control': 'no-store',
    });
    res.end(text);
  }

  // The installer's kernel and initramfs go to every machine of a rack at once: held in memory
  // (read again when the file changes) and written from there, instead of read per machine. Reads
  // are asynchronous, one at a time per file, so DHCP and TFTP in this process are not stalled;
  // a file changing during a read (replaced in place) is read again.
  const held = new Map<string, Promise<{ mtimeMs: number; size: number; data: Buffer }>>();
  async function load(file: string): Promise<{ mtimeMs: number; size: number; data: Buffer }> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const handle = await fs.promises.open(file, 'r');
      try {
        const before = await handle.stat();
        const data = await handle.readFile();
        const after = await handle.stat();
        if (before.mtimeMs === after.mtimeMs && data.length === after.size)
          return { mtimeMs: after.mtimeMs, size: after.size, data };
      } finally {
        await handle.close();
      }
    }
    throw new HttpError(503, 'busy', `${path.basename(file)} keeps changing: try again`);
  }
  async function sendFile(req: Req, res: Res, file: string): Promise<void> {
    const st = await fs.promises.stat(file).catch(() => undefined);
    if (!st?.isFile())
      throw new HttpError(
        404,
        'not found',
        `${path.basename(file)} is not on this boot server (build it with 'cradle build-installer')`,
      );
    let pending = held.get(file);
    let h = pending && (await pending.catch(() => undefined));
    if (!h || h.mtimeMs !== st.mtimeMs || h.size !== st.size) {
      pending = load(file);
      held.set(file, pending);
      pending.catch(() => held.delete(file));
      h = await pending;
    }
    res.writeHead(200, {
      'content-type': 'application/octet-stream',
      'content-length': h.data.length,
      'last-modified': new Date(h.mtimeMs).toUTCString(),
    });
    res.end(req.method === 'HEAD' ? undefined : h.data);
  }

  const authenticate = (req: Req, caller: Caller) => {
    if (o.requireClientCertificates) clientIdentity(req.socket, caller, o.siteCa);
  };

  async function view(x: Machine): Promise<MachineView> {
    return { machine: x, progress: (await inv.getProgress(x.hostname)) ?? null };
  }

  /** Every machine with its last progress: the fleet page, its fragment and the API. */
  async function allViews(): Promise<MachineView[]> {
    return Promise.all((await inv.listMachines()).map(view));
  }

  async function machineNamed(name: string): Promise<Machine> {
    const x = await inv.getMachine(decodeURIComponent(name));
    if (!x) throw new HttpError(404, 'unknown machine', `no machine named ${name}`);
    return x;
  }

  /** The dashboard's pages and the fragments its script refreshes. */
  async function dashboard(_req: Req, res: Res, p: string, url: URL): Promise<boolean> {
    let m: RegExpExecArray | null;
    const html = (text: string) => {
      res.writeHead(200, { ...HTML_HEADERS, 'content-length': Buffer.byteLength(text) });
      res.end(text);
      return true;
    };
    if (p === '/dashboard.js') {
      res.writeHead(200, {
        'content-type': 'text/javascript; charset=utf-8',
        'content-length': Buffer.byteLength(DASHBOARD_JS),
        'cache-control': 'no-cache',
        'x-content-type-options': 'nosniff',
      });
      res.end(DASHBOARD_JS);
      return true;
    }
    if (p === '/') return html(fleetPage(await allViews(), new Date()));
    if (p === '/fragments/machines') return html(machineRows(await allViews()));
    if ((m = /^\/machines\/([^/]+)$/.exec(p))) {
      const x = await machineNamed(m[1]);
      const log = await inv.installerLog(x.hostname);
      return html(machinePage(await view(x), await inv.history(x.hostname), log, logStart(log[0])));
    }
    if ((m = /^\/fragments\/machines\/([^/]+)\/summary$/.exec(p)))
      return html(machineSummary(await view(await machineNamed(m[1]))));
    if ((m = /^\/fragments\/machines\/([^/]+)\/log$/.exec(p))) {
      const x = await machineNamed(m[1]);
      const since = Math.max(0, Number(url.searchParams.get('since')) || 0);
      const [first] = await inv.installerLog(x.hostname, 0, 1);
      const lines = await inv.installerLog(x.hostname, since, 2000);
      const text = lines.map((l) => `${l.line}\n`).join('');
      res.writeHead(200, {
        'content-type': 'text/plain; charset=utf-8',
        'content-length': Buffer.byteLength(text),
        'cache-control': 'no-store',
        'x-next-seq': String(lines.length ? lines[lines.length - 1].seq + 1 : since),
        'x-log-start': logStart(first),
      });
      res.end(text);
      return true;
    }
    return false;
  }

  async function route(req: Req, res: Res): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://boot');
    const p = url.pathname;
    // Read before any await: a connection gone meanwhile has no socket.
    const remote = req.socket?.remoteAddress;
    let m: RegExpExecArray | null;
    if (
      req.method === 'GET' &&
      (p === '/' || p === '/dashboard.js' || p.startsWith('/machines/') || p.startsWith('/fragments/'))
    ) {
      authenticate(req, 'operator');
      if (await dashboard(req, res, p, url)) return;
    }
    if (req.method === 'GET' && (m = /^\/boot\/([^/]+)\.ipxe$/.exec(p))) {
      const text = await scriptFor(macParam(m[1]));
      res.writeHead(200, {
        'content-type': 'text/plain',
        'content-length': Buffer.byteLength(text),
        'cache-control': 'no-store',
      });
      return void res.end(text);
    }
    if (req.method === 'GET' && (m = /^\/config\/([^/]+)\/([^/]+)$/.exec(p)))
      return configFor([macParam(m[1])], m[2], res);
    if (req.method === 'GET' && (m = /^\/config\/([^/]+)$/.exec(p))) return configFor(macParams(url), m[1], res);
    // Dominator's fleet manager's path, so an installer's -configurationBaseUrl=http://HOST:6977/tftpdata works.
    if (req.method === 'GET' && (m = /^\/tftpdata\/([^/]+)$/.exec(p)))
      return configFor(macParams(url), m[1], res, await machineAsked(url, remote));
    if (
      (req.method === 'GET' || req.method === 'HEAD') &&
      (m = /^\/installer\/(vmlinuz|initrd\.img|stage2\.img)$/.exec(p))
    ) {
      if (!o.installerDir)
        throw new HttpError(404, 'not found', 'this boot server serves no installer (--installer-dir)');
      return sendFile(req, res, path.join(o.installerDir, m[1]));
    }
    if (req.method === 'POST' && p === '/api/v1/installer/events') {
      authenticate(req, 'installer');
      const parsed = eventsBodySchema.safeParse(await readJsonBody(req, EVENTS_BODY_LIMIT));
      if (!parsed.success)
        throw new HttpError(
          400,
          'bad request',
          `events: field '${parsed.error.issues[0].path.join('.')}': ${parsed.error.issues[0].message}`,
        );
      const machine = await machineOf(inv, parsed.data.machine);
      if (!machine)
        throw new HttpError(404, 'unknown machine', `no machine has MAC ${parsed.data.machine.macs.join(', ')}`);
      if (!(await fromMachine(inv, machine, remote)))
        throw new HttpError(403, 'forbidden', `events for ${machine.hostname} come only from its own address`);
      const updated = await applyEvents(inv, machine, parsed.data.events);
      await applyLog(inv, updated, parsed.data.log);
      res.writeHead(204);
      return void res.end();
    }
    if (req.method === 'POST' && p === '/api/v1/report') {
      const parsed = reportSchema.safeParse(await readJsonBody(req, REPORT_BODY_LIMIT));
      if (!parsed.success)
        throw new HttpError(400, 'bad request', 'expected {"mac": "de:ad:be:ef:00:01"} or {"hostname": "node1"}');
      const body = parsed.data;
      const machine = await machineOf(inv, { macs: body.mac ? [macParam(body.mac)] : [], hostname: body.hostname });
      if (!machine) throw new HttpError(404, 'unknown machine', 'give the reporting machine\'s "mac" or "hostname"');
      if (!(await fromMachine(inv, machine, remote)))
        throw new HttpError(403, 'forbidden', `only ${machine.hostname} itself reports in`);
      // Only an install that finished ends this way; a machine waiting for (re)birth stays so.
      const updated = (await installedNotReported(machine))
        ? await inv.setState(machine.hostname, 'healthy', 'the installed system reported in')
        : machine;
      return sendJson(res, 200, { hostname: updated.hostname, state: updated.state });
    }
    if (req.method === 'GET' && p.startsWith('/api/v1/machines')) authenticate(req, 'operator');
    if (req.method === 'GET' && (m = /^\/api\/v1\/machines\/([a-z0-9.-]+)\/log$/.exec(p))) {
      const x = await machineNamed(m[1]);
      const lines = await inv.installerLog(x.hostname, Math.max(0, Number(url.searchParams.get('since')) || 0));
      return sendJson(res, 200, {
        lines,
        next: lines.length ? lines[lines.length - 1].seq + 1 : Number(url.searchParams.get('since')) || 0,
      });
    }
    if (req.method === 'GET' && p === '/api/v1/machines') {
      return sendJson(res, 200, { machines: (await allViews()).map((v) => ({ ...v.machine, progress: v.progress })) });
    }
    if (req.method === 'GET' && (m = /^\/api\/v1\/machines\/([a-z0-9.-]+)$/.exec(p))) {
      const x = await inv.getMachine(m[1]);
      if (!x) throw new HttpError(404, 'unknown machine', `no machine named ${m[1]}`);
      return sendJson(res, 200, {
        machine: x,
        progress: (await inv.getProgress(x.hostname)) ?? null,
        history: await inv.history(x.hostname),
      });
    }
    throw new HttpError(404, 'not found', `no route for ${req.method} ${p}`);
  }

  // Every body this port reads is an installer's batch of events and log lines (4 MiB at most).
  return safeListener(route, {
    maxBodyBytes: EVENTS_BODY_LIMIT,
    mapError: statusOf,
    onDone: (r) =>
      log(
        `${r.client} ${r.method} ${r.url} ${r.status} ${r.seconds.toFixed(3)} s${r.status >= 500 ? `: ${(r.error as Error)?.message ?? r.error}` : ''}`,
      ),
  });
}
