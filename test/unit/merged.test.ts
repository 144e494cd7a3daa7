/**
 * Merged traces (`pktpath merge`'s output) downstream, on a trace written by
 * hand after merge's contract: records carry `node`, a journey across nodes
 * shares `journey`, the header a `merged` object. A ping from a pod on node1
 * to a pod on node2 over VXLAN and its reply, and a packet of node3's own;
 * node1's and node2's namespaces share an inode (two kernels may). Then the
 * same with node2 dropping the request in its forward hook.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { JsonRecord } from '../../src/output/json.js';
import { eventFromJson } from '../../src/output/json-read.js';
import type { TraceEvent } from '../../src/output/event.js';
import { TextSink } from '../../src/output/line-sinks.js';
import { JourneySink } from '../../src/output/journey.js';
import { ConnectionSink } from '../../src/output/connections.js';
import { PcapngEncoder, buildPcapng } from '../../src/output/pcapng.js';
import { BatchedWriter } from '../../src/output/stream.js';
import { normalizeFile, writeNormalizedText } from '../../src/regress/normalize.js';
import { diffTraces, formatDiff } from '../../src/regress/diff.js';
import { assertTrace } from '../../src/regress/assert.js';
import { parseExpectations } from '../../src/regress/expect.js';
import { explainFile } from '../../src/regress/explain/file.js';
import { NO_VARS } from '../../src/regress/vars.js';
import { type Journey, JourneyBuilder } from '../../src/regress/journeys.js';
import { Collect } from '../helpers/fixtures.js';
import { validateJsonLine } from '../helpers/schema.js';

const UNDERLAY_NS = 4026532100;
const place = {
  pod1: { netns: 4026532201, netns_name: 'c-node1-pod', iface: 'eth0:2', ifindex: 2, pod: { namespace: 'default', name: 'client-0', uid: 'u-1' } },
  lxc1: { netns: UNDERLAY_NS, netns_name: 'c-node1', iface: 'lxc0:3', ifindex: 3 },
  vx1: { netns: UNDERLAY_NS, netns_name: 'c-node1', iface: 'vx0:4', ifindex: 4 },
  eth1: { netns: UNDERLAY_NS, netns_name: 'c-node1', iface: 'eth0:2', ifindex: 2 },
  eth2: { netns: UNDERLAY_NS, netns_name: 'c-node2', iface: 'eth0:2', ifindex: 2 },
  vx2: { netns: UNDERLAY_NS, netns_name: 'c-node2', iface: 'vx0:4', ifindex: 4 },
  lxc2: { netns: UNDERLAY_NS, netns_name: 'c-node2', iface: 'lxc0:3', ifindex: 3 },
  pod2: { netns: 4026532202, netns_name: 'c-node2-pod', iface: 'eth0:2', ifindex: 2, pod: { namespace: 'default', name: 'web-0', uid: 'u-2' } },
  eth3: { netns: UNDERLAY_NS, netns_name: 'c-node3', iface: 'eth0:2', ifindex: 2 },
};
type Place = (typeof place)[keyof typeof place];

const POD1 = '198.51.100.18';
const POD2 = '198.51.100.34';
const icmp = (saddr: string, daddr: string) => ({ saddr, daddr, sport: 0, dport: 0, proto: 'icmp' as const, flags: '' });
const vxlan = (saddr: string, daddr: string, sport: number) => ({ saddr, daddr, sport, dport: 4789, proto: 'udp' as const, flags: '' });
const REQUEST = icmp(POD1, POD2);
const REPLY = icmp(POD2, POD1);
const OUT_1TO2 = vxlan('192.0.2.11', '192.0.2.12', 51000);
const OUT_2TO1 = vxlan('192.0.2.12', '192.0.2.11', 52000);

const S1 = '0xffff888100000100';
const S2 = '0xffff888200000100';
/** Journeys as merge names them: after their first skb, `NODE:SKB`, on every node they cross. */
const J_REQUEST = `node1:${S1}`;
const J_REPLY = `node2:${S2}`;

