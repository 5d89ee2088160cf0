// Tests of the tar parser against archives made by GNU tar (no mocks), plus a few hand-built headers
// for what GNU tar cannot produce (v7 headers, LIBARCHIVE xattrs, negative times).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readTarFile } from './tar.ts';
import { TarError } from './tar-headers.ts';
import { readTar, type TarEntry } from './tar-reader.ts';

const sh = (cmd: string, cwd?: string) => execFileSync('/bin/sh', ['-ec', cmd], { cwd, encoding: 'utf8' });
let tmp: string;
const LONG = `${'d'.repeat(60)}/${'n'.repeat(120)}`; // a component over 100 bytes: ustar cannot hold it

before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tar-reader-test-'));
  sh(
    `
    mkdir -p root/dir/sub root/${LONG.split('/')[0]}
    printf 'hello' > root/dir/sub/file
    printf 'su' > root/setuid && chmod 04755 root/setuid
    printf 'cap' > root/cap && setcap cap_net_raw+ep root/cap && setfattr -n user.bin -v 0x00ff0a41 root/cap
    ln -s dir/sub/file root/link
    ln root/dir/sub/file root/hard
    mkfifo root/fifo
    mknod root/null c 1 3
    printf 'long' > root/${LONG}
    printf 'ns' > root/ns && touch -d '@1700000000.123456789' root/ns
    printf 'own' > root/owned && chown 1234:5678 root/owned
    printf 'big' > root/bigid && chown 3000000:3000001 root/bigid
    head -c 1000000 /dev/urandom > root/random
    tar -C root --format=posix --xattrs --xattrs-include='*' -cf posix.tar .
    tar -C root --format=gnu -cf gnu.tar .
  `,
    tmp,
  );
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

