import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { LineEncoder, type LineTarget, lineText, utf8 } from '../../src/output/line.js';
import { BatchedWriter } from '../../src/output/stream.js';

/** A target that grows by exactly what is asked: every write past the end moves the line. */
class Tight implements LineTarget {
  buf = Buffer.alloc(0);
  grows = 0;
  room(at: number, min: number): Buffer {
    if (this.buf.length - at >= min) return this.buf;
    const next = Buffer.alloc(at + min);
    this.buf.copy(next, 0, 0, at);
    this.grows++;
    return (this.buf = next);
  }
}

test('numbers are written as String() writes them', () => {
  const values = [0, 1, 9, 10, 99, 100, 4242, 65535, 1500, 4026531840, 0xffffffff,
    // Outside 0..2^32-1: the generic path.
    2 ** 32, -1, 1.5, NaN, Number.MAX_SAFE_INTEGER];
  for (let p = 1; p < 2 ** 32; p *= 10) values.push(p - 1, p, p + 1);
  for (const n of values) assert.equal(lineText((enc) => enc.number(n)), String(n), String(n));
});

test('nanoseconds are nine digits, zero-padded', () => {
  for (const f of [0, 1, 7, 999, 1000, 123456789, 999999999, 1_000_000, 999_000, 5_000_005]) {
    assert.equal(lineText((enc) => enc.nanos9(f)), String(f).padStart(9, '0'));
  }
});

test('pieces, bytes and text join in order, through any number of moves of the buffer', () => {
  const target = new Tight();
  const enc = new LineEncoder(target);
  enc.begin(0);
  const parts: string[] = [];
  for (let i = 0; i < 200; i++) {
    const piece = `piece-${i}-é→`;
    enc.bytes(utf8(piece));
    enc.number(i * 7919);
    enc.byte(0x2c);
    enc.text('ünï-' + 'x'.repeat(i % 13));
    parts.push(piece, String(i * 7919), ',', 'ünï-' + 'x'.repeat(i % 13));
  }
  enc.nanos9(42);
  parts.push('000000042');
  assert.equal(target.buf.toString('utf8', 0, enc.at), parts.join(''));
  assert.ok(target.grows > 100, `moved ${target.grows} times`);
});

test('a writer line encoded in place keeps the batch before it, even when it outgrows the batch buffer', async () => {
  const chunks: Buffer[] = [];
  const out = new Writable({
    write(chunk: Buffer, _e, cb) {
      chunks.push(Buffer.from(chunk));
      cb();
    },
  });
  const w = new BatchedWriter(out, { isTTY: false, maxDelayMs: 0, batchSize: 64 });
  w.write('first');
  const enc = w.beginLine();
  // Far past the buffer's slack: the line moves to a bigger buffer with 'first' still before it.
  const big = 'y'.repeat(100_000);
  enc.text('big:');
  enc.bytes(utf8(big));
  enc.number(7);
  w.endLine();
  w.write('last');
  await w.close();
  assert.equal(Buffer.concat(chunks).toString(), `first\nbig:${big}7\nlast\n`);
});
