import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { join } from 'node:path';
import { openOutputPath } from '../../src/output/files.js';
import { RotatingFileWriter, type RotatingFileOptions } from '../../src/output/rotate.js';
import { BatchedWriter } from '../../src/output/stream.js';
import { withDir as withTempDir } from '../helpers/dirs.js';

const withDir = (fn: (dir: string) => Promise<void>) => withTempDir('pktpath-rotate-', fn);

/** A writer on PATH, made as --output-file makes it. */
function rotating(path: string, opts: RotatingFileOptions): RotatingFileWriter {
  return new RotatingFileWriter(path, openOutputPath('--output-file', path, false).fd, opts);
}

/** `line 01\n`-style lines, all `width` bytes with the newline. */
function lines(n: number, width = 10): string[] {
  return Array.from({ length: n }, (_, i) => `line ${String(i + 1).padStart(width - 6, '0')}`);
}

function end(w: RotatingFileWriter): Promise<void> {
  return new Promise((resolve, reject) => {
    w.on('error', reject);
    w.end(() => resolve());
  });
}

/** PATH.N … PATH.1, PATH: oldest first. */
function filesOldestFirst(path: string, backups: number): string[] {
  const out: string[] = [];
  for (let i = backups; i >= 1; i--) if (existsSync(`${path}.${i}`)) out.push(`${path}.${i}`);
  out.push(path);
  return out;
}

test('rotates at line boundaries, keeps the newest lines in PATH', withDir(async (dir) => {
  const path = join(dir, 'trace.txt');
  const w = rotating(path, { maxSize: 35, maxBackups: 5 });
  const all = lines(10);
  w.write(all.join('\n') + '\n');
  await end(w);
  assert.equal(w.rotations, 3);
  assert.equal(readFileSync(path, 'utf8'), 'line 0010\n');
  assert.equal(readFileSync(`${path}.1`, 'utf8'), 'line 0007\nline 0008\nline 0009\n');
  assert.equal(readFileSync(`${path}.3`, 'utf8'), 'line 0001\nline 0002\nline 0003\n');
  assert.ok(!existsSync(`${path}.4`));
  for (const f of filesOldestFirst(path, 5)) assert.ok(statSync(f).size <= 35, f);
}));

test('keeps at most N backups, deleting the oldest', withDir(async (dir) => {
  const path = join(dir, 'trace.txt');
  const w = rotating(path, { maxSize: 20, maxBackups: 2 });
  for (const l of lines(9)) w.write(l + '\n');
  await end(w);
  assert.deepEqual(readdirSync(dir).sort(), ['trace.txt', 'trace.txt.1', 'trace.txt.2']);
  const kept = filesOldestFirst(path, 2).map((f) => readFileSync(f, 'utf8')).join('');
  assert.equal(kept, lines(9).slice(4).map((l) => l + '\n').join(''));
}));

test('no backups: the file starts over', withDir(async (dir) => {
  const path = join(dir, 'trace.txt');
  const w = rotating(path, { maxSize: 25, maxBackups: 0 });
  for (const l of lines(5)) w.write(l + '\n');
  await end(w);
  assert.deepEqual(readdirSync(dir), ['trace.txt']);
  assert.equal(readFileSync(path, 'utf8'), 'line 0005\n');
}));

test('a line longer than the limit gets a file of its own, whole', withDir(async (dir) => {
  const path = join(dir, 'trace.txt');
  const w = rotating(path, { maxSize: 12, maxBackups: 5 });
  const long = 'x'.repeat(30);
  w.write(`short 1\n${long}\nshort 2\n`);
  w.write(`${long}\n`);
  await end(w);
  assert.deepEqual(filesOldestFirst(path, 5).map((f) => readFileSync(f, 'utf8')), ['short 1\n', `${long}\n`, 'short 2\n', `${long}\n`]);
}));

test('a chunk that fits exactly does not rotate; existing backups shift', withDir(async (dir) => {
  const path = join(dir, 'trace.txt');
  writeFileSync(`${path}.1`, 'from an older run\n');
  const w = rotating(path, { maxSize: 20, maxBackups: 3 });
  w.write('line 0001\nline 0002\n');
  await new Promise((r) => w.write('', r));
  assert.equal(w.rotations, 0);
  assert.equal(w.currentSize, 20);
  w.write('line 0003\n');
  await end(w);
  assert.equal(w.rotations, 1);
  assert.equal(readFileSync(`${path}.2`, 'utf8'), 'from an older run\n');
  assert.equal(readFileSync(`${path}.1`, 'utf8'), 'line 0001\nline 0002\n');
  assert.equal(readFileSync(path, 'utf8'), 'line 0003\n');
}));

