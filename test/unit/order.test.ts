/**
 * Ring records put in time order (src/trace/order.ts): held a window, copied
 * out of a buffer that changes, released by a later record or a bound, and
 * what comes too late counted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RecordOrder, halves, nsSince } from '../../src/trace/order.js';

const LEN = 24;

/** A lent buffer of records: each is its time (u64 at 0) and a tag (u32 at 8), 32 bytes apart (a header between). */
function ring(times: number[], first = 0): { view: DataView; bytes: Uint8Array; at: (i: number) => number } {
  const bytes = new Uint8Array(times.length * 32 + 8);
  const view = new DataView(bytes.buffer);
  const at = (i: number) => 8 + i * 32;
  times.forEach((t, i) => {
    view.setBigUint64(at(i), BigInt(t), true);
    view.setUint32(at(i) + 8, first + i, true);
  });
  return { view, bytes, at };
}

function collect(window: number): { order: RecordOrder; out: Array<[number, number]> } {
  const out: Array<[number, number]> = [];
  const order = new RecordOrder(window, (view, _bytes, at, len) => {
    assert.equal(len, LEN);
    out.push([Number(view.getBigUint64(at, true)), view.getUint32(at + 8, true)]);
  }, 64);
  return { order, out };
}

function pushAll(order: RecordOrder, r: ReturnType<typeof ring>, n: number): void {
  for (let i = 0; i < n; i++) order.push(r.view, r.bytes, r.at(i), LEN, Number(r.view.getBigUint64(r.at(i), true)));
}

test('records leave in time order once a record a window later came; equal times keep the ring\'s order', () => {
  const { order, out } = collect(100);
  const times = [10, 30, 20, 30, 25, 200, 150, 400];
  const r = ring(times);
  pushAll(order, r, times.length);
  // 200 releases what is 100 or more before it; 400 releases up to 300.
  assert.deepEqual(out, [[10, 0], [20, 2], [25, 4], [30, 1], [30, 3], [150, 6], [200, 5]]);
  assert.equal(order.size, 1);
  order.flush();
  assert.deepEqual(out.at(-1), [400, 7]);
  assert.equal(order.late, 0);
});

test('a bound releases what nothing can precede any more; a record stamped before what left goes at once, counted', () => {
  const { order, out } = collect(1000);
  const r = ring([50, 60, 70, 40, 55]);
  pushAll(order, r, 3);
  order.releaseUpTo(60);
  assert.deepEqual(out.map(([t]) => t), [50, 60]);
  pushAll(order, { ...r, at: (i) => r.at(i + 3) }, 2);
  // 40 comes after 60 left: too late to be put back; 55 too.
  assert.deepEqual(out.map(([t]) => t), [50, 60, 40, 55]);
  assert.equal(order.late, 2);
  order.flush();
  assert.deepEqual(out.map(([t]) => t), [50, 60, 40, 55, 70]);
});

test('what waits at settle() is copied: the lent buffer may change, and the arena grows and compacts', () => {
  const { order, out } = collect(1_000_000);
  const expected: number[] = [];
  // Many reads of one reused buffer, each settled before the buffer is written again; one record in
  // seven a little early, as interrupted probes are.
  for (let round = 0; round < 50; round++) {
    const times = Array.from({ length: 20 }, (_, i) => 1000 * (round * 20 + i) - (i % 7 === 6 ? 2500 : 0));
    const r = ring(times, round * 20);
    pushAll(order, r, times.length);
    order.settle();
    r.bytes.fill(0xee);
    expected.push(...times);
  }
  order.flush();
  assert.deepEqual(out.map(([t]) => t), [...expected].sort((a, b) => a - b));
  assert.equal(new Set(out.map(([, tag]) => tag)).size, 1000, 'every record once, its own bytes');
  assert.equal(order.late, 0);
  assert.equal(order.size, 0);
});

test('records from two lent buffers (the ring and a wrapped record\'s copy) are copied each from its own', () => {
  const { order, out } = collect(1_000_000);
  const a = ring([10, 20, 40], 0);
  const b = ring([30], 100);
  order.push(a.view, a.bytes, a.at(0), LEN, 10);
  order.push(a.view, a.bytes, a.at(1), LEN, 20);
  order.push(b.view, b.bytes, b.at(0), LEN, 30);
  order.push(a.view, a.bytes, a.at(2), LEN, 40);
  order.settle();
  a.bytes.fill(0);
  b.bytes.fill(0);
  order.flush();
  assert.deepEqual(out, [[10, 0], [20, 1], [30, 100], [40, 2]]);
});

test('a record\'s time since the start, from its two 32-bit halves', () => {
  const view = new DataView(new ArrayBuffer(8));
  const start = 0x1_2345_6789_abcdn;
  view.setBigUint64(0, start + 5_000_000_123n, true);
  assert.equal(nsSince(view, 0, halves(start)), 5_000_000_123);
  view.setBigUint64(0, start - 7n, true);
  assert.equal(nsSince(view, 0, halves(start)), -7);
});
