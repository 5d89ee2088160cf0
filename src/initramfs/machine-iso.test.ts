// A machine ISO's settings as `cradle server` derives them from its address (HTTPS for both
// servers with TLS; named servers win), and its /tftpdata archive after an initramfs whose length
// is not a multiple of 4 (Linux finds the next archive only at a multiple of 4).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { machineInitramfs, machineIsoSettings, tftpdataArchive } from './machine-iso.ts';

test("the servers' addresses from the boot server's address, as cradle server derives them", () => {
  assert.deepEqual(
    { ...machineIsoSettings({ address: '10.0.0.1' }), defaultLayout: undefined },
    {
      imageServer: '10.0.0.1:6971',
      bootServerUrl: 'http://10.0.0.1:6977',
      defaultImage: undefined,
      defaultLayout: undefined,
      toolsImage: undefined,
    },
  );
  const tls = machineIsoSettings({ address: '10.0.0.1', https: true });
  assert.equal(tls.imageServer, 'https://10.0.0.1:6971');
  assert.equal(tls.bootServerUrl, 'https://10.0.0.1:6977');
  const named = machineIsoSettings({ imageServer: 'img:1', bootServerUrl: 'http://boot:2' });
  assert.deepEqual([named.imageServer, named.bootServerUrl], ['img:1', 'http://boot:2']);
  assert.throws(() => machineIsoSettings({ imageServer: 'img:1' }), /--machine needs the boot server's address/);
});

test('the archive follows the initramfs at a multiple of 4 bytes', () => {
  const files = [{ name: 'config.json', data: Buffer.from('{}\n') }];
  const archive = tftpdataArchive(files);
  assert.equal(archive.subarray(0, 6).toString(), '070701', 'cpio newc');
  const joined = machineInitramfs(Buffer.from('12345'), files);
  assert.deepEqual(joined.subarray(0, 8), Buffer.from('12345\0\0\0'));
  assert.deepEqual(joined.subarray(8), archive);
});
