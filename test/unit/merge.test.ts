/**
 * `pktpath merge` on synthetic per-node traces: a VXLAN ping between pods on
 * two nodes and its replies, a DNAT before encapsulation, clock skews
 * injected into one node's times, packets that cannot be told apart; the
 * offsets recovered within their bound, every cross-node hop in order, one
 * journey per packet, and every line valid against the schema.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { JsonHeaderRecord, JsonRecord } from '../../src/output/json.js';
import { classify, readTraceLines } from '../../src/regress/records.js';
import { type MergeResult, mergeTraces } from '../../src/regress/merge/merge.js';
import { OffsetBounds, solveOffsets } from '../../src/regress/merge/offsets.js';
import { HeldHeap } from '../../src/regress/merge/kway.js';
import { packetIdentity } from '../../src/regress/merge/wire.js';
import { clockJson, readClockAnchor, tightestBracket } from '../../src/trace/clock.js';
import { streamLineBatches } from '../../src/regress/lines.js';
import { parseNodeOf } from '../../src/cli/merge.js';

const BASE_MS = Date.parse('2026-12-01T00:00:00Z');
const time = (ns: number) => {
  const ms = Math.floor(ns / 1e6);
  return `${new Date(BASE_MS + ms).toISOString().slice(0, 19)}.${String(ns - Math.floor(ns / 1e9) * 1e9).padStart(9, '0')}Z`;
};

type T = { saddr: string; daddr: string; sport: number; dport: number; proto: 'icmp' | 'udp' | 'tcp'; flags: string };
const icmp = (saddr: string, daddr: string): T => ({ saddr, daddr, sport: 0, dport: 0, proto: 'icmp', flags: '' });

/** IPv4 + UDP(4789) + VXLAN + inner Ethernet + IPv4 + ICMP echo: the outer IP id is `id`. */
function vxlanBytes(id: number, seq: number): string {
  const b = Buffer.alloc(14 + 20 + 8 + 8 + 14 + 20 + 8);
  b.writeUInt16BE(0x0800, 12);
  b[14] = 0x45; b.writeUInt16BE(b.length - 14, 16); b.writeUInt16BE(id, 18); b[22] = 64; b[23] = 17;
  b.set([192, 0, 2, 1], 26); b.set([192, 0, 2, 2], 30);
  b.writeUInt16BE(40000, 34); b.writeUInt16BE(4789, 36);
  b[42] = 0x08; b.writeUIntBE(42, 46, 3);
  b.writeUInt16BE(0x0800, 62);
  b[64] = 0x45; b[73] = 1; b.writeUInt16BE(seq, 90);
  return b.toString('base64');
}

interface Gen {
  a: JsonRecord[];
  b: JsonRecord[];
  /** Per packet: its departure (true time) and arrival (true time). */
  hops: Array<{ dep: number; arr: number }>;
}

function ev(node: 'a' | 'b', skb: number, trueNs: number, skew: number, func: string, iface: string, tuple: T | null, extra: Partial<JsonRecord> = {}): JsonRecord {
  return {
    v: 1, time: time(trueNs + skew), skb: `0xffff888${node === 'a' ? 'a' : 'b'}${skb.toString(16).padStart(8, '0')}`, cpu: 0, process: 'x:1', pid: 1,
    netns: 4026532000, netns_name: `${node}-${iface.startsWith('eth0') ? 'node' : 'pod'}`, mark: 0, iface: `${iface}:2`, ifindex: 2, proto: 2048,
    mtu: 1500, len: 98, tuple, func, probe: { type: func.startsWith('tc:') ? 'tc' : 'tracepoint', name: func }, drop_reason: null, caller: null, ...extra,
  };
}

/**
 * `n` pings from a pod on node a to a pod on node b, 5 ms apart (many inside
 * one window: only the outer IP id tells them apart), each answered; node b's
 * clock runs `skewNs` ahead of node a's. The wire takes 20 µs each way.
 */