const ctOf = (id: string, dir: 'orig' | 'reply', state: 'NEW' | 'ESTABLISHED') => ({
  source: 'nfct' as const, found: true, state, dir, id, status: ['CONFIRMED'], zone: 0, mark: 0, error: 0,
  orig: { saddr: POD1, daddr: POD2, sport: 0, dport: 0, proto: 'icmp' as const },
  reply: { saddr: POD2, daddr: POD1, sport: 0, dport: 0, proto: 'icmp' as const },
});
const CT1 = '0xffff888100aa0000';
const CT2 = '0xffff888200bb0000';

let clock = 0;
function rec(node: string, journey: string, skb: string, at: Place, func: string, tuple: JsonRecord['tuple'], extra: Partial<JsonRecord> = {}): JsonRecord {
  clock += 1000;
  const { pod, ...where } = at as Place & { pod?: JsonRecord['pod'] };
  return {
    v: 1, time: `2026-12-07T10:00:00.${String(clock).padStart(9, '0')}Z`, skb, cpu: 0, process: 'ping:77', pid: 77, mark: 0,
    ...where, ...(pod ? { pod } : {}), proto: 2048, mtu: 1500, len: 84, tuple, func,
    probe: { type: func.startsWith('nf:') ? 'netfilter' : 'tracepoint', name: func }, drop_reason: null, caller: null,
    node, journey, ...extra,
  } as JsonRecord;
}

const HEADER = {
  v: 1, type: 'header', pktpath: '0.1.0', kernel: 'Linux 6.18.0 x86_64', time: '2026-12-07T10:00:00.000000000Z',
  argv: ['merge', 'node1.jsonl', 'node2.jsonl', 'node3.jsonl'], command: null, points: [], notes: [], namespaces: [],
  merged: {
    nodes: ['node1', 'node2', 'node3'].map((node) => ({ node, source: `${node}.jsonl`, records: 10, offset_ns: 0, uncertainty_ns: 20000, pairs: 2 })),
    reference: 'node1', window_ms: 1000, pairs: 2, ambiguous: 0,
  },
};

