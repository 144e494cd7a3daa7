/**
 * Normalisation, diff, expectations and JUnit on synthetic traces: what makes
 * two runs of one scenario compare equal, and what a datapath change looks like.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import type { JsonRecord } from '../../src/output/json.js';
import { assertTrace, evaluate } from '../../src/regress/assert.js';
import { diffTraces } from '../../src/regress/diff.js';
import { parseExpectations } from '../../src/regress/expect.js';
import { FlowSet, type Journey, JourneyBuilder, RAW_JOURNEYS, tupleText } from '../../src/regress/journeys.js';
import { junitReport } from '../../src/regress/junit.js';
import { normalizeFile } from '../../src/regress/normalize.js';
import { classify } from '../../src/regress/records.js';
import { parseCidr } from '../../src/regress/vars.js';

type Tcp = { saddr: string; daddr: string; sport: number; dport: number; proto: 'tcp' | 'udp' | 'icmp' | 'icmp6'; flags: string };

let clock = 0;
/** One event as --output-json writes it; only what normalisation reads varies. */
function ev(skb: number, func: string, netns: string, iface: string, tuple: Tcp | null, extra: Partial<JsonRecord> = {}): JsonRecord {
  clock += 1000;
  const ns = String(clock).padStart(9, '0');
  return {
    v: 1, time: `2026-12-01T00:00:00.${ns}Z`, skb: `0xffff8881000${skb.toString(16).padStart(5, '0')}`, cpu: clock % 2,
    process: 'x:1', pid: 1, netns: 4026532000 + netns.length, netns_name: netns, mark: 0,
    iface: iface ? `${iface}:2` : '0', ifindex: iface ? 2 : 0, proto: 2048, mtu: 1500, len: 60,
    tuple, func, probe: { type: 'tracepoint', name: func }, drop_reason: null, caller: null, ...extra,
  };
}

const tcp = (sport: number, flags: string, reply = false): Tcp => reply
  ? { saddr: '192.0.2.2', daddr: '192.0.2.1', sport: 80, dport: sport, proto: 'tcp', flags }
  : { saddr: '192.0.2.1', daddr: '192.0.2.2', sport, dport: 80, proto: 'tcp', flags };

/** A connection's first two packets, from the client port `sport`, on skbs `base`, `base+1`. */
function handshake(sport: number, base: number, dropSynAck = false): JsonRecord[] {
  const syn = tcp(sport, 'SYN');
  const synack = tcp(sport, 'SYN|ACK', true);
  return [
    ev(base, 'nf:ipv4:local_out', 'a', 'veth-a', syn),
    ev(base, 'net_dev_xmit', 'a', 'veth-a', syn),
    ev(base, 'nf:ipv4:local_in', 'b', 'veth-b', syn),
    ev(base, 'consume_skb', 'b', 'veth-b', syn),
    ev(base + 1, 'nf:ipv4:local_out', 'b', 'veth-b', synack),
    ...(dropSynAck
      ? [ev(base + 1, 'kfree_skb', 'b', 'veth-b', synack, { drop_reason: 'NETFILTER_DROP', caller: 'nf_hook_slow+0x9e/0x150' })]
      : [ev(base + 1, 'nf:ipv4:local_in', 'a', 'veth-a', synack), ev(base + 1, 'consume_skb', 'a', 'veth-a', synack)]),
  ];
}

function writeTrace(records: object[]): { file: string; done: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'pktpath-regress-'));
  const file = join(dir, 'trace.jsonl');
  writeFileSync(file, records.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return { file, done: () => rmSync(dir, { recursive: true, force: true }) };
}

const defaults = { vars: { addresses: [], ephemeralPorts: true, netns: null }, keepNeighbour: false };

