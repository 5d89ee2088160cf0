// The boot server (`cradle server`, all roles: DHCP, TFTP, HTTP) under hostile input (see
// harness.ts). It runs in a network namespace this test makes, on a veth whose host end carries
// the attackers' addresses: many distinct clients, and no traffic anywhere but that namespace.
// Besides the HTTP attacks, DHCP and TFTP get garbage datagrams.
import { execFileSync } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import path from 'node:path';
import { cradleBin, isRoot, tmpDir } from '../helpers.ts';
import { abuseSuite } from './harness.ts';
import { expectGet, LIMITS, startProcess } from './targets.ts';

const ip = (...args: string[]) => execFileSync('ip', args, { encoding: 'utf8' });
const net24 = `10.213.${process.pid % 250}`;
const SERVER = `${net24}.1`;
const SOURCES = Array.from({ length: 40 }, (_, i) => `${net24}.${10 + i}`);
const MAC = 'de:ad:be:ef:0a:01';
const ns = `cradle-abuse-${process.pid}`;
const hostEnd = `cab${process.pid}`.slice(0, 15);

let work: string | undefined;

function cleanup(): void {
  try {
    ip('netns', 'del', ns);
  } catch {
    // not made
  }
  try {
    ip('link', 'del', hostEnd);
  } catch {
    // went with the namespace
  }
  fs.rmSync(`/etc/netns/${ns}`, { recursive: true, force: true });
  if (work) fs.rmSync(work, { recursive: true, force: true });
}

abuseSuite(
  'boot server (DHCP, TFTP, HTTP)',
  async () => {
    cleanup();
    work = tmpDir('cradle-abuse-boot-');
    ip('netns', 'add', ns);
    fs.mkdirSync(`/etc/netns/${ns}`, { recursive: true });
    fs.writeFileSync(`/etc/netns/${ns}/resolv.conf`, '');
    ip('-n', ns, 'link', 'set', 'lo', 'up');
    ip('link', 'add', hostEnd, 'type', 'veth', 'peer', 'name', 'srv0', 'netns', ns);
    ip('-n', ns, 'address', 'add', `${SERVER}/24`, 'dev', 'srv0');
    ip('-n', ns, 'link', 'set', 'srv0', 'up');
    ip('address', 'add', `${SOURCES[0]}/24`, 'dev', hostEnd);
    for (const a of SOURCES.slice(1)) ip('address', 'add', `${a}/32`, 'dev', hostEnd);
    ip('link', 'set', hostEnd, 'up');
    const db = `sqlite:${path.join(work, 'inventory.db')}`;
    execFileSync(cradleBin, [
      'subnet',
      'add',
      'abuse',
      '--db',
      db,
      '--gateway',
      SERVER,
      '--mask',
      '255.255.255.0',
      '--pool',
      `${net24}.100-${net24}.150`,
    ]);
    execFileSync(cradleBin, [
      'machine',
      'add',
      'target0',
      '--db',
      db,
      '--mac',
      MAC,
      '--ip',
      `${net24}.2`,
      '--subnet',
      'abuse',
      '--state',
      'birth',
    ]);
    const s = await startProcess(
      [
        'ip',
        'netns',
        'exec',
        ns,
        cradleBin,
        'server',
        '--db',
        db,
        '--interface',
        'srv0',
        '--address',
        SERVER,
        '--unknown-machines',
        'lease',
      ],
      /DHCP on srv0/,
    );
    return {
      pid: s.child.pid!,
      host: SERVER,
      port: 6977,
      sources: SOURCES,
      ...LIMITS,
      // What a machine's iPXE asks for first.
      normal: (source) => expectGet(SERVER, 6977, `/boot/${MAC}.ipxe`, source),
      bodies: [
        { method: 'POST', path: '/api/v1/report', limit: 64 * 1024 },
        { method: 'POST', path: '/api/v1/installer/events', limit: 4 * 1024 * 1024 },
      ],
      prefixes: ['/config/', '/tftpdata/', '/installer/', '/machines/', '/boot/', '/api/v1/machines/'],
      output: s.output,
      stop: async () => {
        await s.stop();
        cleanup();
      },
    };
  },
  {
    skip: !isRoot() && 'needs root (network namespace)',
    extra: { 'garbage datagrams to DHCP and TFTP, TFTP path tricks: the server goes on answering': datagrams },
  },
);

async function datagrams(): Promise<void> {
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, SOURCES[5], () => r()));
  try {
    const send = (port: number, data: Buffer) => new Promise<void>((r) => sock.send(data, port, SERVER, () => r()));
    const rrq = (name: string) => Buffer.concat([Buffer.from([0, 1]), Buffer.from(`${name}\0octet\0`)]);
    for (let i = 0; i < 2000; i++) {
      const len = [0, 1, 4, 240, 300, 576, 1500][i % 7];
      const junk = Buffer.alloc(len, i & 0xff);
      // Half of them with DHCP's magic cookie, so the options (garbage) are parsed.
      if (len >= 240 && i % 2) junk.writeUInt32BE(0x63825363, 236);
      await send(67, junk);
      await send(69, junk);
    }
    for (const name of ['../../etc/passwd', '/etc/passwd', 'a'.repeat(600), '\u0000', 'config.json\u0000netascii'])
      await send(69, rrq(name));
  } finally {
    sock.close();
  }
}
