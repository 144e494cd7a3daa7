import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventCounts } from '../../src/trace/counts.js';
import type { TraceEvent } from '../../src/output/event.js';

test('events by point: what a plain count gives, read at any time, names sharing a slot included', () => {
  // Same length and last letter: one slot, taken in turn.
  const funcs = ['net_dev_queue', 'net_dev_xmit', 'netif_rx', 'tc:ingress', 'tc:egress', 'kfree_skb', 'consume_skb',
    'nf:ipv4:pre_routing', 'aaaa', 'bbba', 'ccca', '', 'x'];
  const counts = new EventCounts();
  const expected = new Map<string, number>();
  let seed = 7;
  for (let i = 0; i < 5000; i++) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    // A fresh string each time for some: equal names count together whatever object they are.
    const f = seed % 3 === 0 ? [...funcs[seed % funcs.length]!].join('') : funcs[seed % funcs.length]!;
    counts.count({ func: f, dropReason: null, caller: null } as unknown as TraceEvent);
    expected.set(f, (expected.get(f) ?? 0) + 1);
    if (i === 2500) assert.equal([...counts.perPoint.values()].reduce((a, b) => a + b, 0), 2501);
  }
  assert.equal(counts.events, 5000);
  assert.deepEqual(new Map([...counts.summary().perPoint].sort()), new Map([...expected].sort()));
  // Reading twice changes nothing.
  assert.deepEqual(new Map([...counts.perPoint].sort()), new Map([...expected].sort()));
});