test('through a BatchedWriter: every line once, in order, none split', withDir(async (dir) => {
  const path = join(dir, 'trace.jsonl');
  const dest = rotating(path, { maxSize: 1000, maxBackups: 100 });
  const writer = new BatchedWriter(dest, { isTTY: false, maxDelayMs: 0, batchSize: 700 });
  const want: string[] = [];
  for (let i = 0; i < 500; i++) {
    const line = JSON.stringify({ n: i, pad: 'p'.repeat(i % 37) });
    want.push(line);
    writer.write(line);
  }
  await writer.close();
  const files = filesOldestFirst(path, 100);
  assert.ok(files.length > 10);
  const got: string[] = [];
  for (const f of files) {
    const text = readFileSync(f, 'utf8');
    assert.ok(text.length <= 1000, `${f} is ${text.length} bytes`);
    assert.ok(text.endsWith('\n'), `${f} ends with a whole line`);
    for (const l of text.split('\n').slice(0, -1)) got.push(l);
  }
  assert.deepEqual(got, want);
}));

test('a rotation that cannot make its next file is an error on the stream', withDir(async (dir) => {
  const sub = join(dir, 'sub');
  mkdirSync(sub);
  const w = rotating(join(sub, 'trace.txt'), { maxSize: 10, maxBackups: 1 });
  rmSync(sub, { recursive: true });
  w.write('line 0001\nline 0002\n');
  const err = await new Promise<Error>((resolve) => w.on('error', resolve));
  assert.match(err.message, /ENOENT/);
}));

test('bad limits are rejected', () => {
  assert.throws(() => new RotatingFileWriter('/dev/null', -1, { maxSize: 0, maxBackups: 1 }), /not a positive size/);
  assert.throws(() => new RotatingFileWriter('/dev/null', -1, { maxSize: 10, maxBackups: -1 }), /not a count/);
});

test('--output-file-compress: rotated files are gzipped, every line once, in order', withDir(async (dir) => {
  const path = join(dir, 'trace.txt');
  const w = rotating(path, { maxSize: 35, maxBackups: 10, compress: true });
  const all = lines(20);
  for (const l of all) w.write(l + '\n');
  await end(w);
  const names = readdirSync(dir).sort();
  assert.ok(names.every((n) => n === 'trace.txt' || /^trace\.txt\.\d+\.gz$/.test(n)), names.join(' '));
  const backups = names.filter((n) => n.endsWith('.gz')).map((n) => Number(n.split('.')[2])).sort((a, b) => b - a);
  assert.ok(backups.length >= 5);
  const text = backups.map((i) => gunzipSync(readFileSync(`${path}.${i}.gz`)).toString()).join('') + readFileSync(path, 'utf8');
  assert.equal(text, all.map((l) => l + '\n').join(''));
  for (const i of backups) assert.equal(statSync(`${path}.${i}.gz`).mode & 0o777, 0o600);
}));

test('--output-file-max-age: rotated files older than the limit go at the next rotation', withDir(async (dir) => {
  const path = join(dir, 'trace.txt');
  // Backups a previous run left: one ten days old, one from today.
  writeFileSync(`${path}.1`, 'recent\n');
  writeFileSync(`${path}.2`, 'old\n');
  const tenDaysAgo = (Date.now() - 10 * 86_400_000) / 1000;
  utimesSync(`${path}.2`, tenDaysAgo, tenDaysAgo);
  const w = rotating(path, { maxSize: 20, maxBackups: 5, maxAgeDays: 7 });
  for (const l of lines(3)) w.write(l + '\n');
  await end(w);
  // One rotation: PATH → .1, .1 (recent) → .2, .2 (old) → .3, then deleted for its age.
  assert.equal(readFileSync(`${path}.2`, 'utf8'), 'recent\n');
  assert.equal(existsSync(`${path}.3`), false);
}));
