// HTTP boot throughput: 50 machines fetching the installer's initramfs at once from the boot
// server (`GET /installer/initrd.img`) vs nginx serving the same file, both on loopback, both
// fetched by 50 parallel curl processes. The initramfs is 100 MB of random data (about the size
// of a Node-carrying installer image, uncompressed).
//   node_modules/.bin/node bench/http-boot.ts
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { startBootServer } from '../src/boot/server.ts';
import { openInventory } from '../src/inventory/open.ts';
import { freePort, q, runBenchmark, shell, startNginx, tempDir, writeResults } from './lib.ts';
import { measureInterleaved, medians, ratioLine } from './measure.ts';

const CLIENTS = 50;
const SIZE = 100 * 1024 * 1024;

await runBenchmark('http-boot', async (c) => {
  const work = tempDir(c, 'http-boot');
  const installer = path.join(work, 'installer');
  fs.mkdirSync(installer);
  const file = path.join(installer, 'initrd.img');
  const fd = fs.openSync(file, 'w');
  for (let i = 0; i < SIZE / (8 << 20); i++) fs.writeSync(fd, randomBytes(8 << 20));
  fs.closeSync(fd);

  const inventory = await openInventory(`sqlite:${path.join(work, 'inventory.db')}`);
  c.defer('close inventory', () => inventory.close());
  const port = await freePort();
  const server = await startBootServer({
    inventory,
    roles: ['http'],
    address: '127.0.0.1',
    httpPort: port,
    tftpPort: 0,
    interfaces: [],
    dhcp: {},
    settings: { imageServer: '127.0.0.1:6971', defaultLayout: {} },
    installerDir: installer,
    kernelArgs: '',
    log: () => {},
  });
  c.defer('stop boot server', () => server.close());
  const nginx = await startNginx(c, installer, work);

  // 50 curls at once, each discarding what it gets; the time is until the last one finishes.
  const fetchAll = async (url: string) => {
    const r = await shell(`seq ${CLIENTS} | xargs -P ${CLIENTS} -I{} curl -sf -o /dev/null ${q(url)}`);
    return { seconds: r.seconds };
  };
  const samples = await measureInterleaved([
    { name: 'cradle server', run: () => fetchAll(`${server.httpUrl}/installer/initrd.img`) },
    { name: 'nginx', run: () => fetchAll(`${nginx.url}/initrd.img`) },
  ]);
  const ours = medians(samples['cradle server']).seconds;
  const peer = medians(samples.nginx).seconds;
  const rate = (s: number) => `${((CLIENTS * SIZE) / 1e6 / s).toFixed(0)} MB/s`;
  console.log(
    ratioLine(
      `initramfs (${SIZE / 2 ** 20} MiB) to ${CLIENTS} clients at once`,
      { label: 'cradle', value: `${ours.toFixed(2)} s (${rate(ours)})`, n: ours },
      { label: 'nginx', value: `${peer.toFixed(2)} s (${rate(peer)})`, n: peer },
      'lower is better',
    ),
  );
  console.log(`results: ${writeResults('http-boot', { clients: CLIENTS, bytes: SIZE, samples })}`);
});
