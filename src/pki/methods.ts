// The RPC methods a client certificate may call, as Dominator writes them into its certificates:
// an X.509 extension (lib/constants.PermittedMethodListOID, 1.3.6.1.4.1.9586.100.7.1, not
// critical) whose value is the DER of a SEQUENCE OF strings, one `Service.Method` each, the way Go's
// asn1.Marshal([]string) encodes it (PrintableString where it can, else UTF8String). Keymaster's
// and Dominator's certificates thus work here, and Cradle's there. Pure: DER in, names out.

/** Dominator's permitted-method list (lib/constants.PermittedMethodListOID). */
export const PERMITTED_METHODS_OID = '1.3.6.1.4.1.9586.100.7.1';

const SEQUENCE = 0x30;
const UTF8_STRING = 0x0c;
const PRINTABLE_STRING = 0x13;
const IA5_STRING = 0x16;
const OID = 0x06;
const BOOLEAN = 0x01;
const OCTET_STRING = 0x04;
/** [3] EXPLICIT, the extensions of a TBSCertificate. */
const EXTENSIONS = 0xa3;

/** `Service.Method`; either part may be `*` (Dominator's `Installer.*`, `*.*`). */
const METHOD = /^([A-Za-z][A-Za-z0-9_]*|\*)\.([A-Za-z][A-Za-z0-9_]*|\*)$/;

/** The list as given to `cradle pki issue --methods`, checked: each entry `Service.Method`. */
export function parseMethodList(text: string): string[] {
  const methods = text
    .split(',')
    .map((m) => m.trim())
    .filter(Boolean);
  if (!methods.length)
    throw new Error(
      '--methods: name at least one method, e.g. --methods Installer.Shell,Installer.Status (leave --methods out for every method)',
    );
  for (const m of methods)
    if (!METHOD.test(m))
      throw new Error(
        `--methods ${m}: a method is Service.Method (e.g. Installer.Shell), either part may be * (Installer.*)`,
      );
  return [...new Set(methods)];
}

/** Dominator's matching: the method itself, `Service.*` or `*.*`. */
export function methodAllowed(permitted: readonly string[], method: string): boolean {
  const service = method.slice(0, method.indexOf('.'));
  return permitted.some((p) => p === method || p === `${service}.*` || p === '*.*');
}

/** The extension's value: DER of SEQUENCE OF (PrintableString | UTF8String), as Go marshals []string. */
export function encodeMethodList(methods: readonly string[]): Uint8Array {
  const items = methods.map((m) =>
    tlv(/^[A-Za-z0-9 '()+,\-./:=?]*$/.test(m) ? PRINTABLE_STRING : UTF8_STRING, Buffer.from(m, 'utf8')),
  );
  return tlv(SEQUENCE, Buffer.concat(items));
}

/** The names of the extension's value; entries that are not `Service.Method` are skipped, as Dominator does. */
export function decodeMethodList(value: Uint8Array): string[] {
  const seq = readTlv(Buffer.from(value), 0);
  if (seq.tag !== SEQUENCE) throw new Error('the permitted-method list is not a SEQUENCE');
  const out: string[] = [];
  for (const item of children(seq.content)) {
    if (item.tag !== UTF8_STRING && item.tag !== PRINTABLE_STRING && item.tag !== IA5_STRING)
      throw new Error(`the permitted-method list holds an ASN.1 element of tag ${item.tag}, not a string`);
    const name = item.content.toString('utf8');
    if (METHOD.test(name)) out.push(name);
  }
  return out;
}

/**
 * The methods a certificate (DER) names, or undefined when it carries no list (Cradle's
 * certificates from before the list: every method). A malformed list names none.
 */
export function permittedMethods(certDer: Uint8Array): string[] | undefined {
  const cert = readTlv(Buffer.from(certDer), 0);
  const tbs = children(cert.content)[0];
  if (cert.tag !== SEQUENCE || tbs?.tag !== SEQUENCE) throw new Error('not a DER X.509 certificate');
  const exts = children(tbs.content).find((c) => c.tag === EXTENSIONS);
  if (!exts) return undefined;
  const list = children(exts.content)[0];
  if (list?.tag !== SEQUENCE) return undefined;
  for (const ext of children(list.content)) {
    const [id, ...rest] = children(ext.content);
    if (id?.tag !== OID || decodeOid(id.content) !== PERMITTED_METHODS_OID) continue;
    // Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }
    const value = rest.at(-1);
    if (value?.tag !== OCTET_STRING || (rest.length === 2 && rest[0].tag !== BOOLEAN) || rest.length > 2) return [];
    try {
      return decodeMethodList(value.content);
    } catch {
      return [];
    }
  }
  return undefined;
}

interface Tlv {
  tag: number;
  content: Buffer;
  /** Offset just past the element. */
  end: number;
}

function readTlv(buf: Buffer, at: number): Tlv {
  if (at + 2 > buf.length) throw new Error('DER: truncated');
  const tag = buf[at];
  if ((tag & 0x1f) === 0x1f) throw new Error('DER: multi-byte tags are not used in certificates');
  let len = buf[at + 1];
  let start = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || start + n > buf.length) throw new Error('DER: bad length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[start + i];
    start += n;
  }
  if (start + len > buf.length) throw new Error('DER: truncated');
  return { tag, content: buf.subarray(start, start + len), end: start + len };
}

function children(buf: Buffer): Tlv[] {
  const out: Tlv[] = [];
  for (let at = 0; at < buf.length; ) {
    const t = readTlv(buf, at);
    out.push(t);
    at = t.end;
  }
  return out;
}

function tlv(tag: number, content: Buffer): Buffer {
  const n = content.length;
  const len =
    n < 0x80 ? Buffer.from([n]) : Buffer.concat([Buffer.from([0x80 | byteCount(n)]), bigEndian(n, byteCount(n))]);
  return Buffer.concat([Buffer.from([tag]), len, content]);
}

function byteCount(n: number): number {
  let count = 1;
  while (n >= 256 ** count) count++;
  return count;
}

function bigEndian(n: number, bytes: number): Buffer {
  const b = Buffer.alloc(bytes);
  for (let i = bytes - 1; i >= 0; i--, n = Math.floor(n / 256)) b[i] = n % 256;
  return b;
}

function decodeOid(b: Buffer): string {
  const parts: number[] = [];
  let v = 0;
  for (const byte of b) {
    v = v * 128 + (byte & 0x7f);
    if (!(byte & 0x80)) {
      parts.push(v);
      v = 0;
    }
  }
  const first = parts.shift() ?? 0;
  const head = first < 80 ? [Math.floor(first / 40), first % 40] : [2, first - 80];
  return [...head, ...parts].join('.');
}
