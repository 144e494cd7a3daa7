import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, createWriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { setImmediate as nextImmediate } from 'node:timers/promises';
import { BatchedWriter } from '../../src/output/stream.js';

class Collect extends Writable {
  chunks: string[] = [];
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.chunks.push(chunk.toString('utf8'));
    cb();
  }
}

class Broken extends Writable {
  writes = 0;
  constructor(private readonly code: string) {
    super();
  }
  override _write(_chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.writes++;
    const err = new Error(`write ${this.code}`) as NodeJS.ErrnoException;
    err.code = this.code;
    cb(err);
  }
}

test('batches lines until flush', async () => {
  const out = new Collect();
  const w = new BatchedWriter(out, { isTTY: false, maxDelayMs: 0 });
  w.write('a');
  w.write('b');
  await nextImmediate();
  assert.deepEqual(out.chunks, []);
  w.flush();
  assert.deepEqual(out.chunks, ['a\nb\n']);
  w.write('c');
  await w.close();
  assert.deepEqual(out.chunks, ['a\nb\n', 'c\n']);
  assert.ok(out.writableEnded);
});

test('flushes once the batch passes its size', () => {
  const out = new Collect();
  const w = new BatchedWriter(out, { isTTY: false, maxDelayMs: 0, batchSize: 10 });
  w.write('12345');
  assert.equal(out.chunks.length, 0);
  w.write('67890');
  assert.deepEqual(out.chunks, ['12345\n67890\n']);
});

test('default batch is about 64 KiB', () => {
  const out = new Collect();
  const w = new BatchedWriter(out, { isTTY: false, maxDelayMs: 0 });
  const line = 'x'.repeat(99);
  for (let i = 0; i < 655; i++) w.write(line);
  assert.equal(out.chunks.length, 0);
  w.write(line);
  assert.equal(out.chunks.length, 1);
  assert.equal(out.chunks[0]!.length, 656 * 100);
});

test('on a TTY, lines written in one turn go out together at its end', async () => {
  const out = new Collect();
  const w = new BatchedWriter(out, { isTTY: true });
  w.write('a');
  w.write('b');
  assert.deepEqual(out.chunks, []);
  await nextImmediate();
  assert.deepEqual(out.chunks, ['a\nb\n']);
  w.write('c');
  await nextImmediate();
  assert.deepEqual(out.chunks, ['a\nb\n', 'c\n']);
});

test('not a TTY: a half-full batch goes out after the delay', async () => {
  const out = new Collect();
  // A delay long next to a busy machine's scheduling: the timer must not beat the next turn of the loop.
  const delay = 200;
  const w = new BatchedWriter(out, { isTTY: false, maxDelayMs: delay });
  const t0 = performance.now();
  w.write('a');
  await nextImmediate();
  assert.deepEqual(out.chunks, []);
  while (out.chunks.length === 0 && performance.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 5));
  assert.deepEqual(out.chunks, ['a\n']);
  // Node's timers may fire up to a millisecond early, never more.
  assert.ok(performance.now() - t0 >= delay - 1, 'written before the delay');
});

test('EPIPE: onClosed once, no throw, later writes dropped, close resolves', async () => {
  const out = new Broken('EPIPE');
  let closedCalls = 0;
  const w = new BatchedWriter(out, { isTTY: false, maxDelayMs: 0, onClosed: () => closedCalls++ });
  w.write('a');
  w.flush();
  await nextImmediate();
  assert.equal(closedCalls, 1);
  assert.equal(w.closed, true);
  w.write('b');
  w.flush();
  w.write('c');
  await nextImmediate();
  assert.equal(out.writes, 1);
  await w.close();
  assert.equal(closedCalls, 1);
});

test('EPIPE during the final flush of close()', async () => {
  const out = new Broken('EPIPE');
  let closedCalls = 0;
  const w = new BatchedWriter(out, { isTTY: false, maxDelayMs: 0, onClosed: () => closedCalls++ });
  w.write('a');
  await w.close();
  await nextImmediate();
  assert.ok(closedCalls <= 1);
});

test('other write errors: onError once and close() rejects', async () => {
  const out = new Broken('ENOSPC');
  const errors: Error[] = [];
  let closedCalls = 0;
  const w = new BatchedWriter(out, {
    isTTY: false,
    maxDelayMs: 0,
    onError: (e) => errors.push(e),
    onClosed: () => closedCalls++,
  });
  w.write('a');
  w.flush();
  await nextImmediate();
  assert.equal(errors.length, 1);
  assert.equal((errors[0] as NodeJS.ErrnoException).code, 'ENOSPC');
  assert.equal(closedCalls, 0);
  await assert.rejects(w.close(), /ENOSPC/);
});