test('two runs of one scenario normalise alike: ephemeral ports, skb addresses, times and CPUs do not matter', async () => {
  const one = writeTrace(handshake(40001, 0x10));
  const two = writeTrace(handshake(51234, 0x99).map((r) => ({ ...r, cpu: 7, time: r.time.replace('00:00:00', '00:10:00') })));
  try {
    const a = await normalizeFile(one.file, defaults, ['ephemeral ports']);
    const b = await normalizeFile(two.file, defaults, ['ephemeral ports']);
    assert.deepEqual(a.packets, b.packets);
    assert.equal(a.packets.length, 2);
    assert.equal(a.packets[0]!.flow, 'tcp 192.0.2.1:$p1 > 192.0.2.2:80');
    assert.deepEqual(a.packets.map((p) => [p.dir, p.flags]), [['>', 'SYN'], ['<', 'SYN|ACK']]);
    assert.deepEqual(a.packets[0]!.hops.map((h) => `${h.at}@${h.netns}/${h.iface}`),
      ['nf:ipv4:local_out@a/veth-a', 'net_dev_xmit@a/veth-a', 'nf:ipv4:local_in@b/veth-b']);
    assert.deepEqual(diffTraces(a, b).changes, []);
  } finally {
    one.done();
    two.done();
  }
});

test('noise: retransmits fold into one, a clone freed either way ends alike, neighbour discovery is left out', () => {
  const flows = new FlowSet();
  const b = new JourneyBuilder(defaults, (j) => flows.add(j));
  const syn = tcp(40001, 'SYN');
  for (const [skb, free] of [[1, 'consume_skb'], [2, 'kfree_skb'], [3, 'consume_skb']] as const) {
    if (skb === 3) b.event(ev(skb, 'tcp_retransmit_skb', 'a', '', syn));
    b.event(ev(skb, 'nf:ipv4:local_out', 'a', 'veth-a', syn));
    b.event(ev(skb, free, 'a', 'veth-a', syn, free === 'kfree_skb' ? { drop_reason: 'NOT_SPECIFIED' } : {}));
  }
  const nd: Tcp = { saddr: 'fe80::1', daddr: 'ff02::1:ff00:2', sport: 0, dport: 0, proto: 'icmp6', flags: '' };
  b.event(ev(9, 'net_dev_queue', 'a', 'veth-a', nd));
  b.event(ev(10, 'net_dev_queue', 'a', 'veth-a', null));
  b.end();
  const packets = flows.packets(defaults.vars);
  assert.equal(packets.length, 1, JSON.stringify(packets));
  assert.equal(packets[0]!.repeat, 3);
  assert.deepEqual(packets[0]!.end, { how: 'ended' });
});

test('flows by conntrack entry: both directions and both sides of a DNAT are one flow; the rewrite is a hop', () => {
  const flows = new FlowSet();
  const b = new JourneyBuilder(defaults, (j) => flows.add(j));
  const before: Tcp = { saddr: '192.0.2.1', daddr: '203.0.113.1', sport: 40001, dport: 80, proto: 'tcp', flags: 'SYN' };
  const after: Tcp = { ...before, daddr: '198.51.100.2', dport: 8080 };
  const reply: Tcp = { saddr: '198.51.100.2', daddr: '192.0.2.1', sport: 8080, dport: 40001, proto: 'tcp', flags: 'SYN|ACK' };
  const ct = (state: string, dir: 'orig' | 'reply') => ({
    source: 'nfct' as const, found: true, state: state as 'NEW', dir, id: '0xffff888104a0b200', status: [], zone: 0, mark: 0, error: 0,
    orig: { saddr: '192.0.2.1', daddr: '203.0.113.1', sport: 40001, dport: 80, proto: 'tcp' as const },
    reply: { saddr: '198.51.100.2', daddr: '192.0.2.1', sport: 8080, dport: 40001, proto: 'tcp' as const },
  });
  b.event(ev(1, 'nf:ipv4:pre_routing', 'r', 'eth0', before, { ct: ct('NEW', 'orig') }));
  b.event(ev(1, 'nf:ipv4:forward', 'r', 'eth1', after, { ct: ct('NEW', 'orig') }));
  b.event(ev(1, 'consume_skb', 'r', 'eth1', after));
  b.event(ev(2, 'nf:ipv4:pre_routing', 'r', 'eth1', reply, { ct: ct('ESTABLISHED', 'reply') }));
  b.event(ev(2, 'consume_skb', 'r', 'eth1', reply));
  b.end();
  const packets = flows.packets(defaults.vars);
  assert.equal(new Set(packets.map((p) => p.flow)).size, 1);
  assert.equal(packets[0]!.flow, 'tcp 192.0.2.1:$p1 > 203.0.113.1:80');
  assert.deepEqual(packets.map((p) => p.dir), ['>', '<']);
  assert.equal(packets[0]!.hops[1]!.nat, 'DNAT 203.0.113.1:80 → 198.51.100.2:8080');
  assert.deepEqual(packets.map((p) => p.hops[0]!.ct), ['NEW', 'ESTABLISHED/REPLY']);
});

