// The wizard's terminal on a serial console's terms: UTF-8 only when the locale and TERM allow it,
// every line within 80 columns, a tty reporting 0x0 taken as 80x24, a pause every screenful, and
// a secret read with the tty raw (no echo) and edited as the line discipline would have.
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { clean, editLine, isUtf8, Terminal, wrap } from './terminal.ts';

test('UTF-8 from LC_ALL, LC_CTYPE, then LANG; never on a VT100', () => {
  assert.equal(isUtf8({ LANG: 'en_US.UTF-8', TERM: 'linux' }), true);
  assert.equal(isUtf8({ LANG: 'de_DE.utf8' }), true);
  assert.equal(isUtf8({ LANG: 'C' }), false);
  assert.equal(isUtf8({}), false);
  assert.equal(isUtf8({ LC_ALL: 'C', LANG: 'en_US.UTF-8' }), false);
  assert.equal(isUtf8({ LC_CTYPE: 'C.UTF-8', LANG: 'C' }), true);
  assert.equal(isUtf8({ LANG: 'en_US.UTF-8', TERM: 'vt100' }), false);
});

test('lines are cleaned: control characters masked; outside UTF-8, ASCII only', () => {
  assert.equal(clean('disk \x1b[2Jmodel\ttab', false), 'disk ?[2Jmodel  tab');
  assert.equal(clean('\u2500\u2500 Schl\u00fcssel \u2026', true), '-- Schl?ssel ...');
  assert.equal(clean('\u2500 \u00fc', false), '\u2500 \u00fc');
});

test('long lines wrap at spaces within the width; indented items continue under their text', () => {
  assert.deepEqual(wrap('short', 10), ['short']);
  assert.deepEqual(wrap('the quick brown fox jumps', 10), ['the quick', 'brown fox', 'jumps']);
  assert.deepEqual(wrap('  ! one two three four', 12), ['  ! one two', '    three', '    four']);
  assert.deepEqual(wrap('https://example.com/a/very/long/url', 12), ['https://exam', 'ple.com/a/ve', 'ry/long/url']);
  for (const l of wrap(`${'word '.repeat(40)}${'x'.repeat(200)}`, 79)) assert.ok(l.length <= 79, l);
});

test('a secret typed on a raw tty: backspace and Ctrl-U applied', () => {
  assert.equal(editLine('secrex\x7ft'), 'secret');
  assert.equal(editLine('wrong\x15rigxx\b\bht'), 'right');
});

/** An output that says it is a tty of the given size, collecting what is written. */
function ttyOut(columns: number, rows: number) {
  const out = Object.assign(new PassThrough(), { isTTY: true, columns, rows });
  let text = '';
  out.on('data', (b: Buffer) => (text += b.toString()));
  return { out, text: () => text };
}

test('a tty reporting 0x0 is taken as 80x24: lines cut at 79, a pause after a screenful', async () => {
  const input = new PassThrough();
  const { out, text } = ttyOut(0, 0);
  const term = new Terminal(input, out, { LANG: 'C' });
  assert.deepEqual([term.width, term.rows, term.ascii], [80, 24, true]);
  input.write('\n');
  const block = [...Array.from({ length: 25 }, (_, i) => `line ${i}`), `${'word '.repeat(30)}end`];
  assert.equal(await term.print(block), true);
  term.close();
  const lines = text().split('\n');
  assert.ok(lines.every((l) => l.length <= 79));
  // 22 lines, the pause (its Enter is the kernel's echo on a real tty), then the rest.
  assert.equal(lines[21], 'line 21');
  assert.equal(lines[22], '-- more: press Enter -- line 22');
  assert.equal(lines.at(-4), 'line 24');
  assert.equal(lines.at(-3), `${'word '.repeat(15)}word`);
  assert.equal(lines.at(-2), `${'word '.repeat(14)}end`);
  assert.match(term.rule('Step 1 of 11: Welcome'), /^== Step 1 of 11: Welcome =+$/);
  assert.equal(term.rule('x').length, 79);
});

test('a narrower tty is honoured; a wider one still gets 80 columns; a pipe is not paged', async () => {
  assert.equal(new Terminal(new PassThrough(), ttyOut(40, 10).out, {}).width, 40);
  assert.equal(new Terminal(new PassThrough(), ttyOut(132, 50).out, {}).width, 80);
  const input = new PassThrough();
  const out = new PassThrough();
  const term = new Terminal(input, out, { LANG: 'en_US.UTF-8', TERM: 'linux' });
  assert.equal(term.paged, false);
  assert.equal(term.ascii, false);
  assert.equal(await term.print(Array.from({ length: 50 }, () => 'x')), true);
  // Lines typed ahead wait for their prompts; the end of the input is undefined.
  input.end('one\ntwo\n');
  assert.equal(await term.ask('first?'), 'one');
  assert.equal(await term.ask('second?'), 'two');
  assert.equal(await term.ask('third?'), undefined);
  term.close();
});

test('a secret: the tty is raw (no echo) for that line only, then restored, and the line ends', async () => {
  const modes: boolean[] = [];
  const input = Object.assign(new PassThrough(), { isTTY: true, setRawMode: (m: boolean) => modes.push(m) });
  const { out, text } = ttyOut(80, 24);
  const term = new Terminal(input, out, {});
  const answer = term.ask('root password:', true);
  input.write('hunter22x\x7f\r');
  assert.equal(await answer, 'hunter22');
  assert.deepEqual(modes, [true, false]);
  assert.equal(text(), 'root password: \n');
  const quit = term.ask('again:', true);
  input.write('abc\x03\r');
  assert.equal(await quit, '\x03');
  // The raw line ended with a CR; the next, cooked line's LF is a line of its own (Enter: the default).
  const next = term.ask('locale [en_US.UTF-8]:');
  input.write('\n');
  assert.equal(await next, '');
  term.close();
});
