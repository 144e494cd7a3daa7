/**
 * Aligning paths and hops: the pairs the table of common-subsequence lengths
 * gave, kept where it fits, and `diff` near linear past it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TABLE_CELLS, align } from '../../src/regress/align.js';
import { diffTraces } from '../../src/regress/diff.js';
import type { NormalizedHop, NormalizedPacket } from '../../src/regress/journeys.js';
import type { Normalized } from '../../src/regress/normalize.js';

/** The table and its walk as diff had them: the pairs `align` must still give where the table fits. */
function tablePairs(ka: readonly string[], kb: readonly string[]): Array<[number, number]> {
  const n = ka.length;
  const m = kb.length;
  const len = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      len[i]![j] = ka[i] === kb[j] ? len[i + 1]![j + 1]! + 1 : Math.max(len[i + 1]![j]!, len[i]![j + 1]!);
    }
  }
  const pairs: Array<[number, number]> = [];
  for (let i = 0, j = 0; i < n && j < m;) {
    if (ka[i] === kb[j]) pairs.push([i++, j++]);
    else if (len[i + 1]![j]! >= len[i]![j + 1]!) i++;
    else j++;
  }
  return pairs;
}

/** A small deterministic generator (xorshift), so a failure repeats. */
function random(seed: number): (below: number) => number {
  let s = seed >>> 0 || 1;
  return (below) => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s % below;
  };
}

test('where the table fits, align gives the pairs it gave: ties, repeats, keys on one side only', () => {
  const next = random(7);
  for (let round = 0; round < 3000; round++) {
    const keys = 1 + next(6);
    const a = Array.from({ length: next(40) }, () => String.fromCharCode(97 + next(keys)));
    const b = Array.from({ length: next(40) }, () => String.fromCharCode(97 + next(keys + 2)));
    assert.deepEqual(align(a, b, (x) => x), tablePairs(a, b), `${a.join('')} / ${b.join('')}`);
  }
  // The cases where a walk could go either way.
  for (const [a, b] of [['zy', 'yy'], ['yy', 'qy'], ['xaay', 'ayaa'], ['', 'ab'], ['abc', '']]) {
    assert.deepEqual(align([...a!], [...b!], (x) => x), tablePairs([...a!], [...b!]), `${a} / ${b}`);
  }
});

test('past the table: a moved element costs two changes, not the run it jumped over; pairs stay in order', () => {
  const n = 3000;
  assert.ok(n * n > TABLE_CELLS);
  const a = ['x', ...Array.from({ length: n }, (_, i) => `p${i}`)];
  const b = [...Array.from({ length: n }, (_, i) => `p${i}`), 'x'];
  const pairs = align(a, b, (s) => s);
  assert.equal(pairs.length, n);
  assert.deepEqual(pairs[0], [1, 0]);
  // Repeated keys only (no anchors): each element with the first of its key ahead.
  const same = align(Array.from({ length: n }, () => 'k'), Array.from({ length: n + 5 }, () => 'k'), (s) => s);
  assert.equal(same.length, n);
  for (let i = 1; i < pairs.length; i++) assert.ok(pairs[i]![0] > pairs[i - 1]![0] && pairs[i]![1] > pairs[i - 1]![1]);
});

const FLOW = 'udp 192.0.2.1:$p1 > 192.0.2.2:5201';

/** One flow of `n` distinct paths; `changed`: each passes one point more, or its device is in another namespace. */
function flowOfPaths(n: number, changed: boolean): Normalized {
  const packets: NormalizedPacket[] = [];
  for (let i = 0; i < n; i++) {
    const hops: NormalizedHop[] = [
      { at: 'nf:ipv4:local_out', netns: 'a', iface: '' },
      { at: 'net_dev_queue', netns: changed && i % 2 === 0 ? 'c' : 'a', iface: `veth-${i}` },
      ...(changed && i % 2 === 1 ? [{ at: 'nf:ipv4:forward', netns: 'r', iface: 'br0' }] : []),
      { at: 'nf:ipv4:local_in', netns: 'b', iface: 'veth-b', ct: 'NEW' },
    ];
    packets.push({ v: 1, type: 'packet', flow: FLOW, dir: '>', flags: '', tuple: FLOW.slice(4), hops, end: { how: 'ended' }, repeat: 1 });
  }
  return { header: { v: 1, type: 'normalized', kernel: null, command: null, vars: [], packets: n, lost: 0 }, packets };
}

// How long it takes is bench/regress.ts's to say, not a test's.
test('diff of one flow of 30,000 distinct paths a side, each changed: every change named', () => {
  const n = 30_000;
  const r = diffTraces(flowOfPaths(n, false), flowOfPaths(n, true));
  // Each path paired with its changed self: a hop added (odd), a hop removed and one added (even).
  const count = (kind: string) => r.changes.filter((c) => c.kind === kind).length;
  assert.equal(count('hop-added'), n);
  assert.equal(count('hop-removed'), n / 2);
  assert.equal(r.changes.length, n * 1.5);
});