test('variable addresses and namespace names become placeholders, numbered by first appearance', async () => {
  const records = handshake(40001, 1).map((r) => ({
    ...r, netns_name: r.netns_name === 'b' ? 'cni-7f3a' : r.netns_name,
    tuple: r.tuple && { ...r.tuple, daddr: r.tuple.daddr.replace('192.0.2.2', '10.244.1.17'), saddr: r.tuple.saddr.replace('192.0.2.2', '10.244.1.17') },
  }));
  const t = writeTrace(records);
  try {
    const n = await normalizeFile(t.file, { vars: { addresses: [parseCidr('10.244.0.0/16')!], ephemeralPorts: true, netns: /^cni-/ }, keepNeighbour: false }, []);
    assert.equal(n.packets[0]!.flow, 'tcp 192.0.2.1:$p1 > $a1:80');
    assert.equal(n.packets[0]!.hops[2]!.netns, '$n1');
  } finally {
    t.done();
  }
});

test('diff names a drop, a hop gone and a flow only on one side, in words', async () => {
  const good = writeTrace(handshake(40001, 1));
  const bad = writeTrace([...handshake(40002, 1, true), ev(9, 'net_dev_queue', 'a', 'veth-a',
    { saddr: '192.0.2.1', daddr: '192.0.2.2', sport: 40003, dport: 53, proto: 'udp', flags: '' })]);
  try {
    const a = await normalizeFile(good.file, defaults, []);
    const b = await normalizeFile(bad.file, defaults, []);
    const r = diffTraces(a, b);
    const words = r.changes.map((c) => `${c.kind}: ${c.what}`);
    assert.ok(words.includes('hop-removed: no longer passes nf:ipv4:local_in in a/veth-a'), words.join('\n'));
    assert.ok(words.includes('end: ending: ended → dropped: NETFILTER_DROP at b/veth-b by nf_hook_slow, cause nft-drop'), words.join('\n'));
    assert.ok(words.some((w) => w.startsWith('flow-added: flow only in the second trace')), words.join('\n'));
    assert.deepEqual(diffTraces(a, a).changes, []);
  } finally {
    good.done();
    bad.done();
  }
});

const EXPECT = `
version: 1
vars: [10.244.0.0/16]
expect:
  - name: the SYN reaches b
    match: { proto: tcp, dst: 192.0.2.2:80, flags: SYN }
    passes: [nf:ipv4:local_out@a, nf:ipv4:local_in@b/veth-b]
    ends: ended
  - name: no drops
    match: { ends: dropped }
    count: 0
  - name: SYN-ACKs are dropped by netfilter
    match: { proto: tcp, flags: SYN|ACK }
    reason: NETFILTER_DROP
  - name: connections see two packets
    connection: true
    match: { proto: tcp, dport: 80 }
    count: { exactly: 1 }
    passes: [nf:ipv4:local_in@b, nf:ipv4:local_out@b]
`;

