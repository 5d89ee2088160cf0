// The boot server's fleet dashboard and its mutual TLS, on loopback: the installer's own progress
// reporter (Progress, with the installer's certificate) feeds a real boot server; headless
// Chromium (Debian's, through playwright-core) presents an operator's client certificate, reads
// the pages with and without JavaScript, watches them update live, and takes screenshots whose
// pixels are checked. curl is the peer that shows every refusal.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { chromium, type Browser, type BrowserContext } from 'playwright-core';
import { PNG } from 'pngjs';
import { startBootServer, type RunningBootServer } from '../src/boot/server.ts';
import { InstallerLog } from '../src/installer/log.ts';
import { Progress } from '../src/installer/progress.ts';
import { openInventory } from '../src/inventory/open.ts';
import type { Inventory } from '../src/inventory/types.ts';
import { CHROMIUM, hasChromium } from './browser.ts';
import { curlStatus, repoRoot, tmpDir } from './helpers.ts';
import { until } from './support/wait.ts';
import { makeTestPki, type Pair, type TestPki } from './pki-fixtures.ts';

const MiB = 1024 * 1024;
/** Where the screenshots are kept for a person to look at (CI keeps the directory). */
const SHOTS = path.join(repoRoot, 'test-results', 'dashboard');

describe('fleet dashboard over mutual TLS', () => {
  let work: string;
  let pki: TestPki;
  let inventory: Inventory;
  let server: RunningBootServer;
  let base: string;
  let browser: Browser | undefined;

  /** The installer's reporter, as the installer runs it: its log, its events, its certificate. */
  const reporter = (hostname: string, mac: string) => {
    const log = new InstallerLog({ stderr: false });
    const progress = new Progress(log);
    progress.reportTo(
      base,
      { macs: [mac], hostname },
      { ca: pki.ca, cert: pki.installer.cert, key: pki.installer.key },
    );
    return { log, progress };
  };
  const curl = async (pathname: string, as?: Pair, method = 'GET', body?: string) => {
    const args = ['-X', method, '--cacert', pki.ca];
    if (as) args.push('--cert', as.cert, '--key', as.key);
    if (body) args.push('-H', 'content-type: application/json', '--data', body);
    return curlStatus([...args, `${base}${pathname}`]);
  };

  before(async () => {
    work = tmpDir('cradle-dashboard-');
    fs.mkdirSync(SHOTS, { recursive: true });
    pki = await makeTestPki(work, 'boot');
    inventory = await openInventory(`sqlite:${path.join(work, 'inventory.db')}`);
    await inventory.addSubnet({
      id: 'loopback',
      gateway: '127.0.0.254',
      mask: '255.0.0.0',
      dnsServers: [],
      manage: false,
    });
    await inventory.addMachine({
      hostname: 'node1',
      macs: ['de:ad:be:ef:00:01'],
      ip: '127.0.0.1',
      tags: { RequiredImage: 'debian/v1' },
      state: 'birth',
    });
    await inventory.addMachine({
      hostname: 'node2',
      macs: ['de:ad:be:ef:00:02'],
      ip: '127.0.0.2',
      tags: {},
      state: 'healthy',
    });
    await inventory.addMachine({
      hostname: 'node3',
      macs: ['de:ad:be:ef:00:03'],
      ip: '127.0.0.3',
      tags: {},
      state: 'failed',
    });
    server = await startBootServer({
      inventory,
      roles: ['http'],
      address: '127.0.0.1',
      httpPort: 0,
      tftpPort: 0,
      interfaces: [],
      dhcp: {},
      settings: { imageServer: '127.0.0.1:6971', defaultLayout: {} },
      kernelArgs: '',
      tls: { cert: pki.server.cert, key: pki.server.key, ca: pki.ca },
      log: () => {},
    });
    base = server.httpUrl!.replace('http:', 'https:');
  });

  after(async () => {
    await browser?.close();
    await server?.close();
    await inventory?.close();
    fs.rmSync(work, { recursive: true, force: true });
  });

  test('an installer reports over HTTPS with its certificate; without one, or with a bad one, it is refused', async () => {
    const { log, progress } = reporter('node1', 'de:ad:be:ef:00:01');
    await progress.phase('network', async () => log.info('eth0: 127.0.0.1/8'));
    progress.emit({ type: 'phase', phase: 'tools', state: 'started' });
    progress.emit({
      type: 'progress',
      phase: 'tools',
      bytesDone: 120 * MiB,
      bytesTotal: 400 * MiB,
      bytesPerSecond: 40 * MiB,
      etaSeconds: 7,
    });
    log.info('tools: 120 MiB of 400 MiB');
    await progress.flush();
    assert.equal(progress.pending().length, 0, 'everything was accepted');
    assert.equal((await inventory.getMachine('node1'))?.state, 'installing');
    assert.equal((await inventory.getProgress('node1'))?.bytesPerSecond, 40 * MiB);
    assert.ok(
      (await inventory.installerLog('node1')).some((l) => /eth0: 127\.0\.0\.1/.test(l.line)),
      'the log came along',
    );
    const body = JSON.stringify({
      machine: { macs: ['de:ad:be:ef:00:01'] },
      events: [{ seq: 99, time: new Date().toISOString(), type: 'phase', phase: 'x', state: 'started' }],
    });
    for (const [what, as, why] of [
      ['none', undefined, /no client certificate/],
      ['expired', pki.expired, /expired/],
      ['another CA', pki.foreign, /not signed by this server's CA/],
    ] as const) {
      const r = await curl('/api/v1/installer/events', as, 'POST', body);
      assert.equal(r.status, 403, `${what}: ${r.body}`);
      assert.match(r.body, why);
    }
    const plain = await fetch(`${server.httpUrl}/api/v1/installer/events`, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(plain.status, 403, 'plain HTTP cannot report when the server has TLS');
  });

  test('the API and the dashboard need an operator certificate; what firmware fetches stays open', async () => {
    for (const p of [
      '/',
      '/machines/node1',
      '/fragments/machines',
      '/api/v1/machines',
      '/api/v1/machines/node1',
      '/api/v1/machines/node1/log',
    ]) {
      for (const [what, as] of [
        ['none', undefined],
        ['expired', pki.expired],
        ['another CA', pki.foreign],
        ['a server certificate', pki.serverAsClient],
        ["the installer's (in every installer image)", pki.installer],
      ] as const) {
        assert.equal((await curl(p, as)).status, 403, `${p} with ${what}`);
      }
      assert.equal((await curl(p, pki.operator)).status, 200, `${p} with the operator's certificate`);
    }
    const ipxe = await fetch(`${server.httpUrl}/boot/de:ad:be:ef:00:01.ipxe`);
    assert.equal(ipxe.status, 200, 'iPXE scripts over plain HTTP');
    const script = await ipxe.text();
    assert.match(script, /^#!ipxe/);
    assert.ok(script.includes(`cradle.report-url=${base} `), 'the installer reports over HTTPS');
    assert.ok(script.includes(`kernel ${server.httpUrl}/installer/vmlinuz`), 'firmware fetches over HTTP');
    const config = await fetch(`${server.httpUrl}/config/de:ad:be:ef:00:01/bootserver`).then((r) => r.text());
    assert.equal(config.trim(), base, 'installers are told to report over HTTPS');
  });

  test('in Chromium: the fleet and a machine, live, with screenshots; and without JavaScript', {
    skip: !hasChromium() && `no ${CHROMIUM}`,
  }, async () => {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    // Chromium has no copy of the test CA: the server's identity is what curl checks above.
    const context = (js: boolean): Promise<BrowserContext> =>
      browser!.newContext({
        javaScriptEnabled: js,
        ignoreHTTPSErrors: true,
        viewport: { width: 1100, height: 600 },
        clientCertificates: [{ origin: base, certPath: pki.operator.cert, keyPath: pki.operator.key }],
      });

    const live = await context(true);
    const page = await live.newPage();
    await page.goto(`${base}/`);
    const row = (host: string) => page.locator(`tr[data-host="${host}"]`);
    assert.equal(await row('node1').locator('.state').textContent(), 'installing');
    assert.match(
      (await row('node1').locator('.activity').textContent()) ?? '',
      /tools: 120\.0 MiB of 400\.0 MiB \(30%\), 40\.0 MiB\/s, ETA 7 s/,
    );
    assert.equal(await row('node2').locator('.state').textContent(), 'healthy');
    assert.equal(await row('node3').locator('.state').textContent(), 'failed');
    const shot = path.join(SHOTS, 'fleet.png');
    await page.screenshot({ path: shot });
    const png = PNG.sync.read(fs.readFileSync(shot));
    for (const [host, rgb] of [
      ['node1', [0x15, 0x65, 0xc0]],
      ['node2', [0x2e, 0x7d, 0x32]],
      ['node3', [0xc6, 0x28, 0x28]],
    ] as const) {
      // The live page replaces its rows as updates arrive: a row caught mid-swap has no box yet.
      const badge = row(host).locator('.state');
      let box = await badge.boundingBox();
      for (let i = 0; !box && i < 50; i++) {
        await badge.waitFor({ state: 'visible' });
        box = await badge.boundingBox();
      }
      assert.ok(box, `${host}'s state badge is on the page`);
      assert.deepEqual(
        pixel(png, box.x + 3, box.y + box.height / 2),
        rgb,
        `${host}'s state badge is drawn in its colour`,
      );
    }
    const bar = (await row('node1').locator('progress').boundingBox())!;
    assert.ok(bar.width > 100, 'a progress bar is drawn');

    // Live: the installer moves on; the page follows without a reload.
    const { log, progress } = reporter('node1', 'de:ad:be:ef:00:01');
    progress.emit({
      type: 'progress',
      phase: 'tools',
      bytesDone: 300 * MiB,
      bytesTotal: 400 * MiB,
      bytesPerSecond: 50 * MiB,
      etaSeconds: 2,
    });
    log.info('tools: 300 MiB of 400 MiB');
    await progress.flush();
    await until(
      'the fleet page to show 75%',
      async () => /\(75%\)/.test((await row('node1').locator('.activity').textContent()) ?? ''),
      15_000,
    );

    await page.click('text=node1');
    await page.waitForURL(/\/machines\/node1$/);
    assert.match((await page.textContent('#log')) ?? '', /tools: 300 MiB of 400 MiB/);
    assert.match((await page.textContent('#history')) ?? '', /installer started/);
    log.info('storage: partitioning /dev/vda');
    progress.result(true, 42, {});
    await progress.flush();
    await until(
      'the machine page to append the new log line',
      async () => /storage: partitioning \/dev\/vda/.test((await page.textContent('#log')) ?? ''),
      15_000,
    );
    await until(
      'the machine page to show the result',
      async () => /installed in 42 s/.test((await page.textContent('#summary')) ?? ''),
      15_000,
    );
    assert.equal(
      ((await page.textContent('#log')) ?? '').match(/tools: 300 MiB of 400 MiB/g)?.length,
      1,
      'no line twice',
    );
    await page.screenshot({ path: path.join(SHOTS, 'machine.png'), fullPage: true });
    await live.close();

    const nojs = await context(false);
    const still = await nojs.newPage();
    await still.goto(`${base}/`);
    assert.match((await still.locator('tr[data-host="node2"]').textContent()) ?? '', /healthy/);
    await still.goto(`${base}/machines/node1`);
    assert.match((await still.textContent('#log')) ?? '', /storage: partitioning/);
    await nojs.close();
  });
});

function pixel(png: PNG, x: number, y: number): [number, number, number] {
  const i = (Math.round(y) * png.width + Math.round(x)) * 4;
  return [png.data[i], png.data[i + 1], png.data[i + 2]];
}
