/**
 * One journey across nodes: three network namespaces as nodes on an
 * underlay bridge, a pod behind each (src/lab/cluster.ts), pod networks over
 * VXLAN or a plain routed underlay. One `pktpath record --node` per node,
 * narrowed to its node's namespaces; a ping and a TCP exchange from the pod
 * on node1 to the pod on node2 (directly, and through a Service DNATed on
 * node1); `pktpath merge` joins the three traces. Each packet is one journey
 * from pod to pod, every hop once, in order — with one node's clock shifted
 * too, and merged in two steps (node1's trace, then node2's and node3's
 * merged); runs of one scenario compare equal, an nft drop on node2 does not.
 * (The checks are test/helpers/cluster.ts's, shared with the Geneve run in
 * the guest kernels, test/kernels/merge.test.ts.)
 */
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Lab } from '../../src/lab/lab.js';
import { CLUSTER, type Cluster, cluster, dropOnNode2, serviceDnat } from '../../src/lab/cluster.js';
import { formatTime } from '../../src/output/format.js';
import { parseJsonTime } from '../../src/output/json-read.js';
import type { JsonHeaderRecord } from '../../src/output/json.js';
import { runPktpath, waitNoPrograms } from '../helpers/tracer.js';
import { type Line, checkExchange, checkJourneys, eventsOf, exchange, isTunnel, merge, readLines, recordRun } from '../helpers/cluster.js';

const dir = mkdtempSync(join(tmpdir(), 'pktpath-cluster-e2e-'));
const file = (name: string) => join(dir, name);
const place = { file };

after(() => rmSync(dir, { recursive: true, force: true }));
afterEach(async () => {
  assert.deepEqual(await waitNoPrograms(), [], 'programs of pktpath left loaded');
});

/** A trace with every time of it moved by `ms`: that node's clock, skewed. */
function skewed(trace: string, ms: number, out: string): string {
  const shift = BigInt(ms) * 1_000_000n;
  const lines = readFileSync(trace, 'utf8').trim().split('\n').map((l) => {
    const r = JSON.parse(l) as { time?: string };
    if (typeof r.time === 'string') r.time = formatTime(parseJsonTime(r.time)! + shift);
    return JSON.stringify(r);
  });
  writeFileSync(out, lines.join('\n') + '\n');
  return out;
}

