/**
 * Files pktpath reads but did not write (traces, expectations, BTF): regular
 * files only, bounded, their format named when it is not UTF-8 text, every
 * trace line checked against the schema, and what is wrong named by file,
 * line and field.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { InputFileRefused, readRegularFile, readRegularText, textStart } from '../../src/bpf/input-file.js';
import { useKernelBtf } from '../../src/bpf/btf/vmlinux.js';
import { loadExpectations } from '../../src/regress/expect.js';
import { lineBatches } from '../../src/regress/lines.js';
import { writeNormalized, normalizeFile } from '../../src/regress/normalize.js';
import { checkTraceFile, classify, readTrace } from '../../src/regress/records.js';
import { RAW_JOURNEYS } from '../../src/regress/journeys.js';
import { Collect, root } from '../helpers/fixtures.js';
import {
  FIELD_CASES, FREE_EVENT, FULL_EVENT, HEADER, LOST, NORMALIZED_HEADER, NORMALIZED_PACKET, ORDER_CASES, traceText,
} from '../helpers/records.js';

const dir = mkdtempSync(join(tmpdir(), 'pktpath-input-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, content?: string | Buffer) => {
  const path = join(dir, name);
  if (content !== undefined) writeFileSync(path, content);
  return path;
};
const fifo = file('fifo');
execFileSync('mkfifo', [fifo]);
symlinkSync('/dev/zero', file('zero-link'));

async function lines(path: string, limit: number): Promise<string[]> {
  const out: string[] = [];
  for await (const batch of lineBatches(path, limit, 'why')) out.push(...batch);
  return out;
}

async function readAll(path: string): Promise<string[]> {
  const kinds: string[] = [];
  for await (const l of readTrace(path)) kinds.push(l.kind);
  return kinds;
}

const refusal = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    return (e as Error).message;
  }
  return 'not refused';
};

test('regular files only: a device, a FIFO, a directory or a link to a device is refused before it is read', () => {
  for (const [path, what] of [
    ['/dev/zero', 'not a regular file (a character device)'], [fifo, 'not a regular file (a FIFO)'],
    [file('zero-link'), 'not a regular file (a character device)'], [dir, 'is a directory'], [file('none'), 'cannot read: ENOENT'],
  ]) {
    assert.throws(() => readRegularFile(path!, 1024, 'why'), (e: Error) => e instanceof InputFileRefused && e.message === `${path}: ${what}`, path);
    assert.throws(() => checkTraceFile(path!), (e: Error) => e.message === `${path}: ${what}`, path);
  }
});

test('a file is read up to its kind\'s limit: past it, refused before a byte is read', () => {
  const sparse = file('sparse', '');
  truncateSync(sparse, 64 * 1024 ** 3);
  assert.equal(refusal(() => readRegularFile(sparse, 1024 ** 2, 'files of its kind are small')), `${sparse}: larger than 1 MiB; files of its kind are small`);
  assert.equal(readRegularFile(file('exact', 'x'.repeat(1024)), 1024, 'why').length, 1024);
  assert.match(refusal(() => readRegularFile(file('over', 'x'.repeat(1025)), 1024, 'why')), /over: larger than 1 KiB; why$/);
});

test('compressed and UTF-16 files are named; a UTF-8 byte-order mark is skipped', () => {
  const cases: Array<[number[], RegExp]> = [
    [[0x1f, 0x8b, 8, 0], /gzip-compressed: decompress it first \(gunzip\)$/],
    [[0x28, 0xb5, 0x2f, 0xfd], /zstd-compressed/],
    [[0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], /xz-compressed/],
    [[0xff, 0xfe, 0x7b, 0x00], /UTF-16 text \(byte-order mark FF FE\): pktpath reads UTF-8/],
    [[0xfe, 0xff, 0x00, 0x7b], /UTF-16 text \(byte-order mark FE FF\)/],
    [[0xff, 0xfe, 0x00, 0x00], /UTF-32 text/],
  ];
  for (const [bytes, message] of cases) assert.match(refusal(() => textStart('f', Uint8Array.from(bytes))), message);
  assert.equal(textStart('f', Uint8Array.from([0xef, 0xbb, 0xbf, 0x7b])), 3);
  assert.equal(textStart('f', Uint8Array.from([0x7b])), 0);
  assert.equal(textStart('f', new Uint8Array(0)), 0);
  assert.equal(readRegularText(file('bom.yaml', '\ufeffexpect: []\n'), 1024, 'why'), 'expect: []\n');
});

test('lines: split where they end whatever the reads, the last one without a newline, blank lines kept', async () => {
  // Lines of every length around the 1 MiB reads, so that ends fall on, before and after read boundaries.
  const want: string[] = [];
  for (let n = 0, total = 0; total < 3.5 * 2 ** 20; n++) {
    const line = 'é'.repeat(n % 7) + 'x'.repeat((n * 7919) % 60_000);
    want.push(line);
    total += Buffer.byteLength(line) + 1;
  }
  want.push('', 'last');
  assert.deepEqual(await lines(file('many', want.join('\n')), 64 * 1024), want);
  assert.deepEqual(await lines(file('crlf', 'a\r\nb\r\n'), 16), ['a\r', 'b\r']);
  assert.deepEqual(await lines(file('bom', '\ufeffa\nb'), 16), ['a', 'b']);
  assert.deepEqual(await lines(file('empty', ''), 16), []);
});

test('lines: one as long as the limit is read; one byte longer is refused at its number, wherever it ends', async () => {
  const limit = 1000;
  assert.deepEqual(await lines(file('at-limit', `a\n${'x'.repeat(limit)}\nb\n`), limit), ['a', 'x'.repeat(limit), 'b']);
  for (const text of [`a\n${'x'.repeat(limit + 1)}\nb\n`, `a\n${'x'.repeat(limit + 1)}`, `a\n${'x'.repeat(5 * 2 ** 20)}\n`]) {
    await assert.rejects(lines(file('over', text), limit), (e: Error) => e.message === `${join(dir, 'over')}:2: a line longer than 1000 bytes; why`);
  }
});

test('lines: a file of gigabytes without a newline is refused once the limit is read, without gathering it', async () => {
  const sparse = file('no-newline', '');
  truncateSync(sparse, 4 * 1024 ** 3);
  const before = process.memoryUsage().rss;
  const t0 = performance.now();
  await assert.rejects(readAll(sparse), (e: Error) => e.message === `${sparse}:1: a line longer than 16 MiB; a trace line pktpath writes is under 1 MiB`);
  assert.ok(performance.now() - t0 < 5000, 'bounded time');
  assert.ok(process.memoryUsage().rss - before < 100 * 2 ** 20, 'bounded memory');
});

test('every trace line pktpath writes passes the schema: the fixtures, every section, headers, normalised lines', async () => {
  const golden = ['fixtures/golden/basic.jsonl', 'fixtures/golden/regress/scenario.norm.jsonl'];
  for (const g of golden) {
    for (const line of readFileSync(new URL(g, root), 'utf8').split('\n').filter(Boolean)) assert.doesNotThrow(() => classify(line), g);
  }
  for (const r of [FULL_EVENT, FREE_EVENT, HEADER, LOST, NORMALIZED_HEADER, NORMALIZED_PACKET, { ...NORMALIZED_PACKET, repeat: 3 }]) {
    assert.doesNotThrow(() => classify(JSON.stringify(r)), JSON.stringify(r));
  }
  // What normalize writes, with counts and without, reads back.
  const n = await normalizeFile(new URL('fixtures/golden/basic.jsonl', root).pathname, { ...RAW_JOURNEYS, keepNeighbour: false }, []);
  for (const counts of [false, true]) {
    const out = new Collect();
    writeNormalized(n, out, { counts });
    const written = out.text.split('\n').filter(Boolean);
    assert.ok(written.length > 1);
    for (const line of written) assert.doesNotThrow(() => classify(line), line);
  }
});

test('a wrong field or a line out of place: one line naming the file, the line and the field', async () => {
  for (const c of [...FIELD_CASES, ...ORDER_CASES]) {
    const path = file('case.jsonl', traceText(c.lines()));
    await assert.rejects(readAll(path), (e: Error) => e.message.startsWith(`${path}:${c.line}: `) && c.message.test(e.message) && !e.message.includes('\n'),
      c.name);
  }
  // A trace as it should be reads whole.
  assert.deepEqual(await readAll(file('good.jsonl', traceText([HEADER, FULL_EVENT, LOST, FREE_EVENT]))), ['header', 'event', 'lost', 'event']);
  assert.deepEqual(await readAll(file('header-only.jsonl', traceText([HEADER]))), ['header']);
});

test('expectation files: regular, bounded, and aliases that expand too far refused naming the file', () => {
  for (const [path, what] of [['/dev/zero', 'not a regular file (a character device)'], [fifo, 'not a regular file (a FIFO)']]) {
    assert.throws(() => loadExpectations(path!), (e: Error) => e.message === `${path}: ${what}`);
  }
  const big = file('big.yaml', `expect:\n  - name: x\n${'#'.repeat(2 ** 20)}\n`);
  assert.throws(() => loadExpectations(big), (e: Error) => e.message === `${big}: larger than 1 MiB; an expectation file is a few KiB`);
  assert.throws(() => loadExpectations(file('e.gz', gzipSync('expect: []\n'))), /e\.gz: gzip-compressed/);
  const levels = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
  for (let i = 1; i < 9; i++) levels.push(`${'abcdefghi'[i]}: &${'abcdefghi'[i]} [${Array(9).fill(`*${'abcdefghi'[i - 1]}`).join(',')}]`);
  const laughs = file('laughs.yaml', `${levels.join('\n')}\nexpect: []\n`);
  assert.throws(() => loadExpectations(laughs), (e: Error) => e.message === `${laughs}: aliases that expand too far (a "billion laughs"?): write the values out`);
  // An alias within reason is YAML as usual.
  const aliased = loadExpectations(file('alias.yaml', 'vars: [&pods 10.244.0.0/16]\nexpect:\n  - name: to pods\n    match: { dst: *pods }\n'));
  assert.equal(aliased.expect[0]!.match.dst!.text, '10.244.0.0/16');
});

test('--kernel-btf: a device, a FIFO or a file past 256 MiB is refused before it is read', () => {
  const sparse = file('huge.btf', '');
  truncateSync(sparse, 300 * 1024 ** 2);
  for (const [path, what] of [
    ['/dev/zero', 'not a regular file (a character device)'], [fifo, 'not a regular file (a FIFO)'],
    [sparse, 'larger than 256 MiB; a kernel\'s BTF is a few MiB'],
  ]) {
    assert.throws(() => useKernelBtf(path!), (e: Error) => e instanceof InputFileRefused && e.what === what, path);
  }
});