test('expectations: holding ones pass, failing ones say why and show the nearest journey', async () => {
  const x = parseExpectations('expect.yaml', EXPECT);
  assert.deepEqual(x.vars, ['10.244.0.0/16']);
  const t = writeTrace(handshake(40001, 1));
  try {
    const results = await assertTrace(t.file, x);
    assert.deepEqual(results.map((r) => r.ok), [true, true, false, true], JSON.stringify(results, null, 1));
    const failed = results[2]!;
    assert.match(failed.message, /1 of 1 matching packets do not hold: is ended, not dropped for NETFILTER_DROP/);
    assert.match(failed.details.join('\n'), /nearest: tcp 192\.0\.2\.2:80 > 192\.0\.2\.1:40001 SYN\|ACK/);
    // A selection that matches nothing points at what came nearest.
    const none = evaluate(parseExpectations('e.yaml', 'expect:\n  - name: to .3\n    match: { dst: 192.0.2.3 }\n').expect[0]!,
      [] as Journey[]);
    assert.equal(none.ok, false);
    assert.match(none.message, /expected at least 1 packets matching, found 0/);

    const xml = junitReport(results, { trace: t.file, expectations: 'expect.yaml' });
    assert.equal(XMLValidator.validate(xml), true);
    const doc = new XMLParser({ ignoreAttributes: false }).parse(xml) as {
      testsuites: { testsuite: { '@_tests': string; '@_failures': string; testcase: Array<{ '@_name': string; failure?: unknown }> } };
    };
    const suite = doc.testsuites.testsuite;
    assert.equal(suite['@_tests'], '4');
    assert.equal(suite['@_failures'], '1');
    assert.deepEqual(suite.testcase.map((c) => c.failure !== undefined), [false, false, true, false]);
  } finally {
    t.done();
  }
});

test('bad expectation files: one line with the file and line', () => {
  const cases: Array<[string, RegExp]> = [
    ['expect:\n  - name: x\n    match: { dst: [1, 2\n', /^e\.yaml:4: not YAML: Flow sequence/],
    ['expect:\n  - name: x\n    colour: red\n', /^e\.yaml:3: unknown key 'colour'/],
    ['expect:\n  - name: x\n    count: many\n', /^e\.yaml:3: expect\.0\.count: a number, or one of/],
    ['expect:\n  - name: x\n    match:\n      dst: 300.1.1.1\n', /^e\.yaml:4: '300\.1\.1\.1' is not an address/],
    ['vars: [nope]\nexpect:\n  - name: x\n', /^e\.yaml:1: vars: 'nope' is not an address or CIDR/],
    ['expect: []\n', /^e\.yaml:1: expect must NOT have fewer than 1 items/],
  ];
  for (const [text, message] of cases) {
    assert.throws(() => parseExpectations('e.yaml', text), (e: Error) => message.test(e.message) && !e.message.includes('\n'), text);
  }
});

test('bad trace lines: not JSON, another schema version, an unknown record', () => {
  assert.throws(() => classify('{"v":1,"time":'), /not JSON/);
  assert.throws(() => classify('{"v":2,"type":"lost","count":1}'), /schema version 2/);
  assert.throws(() => classify('{"v":1,"type":"nope"}'), /unknown record type/);
  assert.throws(() => classify('{"v":1,"skb":"x"}'), /not an event/);
  assert.equal(classify(JSON.stringify(ev(1, 'consume_skb', 'a', '', null))).kind, 'event');
});

test('raw journeys keep addresses and ports, for assertions', () => {
  const out: Journey[] = [];
  const b = new JourneyBuilder(RAW_JOURNEYS, (j) => out.push(j));
  for (const r of handshake(40001, 1)) b.event(r);
  b.end();
  assert.equal(out[0]!.first!.sport, '40001');
});