/** The merged trace: the request (dropped in node2's forward hook with `drop`), its reply unless dropped, node3's own packet. */
function mergedTrace(drop = false): object[] {
  clock = 0;
  const r: JsonRecord[] = [
    rec('node1', J_REQUEST, S1, place.pod1, 'net_dev_queue', REQUEST),
    rec('node1', J_REQUEST, S1, place.lxc1, 'netif_receive_skb', REQUEST),
    rec('node1', J_REQUEST, S1, place.lxc1, 'nf:ipv4:pre_routing', REQUEST, { ct: ctOf(CT1, 'orig', 'NEW') }),
    rec('node1', J_REQUEST, S1, place.vx1, 'nf:ipv4:post_routing', REQUEST),
    rec('node1', J_REQUEST, S1, place.vx1, 'net_dev_queue', REQUEST),
    rec('node1', J_REQUEST, S1, place.eth1, 'net_dev_queue', OUT_1TO2, { tuple_before: REQUEST }),
    rec('node1', J_REQUEST, S1, place.eth1, 'net_dev_start_xmit', OUT_1TO2),
    rec('node2', J_REQUEST, S2, place.eth2, 'netif_receive_skb', OUT_1TO2),
    // Sent: node1's transmit ends and it frees its skb after node2 has it; the packet goes on at node2.
    rec('node1', J_REQUEST, S1, place.eth1, 'net_dev_xmit', OUT_1TO2),
    rec('node1', J_REQUEST, S1, place.eth1, 'consume_skb', OUT_1TO2),
    rec('node2', J_REQUEST, S2, place.vx2, 'netif_receive_skb', REQUEST, { tuple_before: OUT_1TO2 }),
    rec('node2', J_REQUEST, S2, place.vx2, 'nf:ipv4:pre_routing', REQUEST, { ct: ctOf(CT2, 'orig', 'NEW') }),
  ];
  if (drop) {
    r.push(rec('node2', J_REQUEST, S2, place.vx2, 'kfree_skb', REQUEST, { drop_reason: 'NETFILTER_DROP', caller: 'nf_hook_slow+0x9e/0x150' }));
  } else {
    r.push(
      rec('node2', J_REQUEST, S2, place.vx2, 'nf:ipv4:forward', REQUEST),
      rec('node2', J_REQUEST, S2, place.lxc2, 'net_dev_queue', REQUEST),
      rec('node2', J_REQUEST, S2, place.pod2, 'netif_receive_skb', REQUEST),
      rec('node2', J_REQUEST, S2, place.pod2, 'consume_skb', REQUEST),
      rec('node2', J_REPLY, S2, place.pod2, 'net_dev_queue', REPLY),
      rec('node2', J_REPLY, S2, place.lxc2, 'nf:ipv4:pre_routing', REPLY, { ct: ctOf(CT2, 'reply', 'ESTABLISHED') }),
      rec('node2', J_REPLY, S2, place.eth2, 'net_dev_queue', OUT_2TO1, { tuple_before: REPLY }),
      rec('node1', J_REPLY, S1, place.eth1, 'netif_receive_skb', OUT_2TO1),
      rec('node1', J_REPLY, S1, place.vx1, 'nf:ipv4:pre_routing', REPLY, { tuple_before: OUT_2TO1, ct: ctOf(CT1, 'reply', 'ESTABLISHED') }),
      rec('node1', J_REPLY, S1, place.pod1, 'consume_skb', REPLY),
    );
  }
  // node3's own: never paired, on an address node1's skb has too.
  r.push(
    rec('node3', `node3:${S1}`, S1, place.eth3, 'net_dev_queue', vxlan('192.0.2.13', '192.0.2.11', 53000)),
    rec('node3', `node3:${S1}`, S1, place.eth3, 'consume_skb', vxlan('192.0.2.13', '192.0.2.11', 53000)),
  );
  // node1's next packet on the request's address: a journey of the same name, another packet.
  r.push(
    rec('node1', J_REQUEST, S1, place.pod1, 'net_dev_queue', icmp(POD1, '192.0.2.11')),
    rec('node1', J_REQUEST, S1, place.lxc1, 'netif_receive_skb', icmp(POD1, '192.0.2.11')),
    rec('node1', J_REQUEST, S1, place.lxc1, 'consume_skb', icmp(POD1, '192.0.2.11')),
  );
  return [HEADER, ...r];
}

function writeTrace(records: object[], name = 'merged.jsonl'): { file: string; done: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'pktpath-merged-'));
  const file = join(dir, name);
  writeFileSync(file, records.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return { file, done: () => rmSync(dir, { recursive: true, force: true }) };
}

const eventsOf = (records: object[]): TraceEvent[] =>
  records.filter((r) => (r as { type?: string }).type === undefined).map((r) => eventFromJson(r as JsonRecord, 0n));

test('the hand-written merged trace is what the schema allows', () => {
  for (const r of [...mergedTrace(), ...mergedTrace(true)]) assert.equal(validateJsonLine(JSON.stringify(r)), null, JSON.stringify(r));
  const bad = { ...(mergedTrace()[1] as object), node: '' };
  assert.notEqual(validateJsonLine(JSON.stringify(bad)), null);
});

