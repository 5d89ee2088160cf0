// SHA-512 crypt ("$6$", Ulrich Drepper's SHA-crypt, glibc's crypt(3) default): how a root password
// is stored in /etc/shadow. Written out here because Node's crypto has the hash but not the scheme,
// and the setup must hash a password before it is written anywhere, on a system that may have
// neither openssl nor mkpasswd. The tests check it against `openssl passwd -6`.
import { createHash, randomBytes } from 'node:crypto';

const ITOA64 = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const ROUNDS_DEFAULT = 5000;

/** The order in which the scheme spreads the digest's bytes over its base-64 text. */
const ORDER = [
  [0, 21, 42],
  [22, 43, 1],
  [44, 2, 23],
  [3, 24, 45],
  [25, 46, 4],
  [47, 5, 26],
  [6, 27, 48],
  [28, 49, 7],
  [50, 8, 29],
  [9, 30, 51],
  [31, 52, 10],
  [53, 11, 32],
  [12, 33, 54],
  [34, 55, 13],
  [56, 14, 35],
  [15, 36, 57],
  [37, 58, 16],
  [59, 17, 38],
  [18, 39, 60],
  [40, 61, 19],
  [62, 20, 41],
];

const sha512 = (...parts: Buffer[]) => {
  const h = createHash('sha512');
  for (const p of parts) h.update(p);
  return h.digest();
};

/** `n` bytes of `block` repeated. */
function repeatTo(block: Buffer, n: number): Buffer {
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i += block.length) block.copy(out, i, 0, Math.min(block.length, n - i));
  return out;
}

function encode(d: Buffer): string {
  let out = '';
  const put = (w: number, n: number) => {
    for (let i = 0; i < n; i++, w >>>= 6) out += ITOA64[w & 63];
  };
  for (const [a, b, c] of ORDER) put((d[a] << 16) | (d[b] << 8) | d[c], 4);
  put(d[63], 2);
  return out;
}

/** A salt of 16 characters from the scheme's alphabet. */
export function newSalt(): string {
  return [...randomBytes(16)].map((b) => ITOA64[b & 63]).join('');
}

/** `$6$salt$hash` (or `$6$rounds=N$salt$hash` when `rounds` is not the default). */
export function sha512Crypt(password: string, salt = newSalt(), rounds = ROUNDS_DEFAULT): string {
  const P = Buffer.from(password, 'utf8');
  const S = Buffer.from(salt.slice(0, 16), 'utf8');
  const R = Math.min(999_999_999, Math.max(1000, rounds));
  const B = sha512(P, S, P);
  const a = createHash('sha512').update(P).update(S).update(repeatTo(B, P.length));
  for (let n = P.length; n > 0; n >>>= 1) a.update(n & 1 ? B : P);
  const A = a.digest();
  const Pp = repeatTo(sha512(...Array<Buffer>(P.length).fill(P)), P.length);
  const Sp = repeatTo(sha512(...Array<Buffer>(16 + A[0]).fill(S)), S.length);
  let C = A;
  for (let i = 0; i < R; i++) {
    const h = createHash('sha512');
    h.update(i & 1 ? Pp : C);
    if (i % 3) h.update(Sp);
    if (i % 7) h.update(Pp);
    h.update(i & 1 ? C : Pp);
    C = h.digest();
  }
  const prefix = R === ROUNDS_DEFAULT ? '$6$' : `$6$rounds=${R}$`;
  return `${prefix}${S.toString('utf8')}$${encode(C)}`;
}