test('a normalised trace reads back: diff of it against its raw trace is empty; a packet line without its header is refused', async () => {
  const t = writeTrace(handshake(40001, 1));
  const dir = mkdtempSync(join(tmpdir(), 'pktpath-regress-'));
  try {
    const n = await normalizeFile(t.file, defaults, []);
    const { writeNormalized } = await import('../../src/regress/normalize.js');
    const { Writable } = await import('node:stream');
    let text = '';
    writeNormalized(n, new Writable({ write: (c, _e, cb) => { text += c.toString(); cb(); } }), { counts: false, noSource: true });
    const file = join(dir, 'n.jsonl');
    writeFileSync(file, text);
    assert.deepEqual(diffTraces(await normalizeFile(file, defaults, []), n).changes, []);
    writeFileSync(file, text.split('\n').slice(1).join('\n'));
    await assert.rejects(normalizeFile(file, defaults, []), /n\.jsonl:1: a normalised packet before the normalised header/);
  } finally {
    t.done();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the flow is named from its earliest packet, whatever order its packets ended in', () => {
  const flows = new FlowSet();
  const b = new JourneyBuilder(defaults, (j) => flows.add(j));
  const [syn, synOut, synEnd, reply, replyIn, replyEnd] = handshake(40001, 1);
  // The SYN|ACK ends before the SYN does (the SYN is freed last).
  for (const r of [syn!, synOut!, synEnd!, reply!, replyIn!, replyEnd!].filter((r) => r.func !== 'consume_skb' || r.skb !== syn!.skb)) b.event(r);
  b.event(handshake(40001, 1).find((r) => r.func === 'consume_skb' && r.skb === syn!.skb)!);
  b.end();
  const packets = flows.packets(defaults.vars);
  assert.equal(packets[0]!.flow, 'tcp 192.0.2.1:$p1 > 192.0.2.2:80');
  assert.deepEqual(packets.map((p) => `${p.dir}${p.flags}`), ['>SYN', '<SYN|ACK']);
});

test('placeholders are numbered per flow: a new flow does not renumber the others; two connections of one client are one flow', () => {
  const run = (records: JsonRecord[]) => {
    const flows = new FlowSet();
    const b = new JourneyBuilder(defaults, (j) => flows.add(j));
    for (const r of records) b.event(r);
    b.end();
    return flows.packets(defaults.vars);
  };
  const before = run(handshake(40001, 1));
  const udp: Tcp = { saddr: '192.0.2.1', daddr: '192.0.2.0', sport: 50000, dport: 53, proto: 'udp', flags: '' };
  const after = run([ev(9, 'net_dev_queue', 'a', 'veth-a', udp), ev(9, 'consume_skb', 'a', 'veth-a', udp), ...handshake(40001, 1)]);
  assert.deepEqual(after.filter((p) => p.flow.startsWith('tcp')), before);
  const twice = run([...handshake(40001, 1), ...handshake(40777, 0x20)]);
  assert.deepEqual(twice.map((p) => ({ ...p, repeat: 1 })), before);
  assert.deepEqual(twice.map((p) => p.repeat), [2, 2]);
});

test('sctp keeps its ports; an expectation may name a protocol by number', () => {
  const out: Journey[] = [];
  const b = new JourneyBuilder(RAW_JOURNEYS, (j) => out.push(j));
  const sctp = { saddr: '192.0.2.1', daddr: '192.0.2.2', sport: 40001, dport: 38412, proto: 132, flags: '' } as unknown as Tcp;
  b.event(ev(1, 'net_dev_queue', 'a', 'veth-a', sctp));
  b.end();
  assert.equal(out[0]!.first!.proto, 'sctp');
  assert.equal(out[0]!.first!.ported, true);
  const tcpByNumber = parseExpectations('e.yaml', 'expect:\n  - name: t\n    match: { proto: 6 }\n').expect[0]!;
  const journeys: Journey[] = [];
  const jb = new JourneyBuilder(RAW_JOURNEYS, (j) => journeys.push(j));
  for (const r of handshake(40001, 1)) jb.event(r);
  jb.end();
  assert.equal(evaluate(tcpByNumber, journeys).ok, true);
});

test('diff pairs unchanged paths first: a path gone is one change, not a cascade', async () => {
  const other: Tcp = { saddr: '192.0.2.1', daddr: '192.0.2.2', sport: 40001, dport: 53, proto: 'udp', flags: '' };
  const two = [
    ev(1, 'nf:ipv4:local_out', 'a', 'veth-a', other), ev(1, 'consume_skb', 'a', 'veth-a', other),
    ev(2, 'nf:ipv4:local_out', 'a', 'veth-a', other), ev(2, 'tc:egress', 'a', 'veth-a', other), ev(2, 'consume_skb', 'a', 'veth-a', other),
  ];
  const a = writeTrace(two);
  const b = writeTrace(two.slice(2));
  try {
    const r = diffTraces(await normalizeFile(a.file, defaults, []), await normalizeFile(b.file, defaults, []));
    assert.deepEqual(r.changes.map((c) => c.kind), ['packet-removed']);
  } finally {
    a.done();
    b.done();
  }
});

test('a reply at the address of a packet whose free the trace did not see is another packet, not a NAT: at a socket read and a free too', () => {
  const out: Journey[] = [];
  const b = new JourneyBuilder(RAW_JOURNEYS, (j) => out.push(j));
  const request: Tcp = { saddr: '192.0.2.1', daddr: '192.0.2.2', sport: 0, dport: 0, proto: 'icmp', flags: '' };
  const reply: Tcp = { ...request, saddr: '192.0.2.2', daddr: '192.0.2.1' };
  // The request leaves A and is freed in B, where the trace does not look; the reply's socket copy gets its address.
  b.event(ev(1, 'nf:ipv4:local_out', 'a', 'veth-a', request));
  b.event(ev(1, 'net_dev_xmit', 'a', 'veth-a', request));
  b.event(ev(1, 'skb_copy_datagram_iovec', 'a', 'veth-a', reply));
  b.event(ev(1, 'consume_skb', 'a', 'veth-a', reply));
  // A masqueraded request whose reply, freed at once, comes back on its address: the reverse of its first tuple.
  const masqueraded: Tcp = { ...request, saddr: '198.51.100.1' };
  b.event(ev(2, 'nf:ipv4:local_out', 'a', 'veth-a', request));
  b.event(ev(2, 'nf:ipv4:post_routing', 'a', 'veth-a', masqueraded));
  b.event(ev(2, 'kfree_skb', 'a', 'veth-a', reply, { drop_reason: 'NO_SOCKET', caller: 'icmp_rcv+0x1c/0x2a0' }));
  b.end();
  const rewrites = out.flatMap((j) => j.hops.filter((h) => h.rewrite).map((h) => `${h.at}: ${tupleText(h.rewrite!.from)} → ${tupleText(h.rewrite!.to)}`));
  assert.deepEqual(rewrites, ['nf:ipv4:post_routing: 192.0.2.1 > 192.0.2.2 → 198.51.100.1 > 192.0.2.2']);
  const copy = out.find((j) => j.hops[0]?.at === 'skb_copy_datagram_iovec');
  assert.deepEqual(copy?.first, { proto: 'icmp', saddr: '192.0.2.2', sport: '0', daddr: '192.0.2.1', dport: '0', ported: false });
  assert.equal(out.find((j) => j.end.how === 'dropped')?.first?.saddr, '192.0.2.2');
});

test('settings records in a trace are read and left out of its normalised form', async () => {
  const settings = {
    v: 1, type: 'settings', time: '2026-01-01T00:00:00.000000000Z', netns: 4026532001, netns_name: 'a',
    ipv4: { forwarding: 0, conf: { all: { forwarding: 0, rp_filter: 2 } } },
    devices: [{ ifindex: 2, name: 'veth-a', mtu: 1500, up: true, kind: 'veth', addresses: ['192.0.2.1/24'], lladdr: null }],
    routes: [], rules: [],
  };
  const records = handshake(40001, 0x10);
  const plain = writeTrace(records);
  const withSettings = writeTrace([settings, ...records.slice(0, 3), { ...settings, time: '2026-01-01T00:00:00.500000000Z' }, ...records.slice(3)]);
  try {
    assert.deepEqual(await normalizeFile(withSettings.file, defaults, []), await normalizeFile(plain.file, defaults, []));
  } finally {
    plain.done();
    withSettings.done();
  }
});
