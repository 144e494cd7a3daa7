/**
 * Two pktpath processes tracing the same ping place each record at the same
 * wall-clock time: each maps the kernel's clock to the wall clock from the
 * tightest bracket of readings (src/trace/clock.ts), so the same skb at the
 * same point is stamped alike by both, within 2 µs (before, each read the
 * wall clock at its own start and they disagreed by tens of µs).
 */
import { after, afterEach, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Lab, twoHosts } from '../../src/lab/lab.js';
import { parseJsonTime } from '../../src/output/json-read.js';
import { type JsonEvent, startTracer, waitNoPrograms } from '../helpers/tracer.js';

const lab = new Lab();
let A = '';
let B = '';

before(() => {
  ({ a: A, b: B } = twoHosts(lab));
});
after(() => lab.cleanup());
afterEach(async () => {
  assert.deepEqual(await waitNoPrograms(), [], 'programs of pktpath left loaded');
});

/** The same observation in both traces: skb, point, device, namespace, and how many times it was seen before. */
function byObservation(events: JsonEvent[]): Map<string, bigint> {
  const out = new Map<string, bigint>();
  // Tracepoints only: both processes' programs run in the same call, one after the other. Each has its own tc and
  // netfilter programs, which the kernel runs at their own places in its chains.
  for (const e of events.filter((x) => x.probe.type === 'tracepoint')) {
    const base = `${e.skb} ${e.func} ${e.netns}/${e.ifindex} ${JSON.stringify(e.tuple)}`;
    let n = 0;
    while (out.has(`${base} #${n}`)) n++;
    out.set(`${base} #${n}`, parseJsonTime(e.time)!);
  }
  return out;
}

test('two pktpath processes stamp the same skb at the same point within 2 µs', async () => {
  const args = ['--filter-netns', A, '--filter-netns', B, '--filter-proto', 'icmp'];
  const one = await startTracer(args);
  const two = await startTracer(args);
  const ping = await lab.exec(A, ['ping', '-c', '3', '-i', '0.2', '192.0.2.2'], 10_000);
  assert.equal(ping.code, 0, ping.stdout + ping.stderr);
  const [r1, r2] = await Promise.all([one.stop(), two.stop()]);
  assert.equal(r1.code, 0, r1.stderr);
  assert.equal(r2.code, 0, r2.stderr);
  const t1 = byObservation(r1.events);
  const t2 = byObservation(r2.events);
  const both = [...t1.keys()].filter((k) => t2.has(k));
  assert.ok(both.length >= 12, `only ${both.length} observations in both traces (${t1.size}, ${t2.size})`);
  // Each record of one is the other's plus the time the first program ran (up to a few µs in a VM, more when an
  // interrupt comes between): the middle of the differences is the two clock mappings' disagreement, and that
  // time, which is small and the same for every record.
  const apart = both.map((k) => Number(t1.get(k)! - t2.get(k)!)).sort((a, b) => Math.abs(a) - Math.abs(b));
  const median = apart[Math.floor(apart.length / 2)]!;
  assert.ok(Math.abs(median) <= 2000, `the same observations are ${median} ns apart (median of ${apart.length}; closest ${apart[0]} ns)`);
});