test('show: a NODE column when asked (merged traces); JSON written back keeps node and journey', async () => {
  const out = new Collect();
  const sink = new TextSink(new BatchedWriter(out), { header: true, tuple: true, meta: false, stack: false, caller: false, tcpFlags: false, timestamp: 'none', color: false, node: true });
  const events = eventsOf(mergedTrace());
  for (const e of events) sink.event(e);
  await sink.close();
  const lines = out.text.trim().split('\n');
  assert.match(lines[0]!, /^NODE +SKB +CPU/);
  assert.match(lines[1]!, /^node1 +0xffff888100000100 /);
  assert.ok(lines.some((l) => /^node2 +0xffff888200000100 .*netif_receive_skb/.test(l)));
  assert.equal(lines.length, events.length + 1);
  const { toJsonRecord } = await import('../../src/output/json.js');
  const back = toJsonRecord(events[0]!, { stack: false });
  assert.equal(back.node, 'node1');
  assert.equal(back.journey, J_REQUEST);
});

test('--group-by skb: one block per journey across nodes, with the encapsulation and the decapsulation; node3\'s own apart', async () => {
  const out = new Collect();
  const sink = new JourneySink(new BatchedWriter(out), { color: false, tcpFlags: false, stack: false, timestamp: 'none', node: true, every: () => () => {} });
  for (const e of eventsOf(mergedTrace())) sink.event(e);
  await sink.close();
  const blocks = out.text.trim().split(/\n(?=0x)/);
  assert.equal(blocks.length, 4, out.text);
  const request = blocks.find((b) => b.startsWith(`${S1} ${POD1}->${POD2}(icmp)`))!;
  assert.ok(request, out.text);
  assert.match(request.split('\n')[0]!, /16 hops in .*, consumed, across node1 → node2$/);
  assert.match(request, /tuple: 198\.51\.100\.18->198\.51\.100\.34\(icmp\) ⇒ 192\.0\.2\.11:51000->192\.0\.2\.12:4789\(udp\)/);
  assert.match(request, /tuple: 192\.0\.2\.11:51000->192\.0\.2\.12:4789\(udp\) ⇒ 198\.51\.100\.18->198\.51\.100\.34\(icmp\)/);
  const hops = request.split('\n').filter((l) => /^ {2}\+/.test(l));
  assert.deepEqual(hops.map((l) => l.trim().split(/\s+/)[1]), [...Array(7).fill('node1'), 'node2', 'node1', 'node1', ...Array(6).fill('node2')]);
  const reply = blocks.find((b) => b.startsWith(`${S2} ${POD2}->${POD1}(icmp)`))!;
  assert.match(reply.split('\n')[0]!, /6 hops .* across node2 → node1$/);
  assert.ok(blocks.some((b) => b.startsWith(`${S1} 192.0.2.13:53000->192.0.2.11:4789(udp)`) && /2 hops/.test(b)));
  // Freed on node1 and not sent on: consumed there, a block of its own.
  assert.ok(blocks.some((b) => b.startsWith(`${S1} ${POD1}->192.0.2.11(icmp)`) && /3 hops in .*, consumed$/m.test(b.split('\n')[0]!)), out.text);
});

test('--group-by ct: the request and its reply are one connection, though each node has an entry of its own', async () => {
  const out = new Collect();
  const sink = new ConnectionSink(new BatchedWriter(out), { color: false, every: () => () => {} });
  for (const e of eventsOf(mergedTrace())) sink.event(e);
  await sink.close();
  const conns = out.text.trim().split('\n').filter((l) => l.startsWith('connection '));
  assert.equal(conns.length, 3, out.text); // the ping's, node3's packet and node1's last (no conntrack)
  assert.match(conns[0]!, /icmp 198\.51\.100\.18:0 ⇄ 198\.51\.100\.34:0 {2}2 packets/);
  assert.match(out.text, /→ .* node1: net_dev_queue → .* → node2: netif_receive_skb → /);
  assert.match(out.text, /← .* node2: net_dev_queue → .* → node1: netif_receive_skb → /);
});

