/**
 * One journey across nodes: three network namespaces as nodes on an
 * underlay bridge, a pod behind each (src/lab/cluster.ts), pod networks over
 * VXLAN or a plain routed underlay. One `pktpath record --node` per node,
 * narrowed to its node's namespaces; a ping and a TCP exchange from the pod
 * on node1 to the pod on node2 (directly, and through a Service DNATed on
 * node1); `pktpath merge` joins the three traces. Each packet is one journey
 * from pod to pod, every hop once, in order — with one node's clock shifted
 * too; runs of one scenario compare equal, an nft drop on node2 does not.
 */
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Lab, run } from '../../src/lab/lab.js';
import { CLUSTER, type Cluster, type ClusterNode, type Underlay, cluster, dropOnNode2, serviceDnat, undropOnNode2 } from '../../src/lab/cluster.js';
import { FREEING_POINTS } from '../../src/decode/points.js';
import { formatTime } from '../../src/output/format.js';
import { NodePath } from '../../src/output/packets.js';
import { parseJsonTime } from '../../src/output/json-read.js';
import type { JsonHeaderRecord, JsonRecord } from '../../src/output/json.js';
import { root } from '../helpers/probe-btf.js';
import { PKTPATH, runPktpath, waitNoPrograms } from '../helpers/tracer.js';
import { validateJsonLine } from '../helpers/schema.js';

const PEER = join(root, 'dist/src/lab/peer.js');
const dir = mkdtempSync(join(tmpdir(), 'pktpath-cluster-e2e-'));
const file = (name: string) => join(dir, name);

after(() => rmSync(dir, { recursive: true, force: true }));
afterEach(async () => {
  assert.deepEqual(await waitNoPrograms(), [], 'programs of pktpath left loaded');
});

type Line = JsonRecord | (JsonHeaderRecord & { type: 'header' }) | { type: string };
const readLines = (path: string): Line[] => readFileSync(path, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Line);
const eventsOf = (lines: Line[]) => lines.filter((l): l is JsonRecord => !('type' in l) || l.type === undefined);

/**
 * One run of the scenario: a `pktpath record` per node (each watching its
 * node's namespace and its pod's, until told to stop), the traffic once all
 * three have attached; the traces, by node.
 */
