import assert from 'node:assert/strict';
import { test } from 'node:test';
import { tlsTriple } from './program.ts';

test('the TLS files go together: all three, or none', () => {
  assert.equal(tlsTriple({}, 'plain HTTP'), undefined);
  assert.deepEqual(tlsTriple({ tlsCa: 'ca.pem', tlsCert: 'c.pem', tlsKey: 'k.pem' }, 'plain HTTP'), {
    ca: 'ca.pem',
    cert: 'c.pem',
    key: 'k.pem',
  });
  assert.throws(
    () => tlsTriple({ tlsCert: 'c.pem', tlsKey: 'k.pem' }, 'plain HTTP'),
    /--tls-ca, --tls-cert and --tls-key go together: .* or none for plain HTTP/,
  );
});
