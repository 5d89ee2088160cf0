// Where the installer's sub-commands find the image server: --imageserver, CRADLE_IMAGESERVER, the
// installer's --image-server-hostname, else <tftpDirectory>/imageserver (a host alone: port 6971);
// and the installer's certificates by default, where they exist.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { imageServerUrl } from '../image/transfer/client.ts';
import { subcommandImageServer, subcommandTls } from './subcommand-server.ts';

test('the imageserver file is the default; flags and the environment name another; a bare host gets port 6971', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cradle-subcommand-'));
  try {
    fs.writeFileSync(path.join(dir, 'imageserver'), '10.0.0.1\n');
    const fromFile = subcommandImageServer({ tftpDirectory: dir });
    assert.deepEqual(fromFile, { address: '10.0.0.1', from: path.join(dir, 'imageserver') });
    assert.equal(imageServerUrl(fromFile.address).host, '10.0.0.1:6971');
    assert.equal(subcommandImageServer({ tftpDirectory: dir, installerFlag: 'a' }).address, 'a');
    assert.equal(subcommandImageServer({ tftpDirectory: dir, installerFlag: 'a', env: 'b' }).address, 'b');
    assert.equal(subcommandImageServer({ tftpDirectory: dir, installerFlag: 'a', env: 'b', flag: 'c' }).address, 'c');
    fs.writeFileSync(path.join(dir, 'imageserver'), 'two words\n');
    assert.throws(
      () => subcommandImageServer({ tftpDirectory: dir }),
      /should hold one HOST\[:PORT\], not 'two words'/,
    );
    fs.rmSync(path.join(dir, 'imageserver'));
    assert.throws(
      () => subcommandImageServer({ tftpDirectory: dir }),
      new RegExp(`${dir}/imageserver does not exist; pass --imageserver`),
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("the installer's certificates are used when they exist; a named file must exist; cert and key go together", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cradle-subcommand-'));
  try {
    const seed = { ca: path.join(dir, 'CA.pem'), cert: path.join(dir, 'cert.pem'), key: path.join(dir, 'key.pem') };
    assert.deepEqual(subcommandTls({}, seed), { ca: undefined, cert: undefined, key: undefined });
    for (const f of Object.values(seed)) fs.writeFileSync(f, 'pem');
    assert.deepEqual(subcommandTls({}, seed), seed);
    assert.throws(() => subcommandTls({ ca: path.join(dir, 'none.pem') }, seed), /--tls-ca .*none\.pem: no such file/);
    fs.rmSync(seed.key);
    assert.throws(() => subcommandTls({}, seed), /certificate and key go together: found only .*cert\.pem/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