async function collect(entries: AsyncIterable<TarEntry>): Promise<Map<string, TarEntry & { data: Buffer }>> {
  const out = new Map<string, TarEntry & { data: Buffer }>();
  for await (const e of entries) out.set(e.path.replace(/^\.\//, ''), { ...e, data: await e.readAll() });
  return out;
}

const getfattrHex = (file: string, name: string) =>
  /=0x([0-9a-f]+)/.exec(sh(`getfattr --absolute-names -n ${name} -e hex ${file}`))![1];

describe('readTar on GNU tar archives', () => {
  test('posix format: types, modes, owners, ns mtime, raw xattrs, links, devices, long names', async () => {
    const e = await collect(readTar(fs.createReadStream(path.join(tmp, 'posix.tar'))));
    assert.equal(e.get('dir/sub/file')!.data.toString(), 'hello');
    assert.equal(e.get('dir/sub/file')!.type, 'file');
    assert.equal(e.get('dir/sub/')!.type, 'dir');
    assert.equal(e.get('setuid')!.mode, 0o4755);
    assert.deepEqual(e.get('ns')!.mtime, { sec: 1700000000n, nsec: 123456789 });
    assert.equal(e.get('owned')!.uid, 1234);
    assert.equal(e.get('owned')!.gid, 5678);
    assert.equal(e.get('bigid')!.uid, 3000000);
    const cap = e.get('cap')!;
    assert.equal(
      cap.xattrs['security.capability'].toString('hex'),
      getfattrHex(path.join(tmp, 'root/cap'), 'security.capability'),
    );
    assert.deepEqual(cap.xattrs['user.bin'], Buffer.from([0x00, 0xff, 0x0a, 0x41])); // NUL, invalid UTF-8, newline
    assert.equal(e.get('link')!.type, 'symlink');
    assert.equal(e.get('link')!.linkname, 'dir/sub/file');
    const hard = [e.get('hard')!, e.get('dir/sub/file')!].find((x) => x.type === 'hardlink')!;
    assert.ok(['./hard', './dir/sub/file'].includes(hard.linkname));
    assert.equal(hard.size, 0);
    assert.equal(e.get('fifo')!.type, 'fifo');
    assert.deepEqual([e.get('null')!.type, e.get('null')!.devmajor, e.get('null')!.devminor], ['char', 1, 3]);
    assert.equal(e.get(LONG)!.data.toString(), 'long');
    assert.deepEqual(e.get('random')!.data, fs.readFileSync(path.join(tmp, 'root/random')));
  });

  test('gnu format: long names (L), base-256 ids, whole-second mtimes', async () => {
    const e = await collect(readTarFile(path.join(tmp, 'gnu.tar')));
    assert.equal(e.get(LONG)!.data.toString(), 'long');
    assert.equal(e.get('bigid')!.uid, 3000000); // above 0o7777777: GNU writes it in base 256
    assert.equal(e.get('bigid')!.gid, 3000001);
    assert.deepEqual(e.get('ns')!.mtime, { sec: 1700000000n, nsec: 0 });
    assert.equal(e.get('setuid')!.mode, 0o4755);
    assert.equal(e.get('link')!.linkname, 'dir/sub/file');
  });

  test('dataOffset points at the content; readTarFile skips unread content by seeking', async () => {
    const file = path.join(tmp, 'posix.tar');
    const bytes = fs.readFileSync(file);
    let seen = 0;
    for await (const entry of readTarFile(file)) {
      if (entry.path === './random') {
        assert.deepEqual(
          bytes.subarray(entry.dataOffset, entry.dataOffset + entry.size),
          fs.readFileSync(path.join(tmp, 'root/random')),
        );
      }
      seen++;
    }
    assert.ok(seen > 10);
  });

  test('content() streams; a partly read content is skipped when the next entry is asked for', async () => {
    const names: string[] = [];
    for await (const entry of readTar(fs.createReadStream(path.join(tmp, 'posix.tar')))) {
      names.push(entry.path);
      if (entry.path === './random') {
        const stream = entry.content();
        const first = (await stream[Symbol.asyncIterator]().next()).value as Buffer;
        assert.ok(first.length > 0 && first.length < entry.size);
      } else if (entry.path === './setuid') {
        entry.content(); // abandoned unread: skipped, and never pulls again
      } else if (entry.path === './dir/sub/file') {
        const chunks: Buffer[] = [];
        for await (const chunk of entry.content()) chunks.push(chunk as Buffer);
        assert.equal(Buffer.concat(chunks).toString(), 'hello');
        assert.throws(() => entry.content(), /already read/);
      }
    }
    assert.ok(names.includes('./random') && names.includes('./setuid'));
    assert.equal(names.length, new Set(names).size);
  });
});

describe('readTar errors', () => {
  const readAllOf = async (file: string) => collect(readTar(fs.createReadStream(file)));

  test('a corrupted header checksum names the byte offset', async () => {
    const bytes = fs.readFileSync(path.join(tmp, 'gnu.tar'));
    const second = 512 * (1 + 0); // the first member is "./" (no content): the second header follows it
    bytes[second + 10] ^= 0x55;
    fs.writeFileSync(path.join(tmp, 'badsum.tar'), bytes);
    await assert.rejects(readAllOf(path.join(tmp, 'badsum.tar')), (err: Error) => {
      assert.ok(err instanceof TarError);
      assert.match(err.message, new RegExp(`bad tar header checksum at byte ${second} `));
      return true;
    });
  });

  test('an archive cut inside a content, or without its end marker, is truncated', async () => {
    const bytes = fs.readFileSync(path.join(tmp, 'posix.tar'));
    const size = fs.statSync(path.join(tmp, 'root/random')).size;
    let cut = 0;
    for await (const entry of readTarFile(path.join(tmp, 'posix.tar')))
      if (entry.path === './random') cut = entry.dataOffset + 1000;
    fs.writeFileSync(path.join(tmp, 'cut.tar'), bytes.subarray(0, cut));
    await assert.rejects(
      readAllOf(path.join(tmp, 'cut.tar')),
      /truncated: it ends at byte \d+ in the middle of the content of '.\/random'/,
    );
    assert.ok(size > 1000);
    // Cut at a member boundary: only the missing end-of-archive marker shows it.
    // gnu.tar starts with the header of "./", which has no content.
    fs.writeFileSync(path.join(tmp, 'noend.tar'), fs.readFileSync(path.join(tmp, 'gnu.tar')).subarray(0, 512));
    await assert.rejects(
      readAllOf(path.join(tmp, 'noend.tar')),
      /truncated: it ends at byte 512 without the end-of-archive marker/,
    );
    fs.writeFileSync(path.join(tmp, 'empty.tar'), '');
    await assert.rejects(readAllOf(path.join(tmp, 'empty.tar')), /the archive is empty/);
  });

  test('a gzip stream cut short is reported as a read error', async () => {
    sh('gzip -c posix.tar | head -c 20000 > cut.tar.gz', tmp);
    const zlib = await import('node:zlib');
    const stream = fs.createReadStream(path.join(tmp, 'cut.tar.gz')).pipe(zlib.createGunzip());
    await assert.rejects(collect(readTar(stream)), /could not read the archive at byte \d+: .*truncated or corrupt/);
  });

  test('GNU sparse members are refused (gnu and posix formats)', async () => {
    sh('mkdir -p sp && truncate -s 5M sp/holes && echo x >> sp/holes', tmp);
    for (const format of ['gnu', 'posix']) {
      sh(`tar -C sp --format=${format} --sparse -cf sparse-${format}.tar holes`, tmp);
      await assert.rejects(
        readAllOf(path.join(tmp, `sparse-${format}.tar`)),
        /tar member 'holes' is a GNU sparse file, which is not supported yet: re-create the archive without --sparse/,
      );
    }
  });

  test('a name that is not UTF-8 is refused, naming the member', async () => {
    sh(`mkdir -p latin1 && printf x > "latin1/caf$(printf '\\351')" && tar -C latin1 -cf latin1.tar .`, tmp);
    await assert.rejects(
      readAllOf(path.join(tmp, 'latin1.tar')),
      /tar member ".\/caf\uFFFD" \(header at byte \d+\) has a name that is not valid UTF-8/,
    );
  });
});

// ---- hand-built headers ---------------------------------------------------------------------------

function header(f: {
  name: string;
  type: string;
  size?: number;
  mode?: number;
  mtime?: Buffer;
  v7?: boolean;
  linkname?: string;
}): Buffer {
  const b = Buffer.alloc(512);
  const octal = (value: number, at: number, len: number) =>
    b.write(`${value.toString(8).padStart(len - 1, '0')}\0`, at, 'latin1');
  b.write(f.name, 0);
  octal(f.mode ?? 0o644, 100, 8);
  octal(0, 108, 8);
  octal(0, 116, 8);
  octal(f.size ?? 0, 124, 12);
  if (f.mtime) f.mtime.copy(b, 136);
  else octal(0, 136, 12);
  b.write(f.type, 156, 'latin1');
  b.write(f.linkname ?? '', 157);
  if (!f.v7) b.write('ustar\u000000', 257, 'latin1');
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of b) sum += byte;
  octal(sum, 148, 7);
  return b;
}

function withContent(h: Buffer, content: Buffer): Buffer[] {
  return [h, content, Buffer.alloc((512 - (content.length % 512)) % 512)];
}

function pax(records: [string, Buffer | string][]): Buffer {
  return Buffer.concat(
    records.map(([key, value]) => {
      const body = Buffer.concat([Buffer.from(` ${key}=`), Buffer.from(value), Buffer.from('\n')]);
      let len = body.length + 1;
      while (String(len).length + body.length !== len) len = String(len).length + body.length;
      return Buffer.concat([Buffer.from(String(len)), body]);
    }),
  );
}

async function* once(buf: Buffer) {
  // Odd chunk sizes exercise reads that span chunks.
  for (let i = 0; i < buf.length; i += 777) yield buf.subarray(i, i + 777);
}

describe('readTar on hand-built headers', () => {
  test('v7 headers, base-256 negative mtime, LIBARCHIVE xattrs, pax negative fractional mtime, global headers', async () => {
    const negative = Buffer.alloc(12, 0xff); // -1 in base 256
    const globalPax = pax([['uid', '42']]);
    const localPax = pax([
      ['LIBARCHIVE.xattr.user.a%3Db', Buffer.from([0, 1, 2, 255]).toString('base64').replace(/=+$/, '')],
      ['mtime', '-1.25'],
      ['uid', ''], // undoes the global uid
    ]);
    const archive = Buffer.concat([
      ...withContent(header({ name: 'pax_global_header', type: 'g', size: globalPax.length }), globalPax),
      header({ name: 'olddir/', type: '\0', v7: true, mode: 0o40755 }),
      ...withContent(header({ name: 'old', type: '\0', v7: true, size: 3, mtime: negative }), Buffer.from('abc')),
      ...withContent(header({ name: 'PaxHeaders/x', type: 'x', size: localPax.length }), localPax),
      header({ name: 'x', type: '0' }),
      header({ name: 'y', type: '0' }),
      header({ name: 'vol', type: 'V' }),
      Buffer.alloc(1024),
    ]);
    const e = await collect(readTar(once(archive)));
    assert.equal(e.get('olddir/')!.type, 'dir');
    assert.equal(e.get('olddir/')!.mode, 0o755);
    assert.equal(e.get('old')!.data.toString(), 'abc');
    assert.deepEqual(e.get('old')!.mtime, { sec: -1n, nsec: 0 });
    assert.equal(e.get('old')!.uid, 42);
    assert.deepEqual(e.get('x')!.xattrs, { 'user.a=b': Buffer.from([0, 1, 2, 255]) });
    assert.deepEqual(e.get('x')!.mtime, { sec: -2n, nsec: 750000000 });
    assert.equal(e.get('x')!.uid, 0);
    assert.equal(e.get('y')!.uid, 42);
    assert.equal(e.get('vol')!.type, 'other');
  });

  test('malformed pax records and octal fields are refused', async () => {
    const bad = Buffer.from('99 path=x\n');
    const archive = Buffer.concat([
      ...withContent(header({ name: 'p', type: 'x', size: bad.length }), bad),
      header({ name: 'x', type: '0' }),
      Buffer.alloc(1024),
    ]);
    await assert.rejects(
      collect(readTar(once(archive))),
      /pax header at byte 0 is malformed: record at 0 has a wrong length 99/,
    );
    const h = header({ name: 'x', type: '0' });
    h.write('12345678', 108, 'latin1'); // '8' is not octal
    h.fill(0x20, 148, 156);
    let sum = 0;
    for (const byte of h) sum += byte;
    h.write(`${sum.toString(8).padStart(6, '0')}\0`, 148, 'latin1');
    await assert.rejects(
      collect(readTar(once(Buffer.concat([h, Buffer.alloc(1024)])))),
      /tar header at byte 0 has an invalid uid field "12345678"/,
    );
  });
});