for (const underlay of ['vxlan', 'routed'] as const) {
  describe(`three nodes over ${underlay}`, () => {
    const lab = new Lab(`ppm${underlay[0]}`);
    let c: Cluster;
    let traces: string[] = [];
    let merged: Line[] = [];
    const out = (name: string) => file(`${underlay}-${name}`);

    before(() => {
      c = cluster(lab, underlay);
      serviceDnat(lab, c);
    });
    after(() => lab.cleanup());

    test('merge: each packet one journey from pod to pod, every hop once, in order; the replies likewise', async () => {
      traces = await recordRun(lab, c, place, `${underlay}-a`, exchange('pod'));
      for (const [i, t] of traces.entries()) {
        const header = readLines(t)[0] as JsonHeaderRecord;
        assert.equal(header.node, c.nodes[i]!.name);
      }
      merged = await merge(traces, out('merged-a.jsonl'));
      const header = merged[0] as JsonHeaderRecord;
      assert.equal(header.type, 'header');
      assert.deepEqual(header.merged?.nodes.map((n) => n.node).sort(), ['node1', 'node2', 'node3']);
      const events = eventsOf(merged);
      for (let i = 1; i < events.length; i++) assert.ok(events[i]!.time >= events[i - 1]!.time, 'merged records in time order');
      checkExchange(merged, c, c.nodes[1]!.pod.addr);
      // Merged in two steps: node1's trace alone, node2's and node3's together, then the two merged traces.
      await merge([traces[0]!], out('merged-1.jsonl'));
      await merge([traces[1]!, traces[2]!], out('merged-23.jsonl'));
      const again = await merge([out('merged-1.jsonl'), out('merged-23.jsonl')], out('merged-again.jsonl'));
      assert.deepEqual((again[0] as JsonHeaderRecord).merged?.nodes.map((n) => [n.node, n.source]),
        c.nodes.map((n, i) => [n.name, traces[i]]), 'each node named with the trace it was read from');
      checkExchange(again, c, c.nodes[1]!.pod.addr);
      const byRecord = (lines: Line[]) => eventsOf(lines).map((r) => `${r.node} ${r.skb} ${r.func} ${r.journey}`).sort();
      assert.deepEqual(byRecord(again), byRecord(merged), 'the journeys of the merge in one step');
      // show: one block per journey, across the nodes.
      const shown = runPktpath(['show', out('merged-a.jsonl'), '--group-by', 'skb', `host ${c.nodes[1]!.pod.addr} and icmp`]);
      assert.equal(shown.code, 0, shown.stderr);
      assert.match(shown.stdout, /consumed[^\n]*, across node1 → node2\n/);
      assert.match(shown.stdout, /consumed[^\n]*, across node2 → node1\n/);
      // assert: a node's devices, in order, the pod's by its namespace.
      const dev = c.nodes[0]!.tunnelTo(2);
      writeFileSync(out('expect.yaml'), `expect:
  - name: pod to pod across the nodes
    match: { proto: icmp, dst: ${c.nodes[1]!.pod.addr} }
    passes: [node1:eth0@${c.nodes[0]!.pod.ns}, node1:lxc0, node1:${dev}, node2:${dev}, node2:lxc0, node2:eth0@${c.nodes[1]!.pod.ns}]
  - name: not by node3
    match: { proto: icmp, dst: ${c.nodes[1]!.pod.addr} }
    avoids: [node3:eth0]
`);
      const checked = runPktpath(['assert', out('merged-a.jsonl'), '--expect', out('expect.yaml')]);
      assert.equal(checked.code, 0, checked.stdout + checked.stderr);
    });

    test('the Service DNAT on node1: one journey from the Service address to the pod behind it', async () => {
      const svc = CLUSTER.service.addr;
      const all = checkExchange(await merge(await recordRun(lab, c, place, `${underlay}-svc`, exchange('service')), out('merged-svc.jsonl')), c, svc);
      for (const [j] of [
        checkJourneys(all, c, 'there', { proto: 'icmp', saddr: c.nodes[0]!.pod.addr, daddr: svc }),
        checkJourneys(all, c, 'there', { proto: 'tcp', saddr: c.nodes[0]!.pod.addr, daddr: svc, flags: 'SYN' }),
      ]) {
        // Before the DNAT and after it, one journey: node2 sees only the pod's address.
        assert.ok(j!.some((r) => r.node === 'node1' && r.tuple?.daddr === svc));
        assert.ok(j!.filter((r) => r.node === 'node2' && !isTunnel(r)).every((r) => r.tuple?.daddr === c.nodes[1]!.pod.addr), JSON.stringify(j!.map((r) => r.tuple)));
      }
    });

    for (const ms of [37, -120]) {
      test(`node2's clock ${ms > 0 ? '+' : ''}${ms} ms: the offset recovered within the bound merge reports, every crossing in order`, async (t) => {
        const shifted = [traces[0]!, skewed(traces[1]!, ms, out(`node2${ms}.jsonl`)), traces[2]!];
        const lines = await merge(shifted, out(`merged${ms}.jsonl`));
        // node2's offset against node1's, as merge found it without the skew and with it: the two
        // pktpaths' clocks already differ a little (each maps the kernel's clock to the wall clock
        // itself), and the skew comes on top. What was added to node2's times undoes the skew,
        // within the bounds merge gives.
        const offset = (l: Line[]) => {
          const nodes = (l[0] as JsonHeaderRecord).merged!.nodes;
          const [n1, n2] = ['node1', 'node2'].map((name) => nodes.find((n) => n.node === name)!);
          assert.ok(n1!.uncertainty_ns !== null && n2!.uncertainty_ns !== null, `merge bounds node2's offset: ${JSON.stringify(nodes)}`);
          return { ns: n2!.offset_ns - n1!.offset_ns, bound: n1!.uncertainty_ns! + n2!.uncertainty_ns! };
        };
        const before = offset(merged);
        // One kernel's clock: node2's is node1's, but for how each pktpath read it.
        assert.ok(Math.abs(before.ns) <= before.bound, `node2's offset ${before.ns} ns unskewed, the bounds ${before.bound} ns`);
        const now = offset(lines);
        const recovered = now.ns - before.ns;
        assert.ok(Math.abs(recovered + ms * 1e6) <= now.bound + before.bound,
          `node2's offset ${now.ns} ns (${before.ns} ns unskewed), the skew ${ms} ms, the bounds ${now.bound} + ${before.bound} ns`);
        t.diagnostic(`${underlay}: skew ${ms} ms, node2's offset ${now.ns} ns ±${now.bound} (unskewed ${before.ns} ns ±${before.bound})`);
        checkExchange(lines, c, c.nodes[1]!.pod.addr);
      });
    }

    // Each run in a scene of its own: a TCP connection leaves conntrack entries that a later run's
    // segments would meet at tc (ct=NEW where the first saw NONE), a difference of the scene, not of the path.
    test('diff: two merged runs of a ping and a TCP exchange, each in a fresh scene, are the same; an nft drop on node2 is a difference on node2', async () => {
      const fresh = async (name: string, drop: boolean): Promise<Line[]> => {
        const scene = new Lab(`ppd${underlay[0]}`);
        try {
          const c2 = cluster(scene, underlay);
          if (drop) dropOnNode2(scene, c2);
          return await merge(await recordRun(scene, c2, place, `${underlay}-${name}`, exchange('pod')), out(`merged-${name}.jsonl`));
        } finally {
          scene.cleanup();
        }
      };
      const runs = [await fresh('p1', false), await fresh('p2', false)];
      assert.ok(runs.every((r) => eventsOf(r).some((e) => e.tuple?.proto === 'tcp')), 'the TCP exchange in both runs');
      const same = runPktpath(['diff', out('merged-p1.jsonl'), out('merged-p2.jsonl')]);
      assert.equal(same.code, 0, same.stdout + same.stderr);
      await fresh('drop', true);
      const changed = runPktpath(['diff', out('merged-p1.jsonl'), out('merged-drop.jsonl')]);
      assert.equal(changed.code, 1, changed.stdout + changed.stderr);
      assert.match(changed.stdout, /dropped: NETFILTER_DROP at [^\n]* on node2/);
    });
  });
}
