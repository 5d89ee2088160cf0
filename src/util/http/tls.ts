// The TLS settings of every Cradle server: TLS 1.2 and 1.3 only, and on TLS 1.2 only AEAD suites
// with forward secrecy (Mozilla's "intermediate" profile less its DHE suites, which need
// parameters Cradle does not make): no CBC suite, so nothing for LUCKY13-style attacks.
// No renegotiation: a client that starts one on TLS 1.2 and never finishes it stalls every answer
// after it, holding its connection busy with nothing moving (and each one costs the server a
// handshake); TLS 1.3 has none, and Cradle's clients never ask for one.
import { constants } from 'node:crypto';
import type tls from 'node:tls';

const TLS12_AEAD_SUITES = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
];

export const SERVER_TLS_PROFILE: tls.TlsOptions = {
  minVersion: 'TLSv1.2',
  ciphers: TLS12_AEAD_SUITES.join(':'),
  honorCipherOrder: true,
  secureOptions: constants.SSL_OP_NO_RENEGOTIATION,
};