test('other write errors without onError: onClosed so the tracer stops', async () => {
  const out = new Broken('ENOSPC');
  let closedCalls = 0;
  const w = new BatchedWriter(out, { isTTY: false, maxDelayMs: 0, onClosed: () => closedCalls++ });
  w.write('a');
  w.flush();
  await nextImmediate();
  assert.equal(closedCalls, 1);
  await assert.rejects(w.close(), /ENOSPC/);
});

test('does not end process.stdout', async () => {
  const w = new BatchedWriter(process.stdout, { isTTY: false, maxDelayMs: 0 });
  await w.close();
  assert.equal(process.stdout.writableEnded, false);
});

test('writes a file and ends it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pktpath-stream-'));
  try {
    const path = join(dir, 'out.txt');
    const w = new BatchedWriter(createWriteStream(path), { batchSize: 16 });
    for (let i = 0; i < 100; i++) w.write(`line ${i}`);
    await w.close();
    const lines = readFileSync(path, 'utf8').split('\n');
    assert.equal(lines.length, 101);
    assert.equal(lines[99], 'line 99');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('drain waits for a destination that asked for a pause', async () => {
  let release: (() => void) | null = null;
  const out = new Writable({
    highWaterMark: 4,
    write(_chunk, _enc, cb): void {
      release = () => cb();
    },
  });
  const w = new BatchedWriter(out, { isTTY: false, maxDelayMs: 0 });
  w.write('0123456789');
  w.flush();
  let drained = false;
  const p = w.drain().then(() => (drained = true));
  await nextImmediate();
  assert.equal(drained, false);
  release!();
  await p;
  assert.equal(drained, true);
  await w.drain();
});

test('non-ASCII and lines longer than the batch are written whole', async () => {
  const out = new Collect();
  const w = new BatchedWriter(out, { isTTY: false, maxDelayMs: 0, batchSize: 64 });
  const long = 'x'.repeat(50_000) + '\u2192';
  w.write('a \u2192 b');
  w.write(long);
  w.write('\ud83d\ude00 end');
  await w.close();
  assert.equal(out.chunks.join(''), 'a \u2192 b\n' + long + '\n\ud83d\ude00 end\n');
});

test('a destination that does not keep up: batches past the bound are dropped and counted, memory stays bounded', () => {
  // A pipe nobody reads: it takes the first write and never calls back.
  const blocked = new Writable({ write: () => {} });
  let warned = 0;
  const w = new BatchedWriter(blocked, { isTTY: false, maxDelayMs: 0, maxPendingBytes: 1 << 20, onDropped: () => warned++ });
  const line = 'x'.repeat(99);
  const total = 100_000;
  for (let i = 0; i < total; i++) w.write(line);
  w.flush();
  assert.ok(blocked.writableLength <= (1 << 20) + 64 * 1024, `held ${blocked.writableLength} bytes`);
  const { lines, bytes } = w.dropped;
  assert.ok(lines > 0.8 * total, `dropped ${lines} lines`);
  assert.equal(bytes, lines * 100);
  assert.equal(blocked.writableLength / 100 + lines, total, 'every line is either held or counted as dropped');
  assert.equal(warned, 1);
});

test('batch buffers are reused only once their writes are done: a slow destination reads every byte as written', async () => {
  // Each write is read a few turns later, as a disk or a pipe would; a reused buffer would show later lines in it.
  const got: string[] = [];
  let pending = 0;
  const dest = new Writable({
    highWaterMark: 1 << 30,
    write(chunk: Buffer, _enc, cb) {
      pending++;
      setTimeout(() => {
        got.push(chunk.toString());
        pending--;
        cb();
      }, pending % 3);
    },
  });
  const w = new BatchedWriter(dest, { isTTY: false, batchSize: 4096, maxDelayMs: 0 });
  const expected: string[] = [];
  for (let round = 0; round < 40; round++) {
    for (let i = 0; i < 200; i++) {
      const line = `round ${round} line ${i} ${'x'.repeat((i * 7) % 50)}`;
      expected.push(line);
      w.write(line);
    }
    // Let some writes finish, so their buffers come back for the next batches.
    await new Promise((r) => setTimeout(r, round % 2));
  }
  await w.close();
  assert.equal(got.join(''), expected.join('\n') + '\n');
});