async function recordRun(lab: Lab, c: Cluster, name: string, make: (lab: Lab, c: Cluster) => Promise<void>): Promise<string[]> {
  const stop = file(`${name}.stop`);
  const traces = c.nodes.map((n) => file(`${name}-${n.name}.jsonl`));
  const ready = c.nodes.map((n) => file(`${name}-${n.name}.ready`));
  const exits = c.nodes.map((n, i) => {
    const child = spawn(process.execPath, [PKTPATH, 'record', '--node', n.name, '--out', traces[i]!, '--ready-file', ready[i]!,
      '--filter-netns', n.ns, '--filter-netns', n.pod.ns, 'icmp or tcp or udp port 4789',
      // What merge pairs packets by on the wire besides the wire section --node turns on: the captured
      // bytes (told apart by their hash where keys are alike) and the tunnel's headers.
      '--output-packet', '--output-tunnel',
      '--', 'sh', '-c', `while [ ! -e ${stop} ]; do sleep 0.05; done`], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    return new Promise<{ code: number | null; stderr: string }>((resolve) => child.on('exit', (code) => resolve({ code, stderr })));
  });
  try {
    const until = Date.now() + 60_000;
    while (!ready.every((r) => existsSync(r))) {
      if (Date.now() > until) throw new Error(`pktpath record did not attach on every node in 60 s`);
      await new Promise((r) => setTimeout(r, 100));
    }
    await make(lab, c);
  } finally {
    writeFileSync(stop, '');
  }
  for (const [i, r] of (await Promise.all(exits)).entries()) assert.equal(r.code, 0, `${c.nodes[i]!.name}: ${r.stderr}`);
  rmSync(stop);
  return traces;
}

/** A ping from the pod on node1 to the pod on node2. With node2's drop it goes unanswered: the trace shows it. */
async function ping(lab: Lab, c: Cluster): Promise<void> {
  await lab.exec(c.nodes[0]!.pod.ns, ['ping', '-c', '1', '-W', '1', c.nodes[1]!.pod.addr]);
}

/** A TCP echo server in `ns` on `port`, once it listens. */
function tcpServer(lab: Lab, ns: string, port: number) {
  const child = lab.spawn(ns, [process.execPath, PEER, 'tcp-serve', String(port)]);
  return new Promise<typeof child>((resolve) => child.stdout!.once('data', () => resolve(child)));
}

/**
 * From the pod on node1 to `to` (node2's pod, or the Service on node1): a
 * ping, then a TCP exchange. One destination a run: merge follows an skb on
 * a node until a freeing point shows, and on one kernel a node's sent skb is
 * freed on another — an skb that node2 sent and a later one arriving there at
 * the same (recycled) address are one to merge, which then leaves the
 * arrival unpaired. A run's first exchange meets none of that.
 */
function exchange(to: 'pod' | 'service') {
  return async (lab: Lab, c: Cluster): Promise<void> => {
    const [addr, port] = to === 'pod' ? [c.nodes[1]!.pod.addr, CLUSTER.service.targetPort] : [CLUSTER.service.addr, CLUSTER.service.port];
    await lab.exec(c.nodes[0]!.pod.ns, ['ping', '-c', '1', '-W', '1', addr]);
    const server = await tcpServer(lab, c.nodes[1]!.pod.ns, CLUSTER.service.targetPort);
    const tcp = await lab.exec(c.nodes[0]!.pod.ns, [process.execPath, PEER, 'tcp-connect', addr, String(port), 'hello']);
    server.kill('SIGKILL');
    assert.equal(tcp.code, 0, tcp.stderr);
  };
}

async function merge(traces: string[], out: string): Promise<Line[]> {
  const r = await run(process.execPath, [PKTPATH, 'merge', ...traces, '--out', out], 60_000);
  assert.equal(r.code, 0, r.stderr);
  const text = readFileSync(out, 'utf8').trim().split('\n');
  for (const line of text) assert.equal(validateJsonLine(line), null, `merge output does not validate: ${line}`);
  return text.map((l) => JSON.parse(l) as Line);
}

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

const hopOf = (r: JsonRecord) => `${r.node} ${r.netns_name} ${r.iface} ${r.func} ${JSON.stringify(r.tuple)}`;

/**
 * The packets of a merged trace, each's records in the trace's order: its
 * journeys, a name split where pktpath's readers split it (NodePath: merge
 * follows an skb on a node until a freeing point shows, and TCP frees its
 * skbs unseen, so a later packet on the address may take the name on), and
 * TCP segments told apart by their flags as `normalize` tells them (the SYN
 * and SYN|ACK checked here are the first of theirs).
 */
function journeys(lines: Line[]): JsonRecord[][] {
  const done: JsonRecord[][] = [];
  const open = new Map<string, { records: JsonRecord[]; path: NodePath }>();
  for (const r of eventsOf(lines)) {
    assert.ok(r.node !== undefined && r.journey !== undefined, `a merged record without node or journey: ${JSON.stringify(r)}`);
    let j = open.get(r.journey);
    const flags = j?.records.find((x) => x.tuple?.proto === 'tcp')?.tuple?.flags;
    if (j && (j.path.another(r.node, r.func) || (r.tuple?.proto === 'tcp' && flags !== undefined && r.tuple.flags !== flags))) {
      done.push(j.records);
      j = undefined;
    }
    if (!j) open.set(r.journey, (j = { records: [], path: new NodePath(r.node) }));
    j.records.push(r);
    if (j.path.note({ func: r.func, dropReason: r.drop_reason, caller: r.caller, node: r.node }) === 'end') {
      done.push(j.records);
      open.delete(r.journey);
    }
  }
  return [...done, ...[...open.values()].map((j) => j.records)];
}

const isTunnel = (r: JsonRecord) => r.tuple?.proto === 'udp' && r.tuple.dport === CLUSTER.vxlanPort;

/**
 * The `count` journeys whose first record is in the sending pod with
 * `saddr → daddr` (and TCP `flags`), each checked: pod, its node, the other
 * node, the other pod — every stretch once, in that order; no hop twice;
 * time never going back; on a tunnel, encapsulated on the sending node's
 * underlay device and decapsulated on the receiving node's. Returns them.
 */
function checkJourneys(all: JsonRecord[][], c: Cluster, underlay: Underlay, dir: 'there' | 'back', match: { proto: string; saddr: string; daddr: string; flags?: string }, count = 1): JsonRecord[][] {
  const [src, dst] = dir === 'there' ? [c.nodes[0]!, c.nodes[1]!] : [c.nodes[1]!, c.nodes[0]!];
  // A journey of frees alone (an skb the kernel made and freed unsent, a copy) is no packet's path.
  const found = all.filter((j) => j.some((r) => !FREEING_POINTS.has(r.func))).filter((j) => {
    const t = j[0]!.tuple;
    return j[0]!.netns_name === src.pod.ns && t !== null && t.proto === match.proto && t.saddr === match.saddr && t.daddr === match.daddr &&
      (match.flags === undefined || t.flags === match.flags);
  });
  const what = `${match.proto} ${match.saddr} > ${match.daddr}${match.flags ? ` ${match.flags}` : ''} (${dir})`;
  assert.equal(found.length, count, `${what}: ${found.length} journeys start in ${src.pod.ns}, not ${count}`);
  for (const j of found) checkJourney(j, src, dst, underlay, match.proto, what);
  return found;
}

function checkJourney(j: JsonRecord[], src: ClusterNode, dst: ClusterNode, underlay: Underlay, proto: string, what: string): void {
  const path = j.map((r) => `${r.node} ${r.netns_name} ${r.iface} ${r.func}`);
  const said = `${what}:\n  ${path.join('\n  ')}`;
  // The places it reached, in the order it first reached them. (A veth hands a packet to its peer inside
  // its transmit: the peer's receiving points come before the sender's last sending point.)
  const firsts = (keys: string[]) => [...new Set(keys)];
  assert.deepEqual(firsts(j.map((r) => `${r.node} ${r.netns_name}`)),
    [`${src.name} ${src.pod.ns}`, `${src.name} ${src.ns}`, `${dst.name} ${dst.ns}`, `${dst.name} ${dst.pod.ns}`], said);
  // Every hop once (a point of a device of a namespace of a node, with its tuple: a tunnel's two headers are two).
  const hops = j.map(hopOf);
  assert.equal(new Set(hops).size, hops.length, `a hop twice in ${said}`);
  for (let i = 1; i < j.length; i++) assert.ok(j[i]!.time >= j[i - 1]!.time, `time goes back at ${path[i]} in ${said}`);
  // The devices the packet crossed, in order, on each node.
  const devices = (node: string, ns: string) => firsts(j.filter((r) => r.node === node && r.netns_name === ns).map((r) => r.iface.replace(/:\d+$/, '')));
  const dev = underlay === 'routed' ? ['eth0'] : ['vx0', 'eth0'];
  assert.deepEqual(devices(src.name, src.ns), ['lxc0', ...dev], said);
  assert.deepEqual(devices(dst.name, dst.ns), [...[...dev].reverse(), 'lxc0'], said);
  // Across the wire: nothing on the receiving node before the sender handed the packet to its underlay device.
  const handed = j.filter((r) => r.node === src.name && r.iface.startsWith('eth0:') && r.func === 'net_dev_start_xmit').at(-1);
  assert.ok(handed, `not handed to ${src.name}'s eth0: ${said}`);
  const arrived = j.find((r) => r.node === dst.name)!;
  assert.ok(arrived.time >= handed.time, `${dst.name} at ${arrived.time}, before ${src.name} sent it at ${handed.time}: ${said}`);
  if (underlay !== 'routed') {
    // Encapsulated on the sender's underlay device, decapsulated behind the receiver's.
    const wire = j.filter(isTunnel);
    assert.ok(wire.some((r) => r.node === src.name && r.iface.startsWith('eth0:') && r.tuple!.saddr === src.underlay && r.tuple!.daddr === dst.underlay), said);
    assert.ok(wire.some((r) => r.node === dst.name && r.iface.startsWith('eth0:')), said);
    assert.ok(j.some((r) => r.node === dst.name && r.iface.startsWith('vx0:') && r.tuple?.proto === proto), said);
  }
}

/**
 * The ping and the TCP opening to `daddr` (node2's pod, or the Service),
 * there and back: each one journey. A reply from behind the Service is turned
 * back on node1, where the sender sees it come from the Service address.
 */
function checkExchange(lines: Line[], c: Cluster, underlay: Underlay, daddr: string): JsonRecord[][] {
  const all = journeys(lines);
  const a = c.nodes[0]!.pod.addr;
  const b = c.nodes[1]!.pod.addr;
  checkJourneys(all, c, underlay, 'there', { proto: 'icmp', saddr: a, daddr });
  checkJourneys(all, c, underlay, 'there', { proto: 'tcp', saddr: a, daddr, flags: 'SYN' });
  for (const [proto, flags] of [['icmp', undefined], ['tcp', 'SYN|ACK']] as const) {
    const [back] = checkJourneys(all, c, underlay, 'back', { proto, saddr: b, daddr: a, ...(flags ? { flags } : {}) });
    const seenAs = back!.filter((r) => r.node === 'node1' && r.netns_name === c.nodes[0]!.pod.ns).at(-1)?.tuple?.saddr;
    assert.equal(seenAs, daddr, `${proto} reply as the sender sees it`);
  }
  return all;
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
      traces = await recordRun(lab, c, `${underlay}-a`, exchange('pod'));
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
      checkExchange(merged, c, underlay, c.nodes[1]!.pod.addr);
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
      const all = checkExchange(await merge(await recordRun(lab, c, `${underlay}-svc`, exchange('service')), out('merged-svc.jsonl')), c, underlay, svc);
      for (const [j] of [
        checkJourneys(all, c, underlay, 'there', { proto: 'icmp', saddr: c.nodes[0]!.pod.addr, daddr: svc }),
        checkJourneys(all, c, underlay, 'there', { proto: 'tcp', saddr: c.nodes[0]!.pod.addr, daddr: svc, flags: 'SYN' }),
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
        checkExchange(lines, c, underlay, c.nodes[1]!.pod.addr);
      });
    }

    // A ping alone: the TCP connection of one run leaves conntrack entries that the next run's
    // segments meet at tc (ct=NEW where the first saw NONE), a difference of the scene, not of the path.
    test('diff: two merged runs of a ping are the same; an nft drop on node2 is a difference on node2', async () => {
      const runs = [];
      for (const name of ['p1', 'p2']) runs.push(await merge(await recordRun(lab, c, `${underlay}-${name}`, ping), out(`merged-${name}.jsonl`)));
      assert.ok(runs.every((r) => eventsOf(r).length > 0));
      const same = runPktpath(['diff', out('merged-p1.jsonl'), out('merged-p2.jsonl')]);
      assert.equal(same.code, 0, same.stdout + same.stderr);
      dropOnNode2(lab, c);
      try {
        await merge(await recordRun(lab, c, `${underlay}-drop`, ping), out('merged-drop.jsonl'));
      } finally {
        undropOnNode2(lab, c);
      }
      const changed = runPktpath(['diff', out('merged-p1.jsonl'), out('merged-drop.jsonl')]);
      assert.equal(changed.code, 1, changed.stdout + changed.stderr);
      assert.match(changed.stdout, /dropped: NETFILTER_DROP at [^\n]* on node2/);
    });
  });
}