test('pcapng: one interface per node and device, though two nodes\' namespaces share an inode', () => {
  const data = new Uint8Array(Buffer.from('4500001c0001000040010000c6336412c6336422', 'hex'));
  const withBytes = eventsOf(mergedTrace()).filter((e) => e.ifname === 'eth0' && e.netns === UNDERLAY_NS)
    .map((e) => ({ ...e, packet: { data, origLen: data.length, l2: false } }));
  const enc = new PcapngEncoder({ snaplen: 128 });
  for (const e of withBytes) enc.encodeInto(e, Buffer.alloc(enc.maxEncodedSize(e)), 0);
  assert.equal(enc.interfaceCount, 3); // eth0 of node1, node2, node3
  const file = buildPcapng(withBytes, { snaplen: 128 }).toString('latin1');
  for (const n of ['node1', 'node2', 'node3']) assert.ok(file.includes(`${n}:eth0@c-${n}`), n);
  assert.ok(file.includes(`net_dev_queue skb=${S1} netns=c-node1 node=node1`));
});

test('normalize: hops name their node, as placeholders where names vary; diff names the node of a difference', async () => {
  const a = writeTrace(mergedTrace());
  const b = writeTrace(mergedTrace(true));
  try {
    const vars = { ...NO_VARS, ephemeralPorts: true };
    const na = await normalizeFile(a.file, { vars, keepNeighbour: false }, []);
    const request = na.packets.find((p) => p.tuple === `${POD1} > ${POD2}`)!;
    // The frees are no hops: node1's of the sent skb, node2's at the pod.
    assert.equal(request.hops.length, 14);
    // node1's later packet on the request's address and journey name: a path of its own.
    assert.ok(na.packets.some((p) => p.tuple === `${POD1} > 192.0.2.11` && p.hops.length === 2 && p.end.how === 'ended'));
    assert.deepEqual([...new Set(request.hops.map((h) => h.node))], ['node1', 'node2']);
    const text = new Collect();
    writeNormalizedText(na, text);
    assert.match(text.text, /nf:ipv4:forward c-node2\/vx0 on node2/);
    // Two runs whose node names differ compare equal with --var-node.
    const renamed = writeTrace(mergedTrace().map((r) => JSON.parse(JSON.stringify(r).replace(/node([123])/g, 'worker-$1')) as object));
    try {
      const byVar = { ...vars, netns: /^c-/, node: /^(node|worker-)\d$/ };
      const x = await normalizeFile(a.file, { vars: byVar, keepNeighbour: false }, []);
      const y = await normalizeFile(renamed.file, { vars: byVar, keepNeighbour: false }, []);
      assert.deepEqual(x.packets, y.packets);
      assert.ok(x.packets.some((p) => p.hops.some((h) => h.node === '$node2')));
      assert.equal(diffTraces(x, y).changes.length, 0);
    } finally {
      renamed.done();
    }
    assert.equal(diffTraces(na, na).changes.length, 0);
    const nb = await normalizeFile(b.file, { vars, keepNeighbour: false }, []);
    const d = diffTraces(na, nb);
    assert.ok(d.changes.length > 0);
    const end = d.changes.find((c) => c.kind === 'end')!;
    assert.match(end.what, /dropped: NETFILTER_DROP at c-node2\/vx0 on node2 by nf_hook_slow/);
    assert.ok(d.changes.some((c) => c.kind === 'hop-removed' && /nf:ipv4:forward in c-node2\/vx0 on node2/.test(c.what)));
    assert.match([...formatDiff(d, { a: 'a', b: 'b', color: false })].join(''), /on node2/);
  } finally {
    a.done();
    b.done();
  }
});