function scenario(n: number, skewNs: number, opts: { packets?: boolean; dnat?: boolean; underlay?: 'vxlan' | 'geneve' | 'routed' } = {}): Gen {
  const g: Gen = { a: [], b: [], hops: [] };
  const podA = '203.0.113.1';
  const podB = '203.0.113.2';
  const svc = '198.51.100.10';
  const outerAB = { saddr: '192.0.2.1', daddr: '192.0.2.2', sport: 40000, dport: 4789, proto: 'udp' as const, flags: '' };
  const outerBA = { saddr: '192.0.2.2', daddr: '192.0.2.1', sport: 40001, dport: 4789, proto: 'udp' as const, flags: '' };
  const underlay = opts.underlay ?? 'vxlan';
  // A tunnel's identity from its captured bytes; a routed underlay's from the wire section (the inner packet is the one on the wire).
  const wire = (id: number, seq: number, outer: T, inner: T) => (underlay === 'routed'
    ? { tuple: inner, wire: { ip_id: id, ip_len: 84, l4_id: seq, inner: null } }
    : {
      tunnel: { kind: underlay, vni: 42, inner },
      ...(opts.packets !== false ? { packet: { l2: true, orig_len: 106, data: vxlanBytes(id, seq) } } : {}),
      tuple: outer,
    });
  for (let k = 0; k < n; k++) {
    const t = 1e9 + k * 5e6;
    const req = icmp(podA, podB);
    const first = opts.dnat ? icmp(podA, svc) : req;
    // Node a: the pod sends, the node routes (and DNATs), encapsulates, sends on eth0.
    g.a.push(ev('a', k, t, 0, 'net_dev_queue', 'eth0-pod', first));
    g.a.push(ev('a', k, t + 2000, 0, 'netif_receive_skb', 'veth-a', first));
    g.a.push(ev('a', k, t + 3000, 0, 'nf:ipv4:pre_routing', 'veth-a', req, opts.dnat ? { tuple_before: first } : {}));
    g.a.push(ev('a', k, t + 5000, 0, 'net_dev_queue', 'vxlan0', req));
    const w = wire(1000 + k, k, outerAB, req);
    g.a.push(ev('a', k, t + 8000, 0, 'net_dev_start_xmit', 'eth0', w.tuple, w));
    g.a.push(ev('a', k, t + 9000, 0, 'net_dev_xmit', 'eth0', w.tuple, w));
    // Node b: eth0 receives, vxlan0 decapsulates, the pod receives.
    const arr = t + 9000 + 20000;
    g.b.push(ev('b', k, arr, skewNs, 'netif_receive_skb', 'eth0', w.tuple, w));
    g.b.push(ev('b', k, arr + 3000, skewNs, 'netif_receive_skb', 'vxlan0', req));
    g.b.push(ev('b', k, arr + 6000, skewNs, 'net_dev_xmit', 'veth-b', req));
    g.b.push(ev('b', k, arr + 8000, skewNs, 'consume_skb', 'eth0-pod', req));
    g.hops.push({ dep: t + 9000, arr });
    // The reply, from b's pod back to a's.
    const r = arr + 100000;
    const rep = icmp(podB, podA);
    const rw = wire(5000 + k, k, outerBA, rep);
    g.b.push(ev('b', 1000 + k, r, skewNs, 'net_dev_queue', 'eth0-pod', rep));
    g.b.push(ev('b', 1000 + k, r + 4000, skewNs, 'net_dev_xmit', 'eth0', rw.tuple, rw));
    const rarr = r + 4000 + 20000;
    g.a.push(ev('a', 1000 + k, rarr, 0, 'tc:ingress', 'eth0', rw.tuple, rw));
    g.a.push(ev('a', 1000 + k, rarr + 2000, 0, 'netif_receive_skb', 'vxlan0', rep));
    g.a.push(ev('a', 1000 + k, rarr + 5000, 0, 'consume_skb', 'eth0-pod', rep));
    g.hops.push({ dep: r + 4000, arr: rarr });
  }
  const byTime = (x: JsonRecord, y: JsonRecord) => (x.time < y.time ? -1 : x.time > y.time ? 1 : 0);
  g.a.sort(byTime);
  g.b.sort(byTime);
  return g;
}

const header = (node: string): JsonHeaderRecord => ({
  v: 1, type: 'header', pktpath: '0.1.0', kernel: 'Linux 6.18 x86_64', node, time: time(0), argv: [], command: null,
  points: ['net_dev_xmit'], notes: [], namespaces: [{ inode: 4026532000, name: `${node}-node`, self: false }],
});

