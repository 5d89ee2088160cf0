// Who may call which installer method: certificates of the installer's CA with no list (every
// method), with a list (those), and the identity CA's (reading only); refusals name the method and
// the command that makes a certificate for it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HttpError } from '../util/http/respond.ts';
import { authorise, type Caller, type InstallerMethod, READ_METHODS, ROUTE_METHODS } from './access.ts';

const ALL = [...new Set(Object.values(ROUTE_METHODS))] as InstallerMethod[];

function allowed(caller: Caller): InstallerMethod[] {
  return ALL.filter((m) => {
    try {
      authorise(caller, m);
      return true;
    } catch (err) {
      assert.ok(err instanceof HttpError && err.status === 403, String(err));
      return false;
    }
  });
}

test('every RPC route has its method, the shell included', () => {
  assert.deepEqual([...ALL].sort(), [
    'Installer.BlockReboot',
    'Installer.Logs',
    'Installer.RebootNow',
    'Installer.Retry',
    'Installer.Shell',
    'Installer.Status',
    'Installer.UnblockReboot',
  ]);
});

test("the installer's CA: no list is every method; a list is those; wildcards as Dominator's", () => {
  assert.deepEqual(allowed({ name: 'alice', identityOnly: false }), ALL);
  assert.deepEqual(
    allowed({ name: 'bob', methods: ['Installer.Shell', 'Installer.Status'], identityOnly: false }).sort(),
    ['Installer.Shell', 'Installer.Status'],
  );
  assert.deepEqual(allowed({ name: 'carol', methods: ['Installer.*'], identityOnly: false }), ALL);
  assert.deepEqual(allowed({ name: 'dave', methods: ['ImageServer.*'], identityOnly: false }), []);
  assert.deepEqual(allowed({ name: 'erin', methods: [], identityOnly: false }), []);
});

test("the identity CA: reading only, whatever the certificate's list says; within it, the list still limits", () => {
  assert.deepEqual(allowed({ name: 'frank', identityOnly: true }).sort(), [...READ_METHODS].sort());
  assert.deepEqual(allowed({ name: 'grace', methods: ['*.*'], identityOnly: true }).sort(), [...READ_METHODS].sort());
  assert.deepEqual(allowed({ name: 'heidi', methods: ['Installer.Logs'], identityOnly: true }), ['Installer.Logs']);
});

test('a refusal names the method, the certificate, and how to get one for it', () => {
  assert.throws(
    () => authorise({ name: 'bob', methods: ['Installer.Status'], identityOnly: false }, 'Installer.Shell'),
    (err: HttpError) =>
      err.status === 403 &&
      /Installer\.Shell is refused to 'bob': the certificate permits only Installer\.Status/.test(err.message) &&
      /cradle pki issue client bob --methods Installer\.Shell/.test(err.message),
  );
  assert.throws(
    () => authorise({ name: 'frank', identityOnly: true }, 'Installer.BlockReboot'),
    (err: HttpError) =>
      /Installer\.BlockReboot is refused to 'frank': the certificate is the identity CA's/.test(err.message) &&
      /cradle pki issue client frank --methods Installer\.BlockReboot/.test(err.message),
  );
});