test('assert: passes NODE:DEVICE[@POD|@NETNS] in order; point patterns still read as points', async () => {
  const t = writeTrace(mergedTrace());
  try {
    const x = parseExpectations('e.yaml', `expect:
  - name: across the VXLAN into web-0
    match: { proto: icmp, dst: ${POD2} }
    passes: [node1:eth0@default/client-0, node1:vx0, node1:eth0@c-node1, node2:eth0, node2:vx0, node2:eth0@default/web-0]
    ends: ended
  - name: points as before
    match: { proto: icmp, dst: ${POD2} }
    passes: [net_dev_queue@c-node1-pod, nf:ipv4:pre_routing@c-node2/vx0]
  - name: not through node3
    match: { proto: icmp, dst: ${POD2} }
    passes: [node1:vx0, node3:eth0]
  - name: in the wrong order
    match: { proto: icmp, dst: ${POD2} }
    passes: [node2:vx0, node1:vx0]
`);
    const results = await assertTrace(t.file, x);
    assert.deepEqual(results.map((r) => r.ok), [true, true, false, false], JSON.stringify(results, null, 1));
    assert.match(results[2]!.message, /passes node1:vx0 but then not node3:eth0/);
    assert.match(results[2]!.details.join('\n'), /nf:ipv4:pre_routing c-node2\/vx0 on node2/);
  } finally {
    t.done();
  }
});

test('explain: a drop on node2 explained in the journey that started on node1', async () => {
  const t = writeTrace(mergedTrace(true));
  try {
    const { explanations } = await explainFile(t.file);
    assert.equal(explanations.length, 1, JSON.stringify(explanations));
    const e = explanations[0]!;
    assert.equal(e.cause, 'nft-drop');
    assert.equal(e.skb, S1); // the journey's first skb: node1's
    assert.equal(e.time, (mergedTrace(true)[1] as JsonRecord).time);
    assert.match(e.sentence, /dropped by a netfilter rule in c-node2 on node2 at pre_routing/);
    assert.ok(e.evidence.some((x) => /kfree_skb at vx0 in c-node2 on node2/.test(x.text)), JSON.stringify(e.evidence));
  } finally {
    t.done();
  }
});

test('a name taken on a node the journey left is another packet (TCP frees unseen); the transmit\'s end there is not', async () => {
  clock = 0;
  const name = `node1:${S1}`;
  const syn = { saddr: POD1, daddr: POD2, sport: 40000, dport: 8080, proto: 'tcp' as const, flags: 'SYN' };
  const next = { ...syn, sport: 40001 };
  const records = [
    rec('node1', name, S1, place.lxc1, 'nf:ipv4:forward', syn),
    rec('node1', name, S1, place.eth1, 'net_dev_start_xmit', syn),
    rec('node2', name, S2, place.eth2, 'netif_receive_skb', syn),
    rec('node1', name, S1, place.eth1, 'net_dev_xmit', syn),
    rec('node2', name, S2, place.lxc2, 'net_dev_queue', syn),
    // No free seen on either node; node1's next SYN on the same address takes the name.
    rec('node1', name, S1, place.lxc1, 'nf:ipv4:forward', next),
    rec('node1', name, S1, place.eth1, 'net_dev_start_xmit', next),
  ];
  const journeys: Journey[] = [];
  const builder = new JourneyBuilder({ keepNeighbour: true }, (j) => journeys.push(j));
  for (const r of records) builder.event(r);
  builder.end();
  assert.deepEqual(journeys.map((j) => j.hops.map((h) => `${h.node} ${h.at}`)), [
    ['node1 nf:ipv4:forward', 'node1 net_dev_start_xmit', 'node2 netif_receive_skb', 'node1 net_dev_xmit', 'node2 net_dev_queue'],
    ['node1 nf:ipv4:forward', 'node1 net_dev_start_xmit'],
  ]);
  const out = new Collect();
  const sink = new JourneySink(new BatchedWriter(out), { color: false, tcpFlags: false, stack: false, timestamp: 'none', node: true, every: () => () => {} });
  for (const r of records) sink.event(eventFromJson(r, 0n));
  await sink.close();
  assert.deepEqual(out.text.split('\n').filter((l) => l.startsWith('0x')).map((l) => / (\d+) hops? /.exec(l)![1]), ['5', '2']);
});