async function runMerge(g: Gen, o: { headers?: boolean; reference?: string } = {}): Promise<{ result: MergeResult; lines: string[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'pktpath-merge-'));
  try {
    const files = (['a', 'b'] as const).map((n) => {
      const f = join(dir, `${n}.jsonl`);
      const body = g[n].map((r) => JSON.stringify(r)).join('\n') + '\n';
      writeFileSync(f, (o.headers === false ? '' : JSON.stringify(header(`node-${n}`)) + '\n') + body);
      return f;
    });
    let text = '';
    const result = await mergeTraces(files.map((f, i) => ({ name: f, stream: false, lines: () => readTraceLines(f), node: o.headers === false ? `node-${'ab'[i]}` : undefined })),
      { windowMs: 2000, version: 'test', argv: ['merge'], reference: o.reference }, async (s) => { text += s; });
    return { result, lines: text.trimEnd().split('\n') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const records = (lines: string[]) => lines.slice(1).map((l) => JSON.parse(l) as JsonRecord);

for (const skewMs of [0, 37, -120]) {
  test(`merge: a clock ${skewMs} ms off is recovered within its bound, and every cross-node hop is in order`, async () => {
    const skew = skewMs * 1e6;
    const g = scenario(40, skew);
    const { result, lines } = await runMerge(g);
    const b = result.merged.nodes[1]!;
    assert.equal(result.merged.pairs, 80);
    assert.equal(result.merged.ambiguous, 0);
    assert.notEqual(b.uncertainty_ns, null);
    // What was added to b's times is minus its skew, within the bound it reports.
    assert.ok(Math.abs(b.offset_ns + skew) <= b.uncertainty_ns!, `offset ${b.offset_ns} for skew ${skew} ± ${b.uncertainty_ns}`);
    // The wire's 20 µs each way, and a µs from net_dev_start_xmit to the hand-off on node a.
    assert.ok(b.uncertainty_ns! <= 21000, `uncertainty ${b.uncertainty_ns}`);
    const out = records(lines);
    assert.equal(out.length, g.a.length + g.b.length);
    // In time order, and each packet's departure before its arrival.
    for (let i = 1; i < out.length; i++) assert.ok(out[i - 1]!.time <= out[i]!.time, `line ${i + 2} out of order`);
    const journeys = new Map<string, JsonRecord[]>();
    for (const r of out) journeys.set(r.journey!, [...(journeys.get(r.journey!) ?? []), r]);
    assert.equal(journeys.size, 80, 'one journey per packet');
    for (const [j, rs] of journeys) {
      assert.deepEqual([...new Set(rs.map((r) => r.node))], j.startsWith('node-a') ? ['node-a', 'node-b'] : ['node-b', 'node-a'], `journey ${j} crosses once`);
    }
  });
}

for (const underlay of ['geneve', 'routed'] as const) {
  test(`merge: over a ${underlay} underlay, each packet one journey across both nodes and the skew recovered`, async () => {
    const { result, lines } = await runMerge(scenario(20, -120e6, { underlay }));
    assert.equal(result.merged.pairs, 40);
    assert.equal(result.merged.ambiguous, 0);
    const b = result.merged.nodes[1]!;
    assert.ok(Math.abs(b.offset_ns - 120e6) <= b.uncertainty_ns!, `offset ${b.offset_ns} ± ${b.uncertainty_ns}`);
    const out = records(lines);
    assert.equal(new Set(out.map((r) => r.journey)).size, 40);
  });
}

test('merge: a DNAT before encapsulation keeps one journey from the pod on node a to the pod on node b', async () => {
  const { result, lines } = await runMerge(scenario(3, 37e6, { dnat: true }));
  assert.equal(result.merged.ambiguous, 0);
  const out = records(lines);
  const first = out.find((r) => r.tuple?.daddr === '198.51.100.10')!;
  const journey = out.filter((r) => r.journey === first.journey);
  assert.ok(journey.some((r) => r.tuple_before), 'the rewrite is in the journey');
  assert.ok(journey.some((r) => r.node === 'node-b' && r.iface === 'veth-b:2' && r.tuple?.daddr === '203.0.113.2'), 'so is node b\'s pod');
});

test('merge: an skb address that holds the next packet without a free seen is another journey, named <node>:<skb>#N', async () => {
  const g = scenario(3, 0, { underlay: 'routed' });
  // Node a sends every request from one skb address and no free of it is recorded (as TCP frees what it sent).
  const reused = g.a[0]!.skb;
  g.a = g.a.map((r) => (r.tuple?.saddr === '203.0.113.1' ? { ...r, skb: reused } : r));
  const { result, lines } = await runMerge(g);
  assert.equal(result.merged.pairs, 6);
  const requests = records(lines).filter((r) => r.tuple?.saddr === '203.0.113.1');
  const names = [...new Set(requests.map((r) => r.journey))];
  assert.deepEqual(names, [`node-a:${reused}`, `node-a:${reused}#2`, `node-a:${reused}#3`]);
  // Each continues on node b under its own name.
  for (const name of names) assert.ok(requests.some((r) => r.journey === name && r.node === 'node-b'), `${name} on node-b`);
});

test('merge: packets the records cannot tell apart are reported ambiguous, not paired', async () => {
  const { result, lines } = await runMerge(scenario(5, 0, { packets: false }));
  assert.ok(result.merged.ambiguous > 0);
  const out = records(lines);
  // Every arrival left unpaired keeps its own node's journey.
  for (const r of out.filter((x) => x.node === 'node-b' && x.func === 'netif_receive_skb' && x.iface === 'eth0:2').slice(1)) {
    assert.ok(r.journey!.startsWith('node-b:'), `${r.journey} was guessed`);
  }
});

test('merge: the output validates against the schema: header with `merged`, records with node and journey', async () => {
  const { lines, result } = await runMerge(scenario(4, -120e6), { headers: false, reference: 'node-b' });
  assert.equal(result.merged.reference, 'node-b');
  assert.equal(result.merged.nodes[1]!.offset_ns, 0);
  const kinds = lines.map((l) => classify(l).kind);
  assert.equal(kinds[0], 'header');
  assert.ok(kinds.slice(1).every((k) => k === 'event'));
  const h = JSON.parse(lines[0]!) as JsonHeaderRecord;
  assert.deepEqual(h.merged!.nodes.map((n) => [n.node, n.records]), [['node-a', 4 * 9], ['node-b', 4 * 6]]);
});

test('merge: offsets are bounded through chains of nodes, and pairs in one direction bound one side', () => {
  const b = new OffsetBounds(3);
  // 0 → 1 arrives 10 µs later on 1's clock; 1 → 0 arrives 30 µs later on 0's: 1 is within [-10, +30] µs of 0.
  b.add(0, 1, 0, 10_000);
  b.add(1, 0, 0, 30_000);
  // 1 → 2 only: 2's offset is bounded below alone.
  b.add(1, 2, 100_000, 50_000);
  const s = solveOffsets(b, 0);
  assert.deepEqual(s[1], { offsetNs: 10_000, uncertaintyNs: 20_000, inconsistent: false });
  assert.equal(s[2]!.uncertaintyNs, null);
  assert.equal(s[2]!.offsetNs, 40_000, "the least correction that orders 1 → 2 whatever 1's offset in its bounds");
});

test('merge: the held records leave in time, then node, then input order', () => {
  const h = new HeldHeap<{ t: number; node: number; seq: number }>();
  for (const x of [{ t: 5, node: 1, seq: 0 }, { t: 5, node: 0, seq: 3 }, { t: 1, node: 2, seq: 1 }, { t: 5, node: 0, seq: 2 }]) h.push(x);
  const out = [];
  while (h.size) out.push(h.pop()!);
  assert.deepEqual(out.map((x) => [x.t, x.node, x.seq]), [[1, 2, 1], [5, 0, 2], [5, 0, 3], [5, 1, 0]]);
});

test('merge: a packet\'s identity is read from its captured bytes, whatever its TTL', () => {
  const bytes = Buffer.from(vxlanBytes(1234, 7), 'base64');
  const a = packetIdentity(bytes, true)!;
  bytes[22] = 63;
  const b = packetIdentity(bytes, true)!;
  assert.deepEqual(a.id, { ipId: 1234, ipLen: bytes.length - 14, l4: 0 });
  assert.equal(a.hash, b.hash);
});

test('clock: the narrowest bracket of readings is the instant, half its width the uncertainty', () => {
  const a = tightestBracket([[100n, 5000n, 900n], [1000n, 5950n, 1010n], [2000n, 7000n, 2500n]]);
  assert.deepEqual(a, { monoNs: 1005n, wallNs: 5950n, uncertaintyNs: 5 });
  assert.throws(() => tightestBracket([[10n, 1n, 5n]]), /went forward/);
  const read = readClockAnchor();
  assert.ok(read.uncertaintyNs >= 0 && read.wallNs > read.monoNs);
  assert.match(clockJson(read).kernel_ns, /^\d+$/);
});

test('merge: a stream\'s lines across chunks, a line longer than the limit refused as soon as it is', async () => {
  async function* chunks(parts: string[]) {
    for (const p of parts) yield Buffer.from(p);
  }
  const got: string[] = [];
  for await (const b of streamLineBatches('fifo', chunks(['{"a":', '1}\n{"b"', ':2}\n', '{"c":3}']), 64, 'why')) got.push(...b);
  assert.deepEqual(got, ['{"a":1}', '{"b":2}', '{"c":3}']);
  await assert.rejects(async () => {
    for await (const _ of streamLineBatches('fifo', chunks(['x'.repeat(40), 'y'.repeat(40)]), 64, 'lines are short')) void _;
  }, /fifo:1: a line longer than 64 bytes; lines are short/);
});

test('merge: --node-of names files merged, with node names', () => {
  assert.deepEqual([...parseNodeOf(['a.json=node-a', 'x=y.json=node-b'], ['a.json', 'x=y.json'])], [['a.json', 'node-a'], ['x=y.json', 'node-b']]);
  assert.throws(() => parseNodeOf(['a.json=Node_A'], ['a.json']), /not a node name/);
  assert.throws(() => parseNodeOf(['b.json=node-b'], ['a.json']), /not one of the traces merged/);
  assert.throws(() => parseNodeOf(['a.json'], ['a.json']), /is not FILE=NODE/);
});

test('merge: streams (FIFOs, stdin, --follow) are read once, the offsets from their first window, the same journeys as files', async () => {
  const g = scenario(30, 37e6);
  const fromFiles = await runMerge(g);
  async function* batches(lines: string[]) {
    for (let i = 0; i < lines.length; i += 7) yield lines.slice(i, i + 7);
  }
  const text = (n: 'a' | 'b') => [JSON.stringify(header(`node-${n}`)), ...g[n].map((r) => JSON.stringify(r))];
  let out = '';
  const result = await mergeTraces((['a', 'b'] as const).map((n) => ({ name: `${n}.fifo`, stream: true, lines: () => batches(text(n)) })),
    { windowMs: 50, version: 'test', argv: ['merge'] }, async (s) => { out += s; });
  const lines = out.trimEnd().split('\n');
  const b = result.merged.nodes[1]!;
  assert.ok(Math.abs(b.offset_ns + 37e6) <= b.uncertainty_ns!, `offset ${b.offset_ns} ± ${b.uncertainty_ns}`);
  // The header counts the first window's records; every record is written all the same.
  assert.ok(result.merged.nodes[0]!.records < g.a.length);
  assert.equal(result.written, g.a.length + g.b.length);
  assert.equal(result.late, 0);
  const journeys = (ls: string[]) => records(ls).map((r) => `${r.node} ${r.skb} ${r.func} ${r.journey}`).sort();
  assert.deepEqual(journeys(lines), journeys(fromFiles.lines));
});

/** `pktpath merge` of files holding `inputs`' lines, in that order: its lines. */
async function mergeFiles(inputs: string[][], o: { reference?: string } = {}): Promise<{ result: MergeResult; lines: string[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'pktpath-merge-'));
  try {
    const files = inputs.map((lines, i) => {
      const f = join(dir, `${i}.jsonl`);
      writeFileSync(f, lines.join('\n') + '\n');
      return f;
    });
    let text = '';
    const result = await mergeTraces(files.map((f) => ({ name: f, stream: false, lines: () => readTraceLines(f) })),
      { windowMs: 2000, version: 'test', argv: ['merge'], reference: o.reference }, async (s) => { text += s; });
    return { result, lines: text.trimEnd().split('\n') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('merge of merged traces: nodes and journeys kept, journeys joined across the inputs, offsets and pairs carried', async () => {
  const g = scenario(20, 37e6);
  const text = (n: 'a' | 'b') => [JSON.stringify(header(`node-${n}`)), ...g[n].map((r) => JSON.stringify(r))];
  const direct = await runMerge(g);
  // Each node merged alone first: its journeys its own; merged again, each request and reply one journey across both.
  const [a, b] = await Promise.all([mergeFiles([text('a')]), mergeFiles([text('b')])]);
  const again = await mergeFiles([a.lines, b.lines]);
  assert.deepEqual(again.lines.slice(1), direct.lines.slice(1));
  assert.equal(again.result.merged.pairs, direct.result.merged.pairs);
  assert.deepEqual(again.result.merged.nodes.map((n) => [n.node, n.records, n.offset_ns, n.pairs]),
    direct.result.merged.nodes.map((n) => [n.node, n.records, n.offset_ns, n.pairs]));
  // A merged trace and a node's own: the same; the merged one's header carried, its journeys kept as they were.
  const ab = await mergeFiles([direct.lines]);
  assert.deepEqual(ab.lines.slice(1), direct.lines.slice(1));
  assert.equal(ab.result.merged.pairs, 40);
  const mixed = await mergeFiles([a.lines, text('b')], { reference: 'node-b' });
  assert.equal(mixed.result.merged.reference, 'node-b');
  const byRecord = (ls: string[]) => records(ls).map((r) => `${r.node} ${r.skb} ${r.func} ${r.journey}`).sort();
  assert.deepEqual(byRecord(mixed.lines), byRecord(direct.lines));
  const nb = mixed.result.merged.nodes.find((n) => n.node === 'node-b')!;
  assert.equal(nb.offset_ns, 0);
  for (const l of [...again.lines, ...mixed.lines]) assert.doesNotThrow(() => classify(l), l);
});

test('merge of merged traces: a node in two inputs, a record of a node its header does not name, --node-of on one: refused', async () => {
  const g = scenario(2, 0);
  const text = (n: 'a' | 'b') => [JSON.stringify(header(`node-${n}`)), ...g[n].map((r) => JSON.stringify(r))];
  const ab = await mergeFiles([text('a'), text('b')]);
  await assert.rejects(mergeFiles([ab.lines, text('b')]), /has node node-b, as .* has: merge takes each node's records from one input/);
  const stray = [ab.lines[0]!, ...ab.lines.slice(1).map((l) => l.replace('"node":"node-b"', '"node":"node-c"'))];
  await assert.rejects(mergeFiles([stray]), /a record of node node-c, which its header does not name/);
});

test('merge: a file that changes during the second pass (read then unchecked) is refused; one changed before it is checked again', async () => {
  const g = scenario(2, 0);
  const dir = mkdtempSync(join(tmpdir(), 'pktpath-merge-'));
  try {
    const files = (['a', 'b'] as const).map((n) => {
      const f = join(dir, `${n}.jsonl`);
      writeFileSync(f, [JSON.stringify(header(`node-${n}`)), ...g[n].map((r) => JSON.stringify(r))].join('\n') + '\n');
      return f;
    });
    // The stamps asked: before the first pass, before the second, after it.
    const merging = (stamps: string[]) => {
      let asked = 0;
      return mergeTraces(files.map((f, i) => ({ name: f, stream: false, lines: () => readTraceLines(f),
        stamp: () => (i === 1 ? stamps[Math.min(asked++, stamps.length - 1)]! : 'same') })), { windowMs: 2000, version: 'test', argv: ['merge'] }, async () => {});
    };
    await assert.rejects(merging(['x', 'x', 'y']), /b\.jsonl.*changed while it was merged \(merge reads a file twice\)/);
    assert.equal((await merging(['x', 'y', 'y'])).written, g.a.length + g.b.length);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
