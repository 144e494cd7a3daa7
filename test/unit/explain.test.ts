/**
 * The explain engine over hand-written traces: one per cause, each with the
 * records it rests on (events, nftables' trace, tc verdicts, route lookups,
 * neighbour changes, settings), and traces of journeys that arrived, which
 * must be told nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import type { JsonRecord } from '../../src/output/json.js';
import { Explainer } from '../../src/regress/explain/engine.js';
import { explainFile, explanationText } from '../../src/regress/explain/file.js';
import type { ExplainEvent, ExplanationRecord, SettingsRecord } from '../../src/regress/explain/inputs.js';
import { classify } from '../../src/regress/records.js';
import { assertTrace } from '../../src/regress/assert.js';
import { parseExpectations } from '../../src/regress/expect.js';
import { diffTraces } from '../../src/regress/diff.js';
import { normalizeFile } from '../../src/regress/normalize.js';
import { ExplainSink } from '../../src/output/explained.js';
import { BatchedWriter } from '../../src/output/stream.js';
import type { SettingsNotice } from '../../src/output/settings.js';

type Tuple = NonNullable<JsonRecord['tuple']>;
const NETNS: Record<string, number> = { a: 4026532001, router: 4026532002, b: 4026532003 };

let clock = 0;
const at = (n: number) => `2026-12-01T00:00:00.${String(n).padStart(9, '0')}Z`;
/** One event as --output-json writes it, with the sections explain reads. */
function ev(skb: number, func: string, netns: string, iface: string, tuple: Tuple | null, extra: Partial<ExplainEvent> = {}): ExplainEvent {
  clock += 1000;
  return {
    v: 1, time: at(clock), skb: `0xffff888100${skb.toString(16).padStart(6, '0')}`, cpu: 0, process: 'x:1', pid: 1,
    netns: NETNS[netns]!, netns_name: netns, mark: 0, iface: iface ? `${iface}:2` : '0', ifindex: iface ? 2 : 0, proto: 2048, mtu: 1500, len: 60,
    tuple, func, probe: { type: 'tracepoint', name: func }, drop_reason: null, caller: null, ...extra,
  };
}
const drop = (skb: number, netns: string, iface: string, t: Tuple, reason: string, caller = 'ip_rcv_finish+0x1') =>
  ev(skb, 'kfree_skb', netns, iface, t, { drop_reason: reason, caller });
const udp = (dport = 9999, reply = false): Tuple => reply
  ? { saddr: '198.51.100.2', daddr: '192.0.2.1', sport: dport, dport: 40000, proto: 'udp', flags: '' }
  : { saddr: '192.0.2.1', daddr: '198.51.100.2', sport: 40000, dport, proto: 'udp', flags: '' };
const icmp = (reply = false): Tuple => reply
  ? { saddr: '198.51.100.2', daddr: '192.0.2.1', sport: 0, dport: 0, proto: 'icmp', flags: '' }
  : { saddr: '192.0.2.1', daddr: '198.51.100.2', sport: 0, dport: 0, proto: 'icmp', flags: '' };

/** A packet leaving namespace `from` by `out` and arriving in `to` by `inn`. */
const cross = (skb: number, t: Tuple, from: string, out: string, to: string, inn: string) => [
  ev(skb, 'nf:ipv4:local_out', from, out, t), ev(skb, 'tc:egress', from, out, t), ev(skb, 'net_dev_start_xmit', from, out, t),
  ev(skb, 'netif_receive_skb', to, inn, t), ev(skb, 'tc:ingress', to, inn, t), ev(skb, 'nf:ipv4:pre_routing', to, inn, t),
];

/** A settings record as pktpath writes them (its devices completed: the files these go into are checked against the schema). */
function settings(netns: string, over: Partial<SettingsRecord> = {}): SettingsRecord {
  const r: SettingsRecord = {
    v: 1, type: 'settings', time: at(1), netns: NETNS[netns]!, netns_name: netns,
    ipv4: { forwarding: 1, conf: { all: { forwarding: 1, rp_filter: 0, proxy_arp: 0 }, default: { forwarding: 1 } } },
    devices: [], ...over,
  };
  const devices = (r.devices ?? []).map((d) => ({ mtu: 1500, up: true, kind: 'veth', addresses: [], lladdr: null, ...d }));
  return { ...r, devices, routes: [], rules: [] } as SettingsRecord;
}

function explain(records: Array<ExplainEvent | SettingsRecord>): ExplanationRecord[] {
  const out: ExplanationRecord[] = [];
  const x = new Explainer((e) => out.push(e));
  for (const r of records) {
    if ('type' in r && r.type === 'settings') x.settings(r);
    else x.event(r as unknown as JsonRecord); // hand-written: only the fields explain reads
  }
  x.end();
  return out;
}

const only = (records: Array<ExplainEvent | SettingsRecord>) => {
  const out = explain(records);
  assert.equal(out.length, 1, JSON.stringify(out, null, 1));
  const e = out[0]!;
  for (const x of e.evidence) assert.ok(x.time === null || /^2026-/.test(x.time));
  return e;
};

test('an nft rule drop names the table, chain, handle and rule', () => {
  const t = udp();
  const nft = ev(1, 'nft', 'b', 'veth-b', t, {
    probe: { type: 'nft', name: 'nft' },
    nft: { family: 'inet', table: 'filter', chain: 'input', handle: 7, rule: 'udp dport 9999 drop', kind: 'rule', verdict: 'drop', target: null, trace_id: 1 },
  });
  const e = only([...cross(1, t, 'a', 'veth-a', 'b', 'veth-b'), nft, drop(1, 'b', 'veth-b', t, 'NETFILTER_DROP', 'nf_hook_slow+0x1')]);
  assert.equal(e.cause, 'nft-drop');
  assert.equal(e.sentence, 'dropped by nft rule inet filter input #7 "udp dport 9999 drop" in b');
  assert.equal(e.flow, 'udp 192.0.2.1:40000 > 198.51.100.2:9999');
  assert.equal(e.evidence[0]!.time, nft.time);
  // Without nftables' trace: the drop reason says netfilter, and where.
  const bare = only([...cross(2, t, 'a', 'veth-a', 'b', 'veth-b'), drop(2, 'b', 'veth-b', t, 'NETFILTER_DROP', 'nf_hook_slow+0x1')]);
  assert.equal(bare.cause, 'nft-drop');
  assert.equal(bare.sentence, 'dropped by a netfilter rule in b at pre_routing (--output-nft names the rule)');
});

test('a ct state invalid rule is a conntrack INVALID drop', () => {
  const t: Tuple = { saddr: '192.0.2.1', daddr: '198.51.100.2', sport: 40000, dport: 80, proto: 'tcp', flags: 'ACK' };
  const e = only([
    ...cross(1, t, 'a', 'veth-a', 'b', 'veth-b'),
    ev(1, 'nf:ipv4:local_in', 'b', 'veth-b', t, { ct: { source: 'nfct', found: false, state: 'NONE', dir: 'orig', id: '0x0', status: [], zone: 0, mark: 0, error: 0, orig: null, reply: null } }),
    ev(1, 'nft', 'b', 'veth-b', t, { nft: { family: 'inet', table: 'f', chain: 'input', handle: 3, rule: 'ct state invalid drop', kind: 'rule', verdict: 'drop', target: null, trace_id: 1 } }),
    drop(1, 'b', 'veth-b', t, 'NETFILTER_DROP'),
  ]);
  assert.equal(e.cause, 'ct-invalid');
  assert.equal(e.sentence, 'dropped as conntrack INVALID by nft rule inet f input #3 "ct state invalid drop" in b');
  assert.match(e.evidence[1]!.text, /conntrack had no entry/);
});

const verdict = (action: 'drop' | 'redirect', target: boolean) => ({
  action, by: [{ id: 12, name: 'cni_policy' }], reason: null, inferred: false, evidence: '',
  target: target ? { kind: 'peer' as const, direction: 'ingress' as const, ifindex: 2, iface: 'eth0', netns: NETNS['b']!, netns_name: 'b' } : null,
});

test('a tc program drop names the program; a redirect lists the tc points crossed', () => {
  const t = udp();
  const e = only([
    ev(1, 'tc:egress', 'a', 'veth-a', t), ev(1, 'tc:ingress', 'router', 'lxc-b', t, { verdict: verdict('drop', false) }),
    drop(1, 'router', 'lxc-b', t, 'TC_INGRESS', 'tcf_classify+0x1'),
  ]);
  assert.equal(e.cause, 'tc-drop');
  assert.equal(e.sentence, 'dropped by tc program cni_policy#12 at tc:ingress of lxc-b in router');
  assert.deepEqual(e.evidence.map((x) => x.text.split(':')[0]), ['egress of veth-a in a', 'ingress of lxc-b in router', 'kfree_skb at lxc-b in router']);

  const r = only([ev(2, 'tc:ingress', 'router', 'veth-h', udp(9999, true), { verdict: verdict('redirect', true) }), ev(2, 'netif_receive_skb', 'b', 'eth0', udp(9999, true))]);
  assert.equal(r.cause, 'tc-redirect');
  assert.equal(r.sentence, 'redirected by cni_policy#12 at tc ingress of veth-h in router into eth0@b: tcpdump on veth-h sees only ingress');
  // Redirected into a device that did not take it: freed (without a reason) right after.
  const gone = only([ev(3, 'tc:ingress', 'router', 'veth-h', udp(), { verdict: verdict('redirect', true) }), ev(3, 'kfree_skb', 'router', 'veth-h', udp())]);
  assert.equal(gone.cause, 'tc-redirect');
  assert.equal(gone.sentence, 'redirected by cni_policy#12 at tc ingress of veth-h in router into eth0@b, but the redirect failed: freed right after');
  // The verdict stage saw the free next and inferred DROP: the free's caller says the redirect failed.
  const failed = only([ev(4, 'tc:ingress', 'router', 'lxc-a', udp(), { verdict: verdict('drop', false) }),
    ev(4, 'kfree_skb', 'router', 'lxc-a', udp(), { drop_reason: 'NOT_SPECIFIED', caller: 'skb_do_redirect+0x1f8' })]);
  assert.equal(failed.sentence, 'redirected by cni_policy#12 at tc ingress of lxc-a in router, but the redirect failed: freed in skb_do_redirect (its target is down, gone or cannot take it)');
});

test('forwarding disabled: arrives for an address not its namespace\'s, routed on, never leaves; the drop reason may be missing', () => {
  const t = udp();
  const arrive = cross(1, t, 'a', 'veth-a', 'router', 'veth-r0');
  const route = ev(0, 'fib:fib_table_lookup', 'router', 'veth-r0', t, {
    skb: '0x0', probe: { type: 'tracepoint', name: 'fib:fib_table_lookup' },
    route: { family: 4, table: 254, table_name: 'main', result: 'unicast', error: null, oif: 3, oif_name: 'veth-r1', gateway: null, prefix: '198.51.100.0/24', iif: 2, iif_name: 'veth-r0' },
  });
  const router = settings('router', {
    ipv4: { forwarding: 0, conf: { all: { forwarding: 0 }, 'veth-r0': { forwarding: 0 } } },
    devices: [{ ifindex: 2, name: 'veth-r0', addresses: ['192.0.2.254/24'] }, { ifindex: 3, name: 'veth-r1', addresses: ['198.51.100.254/24'] }],
  });
  const records = [router, ...arrive, route, ev(1, 'consume_skb', 'router', 'veth-r0', t)];
  const e = only(records);
  assert.equal(e.cause, 'forwarding-disabled');
  assert.equal(e.sentence, 'not forwarded: net.ipv4.ip_forward=0 and forwarding=0 on veth-r0 in router');
  assert.ok(e.evidence.some((x) => x.text === 'route lookup in router (table main): unicast via veth-r1 (198.51.100.0/24)' && x.time === route.time));
  assert.ok(e.evidence.some((x) => x.time === router.time));
  // With forwarding on, the same journey (freed without a reason) is told nothing.
  assert.deepEqual(explain([settings('router', { devices: router.devices! }), ...records.slice(1)]), []);
});

test('no route: a failed lookup and the kernel\'s reason', () => {
  const t = udp();
  const e = only([
    ...cross(1, t, 'a', 'veth-a', 'router', 'veth-r0'),
    ev(1, 'fib:fib_table_lookup', 'router', 'veth-r0', t, { route: { result: 'unreachable', error: 'ENETUNREACH', oif_name: '', gateway: null, table_name: 'main' } }),
    drop(1, 'router', 'veth-r0', t, 'IP_NOROUTE', 'ip_error+0x1'),
  ]);
  assert.equal(e.cause, 'no-route');
  assert.equal(e.sentence, 'no route to 198.51.100.2 in router');
  assert.equal(e.evidence[0]!.text, 'route lookup in router (table main): unreachable ENETUNREACH');
});

test('rp_filter: the reason and the strict or loose value in force', () => {
  const t = udp();
  const e = only([
    settings('router', { ipv4: { forwarding: 1, conf: { all: { rp_filter: 0 }, 'veth-r0': { rp_filter: 1 } } } }),
    ...cross(1, t, 'a', 'veth-a', 'router', 'veth-r0'), drop(1, 'router', 'veth-r0', t, 'IP_RPFILTER', 'ip_rcv_finish_core+0x1'),
  ]);
  assert.equal(e.cause, 'rp-filter');
  assert.equal(e.sentence, 'dropped by reverse-path filtering on veth-r0 in router (rp_filter=1, strict): the way back to 192.0.2.1 is not through veth-r0');
  assert.match(e.evidence[1]!.text, /rp_filter=1 \(strict\) on veth-r0/);
});

test('neighbour failed: the next hop, its probes, who should have answered, proxy_arp', () => {
  const t = udp();
  const neigh = ev(0, 'neigh:neigh_update', 'a', 'veth-a', null, {
    skb: '0x0', neigh: { event: 'update', family: 4, address: '192.0.2.254', ifindex: 2, iface: 'veth-a', lladdr: null, state: 'FAILED', old_state: 'INCOMPLETE', probes: 3, error: null },
  });
  const e = only([
    settings('a', { ipv4: { forwarding: 0, conf: { all: { proxy_arp: 0 }, 'veth-a': { proxy_arp: 0 } } } }),
    settings('router', { devices: [{ ifindex: 2, name: 'veth-r0', up: false, addresses: ['192.0.2.254/24'] }] }),
    ev(1, 'nf:ipv4:local_out', 'a', 'veth-a', t),
    ev(1, 'fib:fib_table_lookup', 'a', '', t, { route: { result: 'unicast', oif_name: 'veth-a', gateway: '192.0.2.254' } }),
    neigh, drop(1, 'a', 'veth-a', t, 'NEIGH_FAILED', 'neigh_invalidate+0x1'),
  ]);
  assert.equal(e.cause, 'neigh-failed');
  assert.equal(e.sentence, 'no neighbour answered for 192.0.2.254 on veth-a in a (FAILED after 3 probes)');
  const texts = e.evidence.map((x) => x.text);
  assert.ok(texts.includes('neighbour 192.0.2.254 on veth-a in a: INCOMPLETE → FAILED after 3 probes'), texts.join('\n'));
  assert.ok(texts.includes('192.0.2.254 is on veth-r0 in router, which is down: it should have answered'), texts.join('\n'));
  assert.ok(texts.includes('settings of a: proxy_arp=0 on veth-a'), texts.join('\n'));
});

test('mtu, no socket, a full socket buffer', () => {
  const t = udp();
  const big = ev(1, 'net_dev_queue', 'router', 'vx0', t, { len: 1600, mtu: 1450 });
  const m = only([ev(1, 'tc:ingress', 'router', 'veth-r0', t), big, drop(1, 'router', 'vx0', t, 'PKT_TOO_BIG', 'ip_fragment+0x1')]);
  assert.equal(m.cause, 'mtu');
  assert.equal(m.sentence, 'too big for vx0 in router: 1600 bytes, mtu 1450');

  const n = only([...cross(2, t, 'a', 'veth-a', 'b', 'veth-b'), ev(2, 'nf:ipv4:local_in', 'b', 'veth-b', t), drop(2, 'b', 'veth-b', t, 'NO_SOCKET', '__udp4_lib_rcv+0x1')]);
  assert.equal(n.cause, 'no-socket');
  assert.equal(n.sentence, 'no socket for udp port 9999 in b (answered with ICMP port unreachable)');

  const f = only([...cross(3, t, 'a', 'veth-a', 'b', 'veth-b'), drop(3, 'b', 'veth-b', t, 'SOCKET_RCVBUFF', '__udp_queue_rcv_skb+0x1')]);
  assert.equal(f.cause, 'socket-full');
  assert.equal(f.sentence, 'the socket of udp port 9999 in b has its receive buffer full');
});

test('a request that arrived, whose reply was dropped, is told by its reply', () => {
  const req = cross(1, icmp(), 'a', 'veth-a', 'b', 'veth-b');
  const reply = [ev(2, 'nf:ipv4:local_out', 'b', 'veth-b', icmp(true)), ev(2, 'tc:egress', 'b', 'veth-b', icmp(true), { verdict: verdict('drop', false) }),
    drop(2, 'b', 'veth-b', icmp(true), 'TC_EGRESS', 'tcf_classify+0x1')];
  const out = explain([...req, ev(1, 'nf:ipv4:local_in', 'b', 'veth-b', icmp()), ev(1, 'consume_skb', 'b', 'veth-b', icmp()), ...reply]);
  assert.deepEqual(out.map((e) => e.cause), ['tc-drop', 'reply-dropped']);
  const r = out[1]!;
  assert.equal(r.time, req[0]!.time);
  assert.equal(r.flow, 'icmp 192.0.2.1 > 198.51.100.2');
  assert.equal(r.sentence, 'the reply was dropped: dropped by tc program cni_policy#12 at tc:egress of veth-b in b');
  assert.equal(r.evidence[0]!.time, reply[0]!.time);
});

test('a drop the engine cannot say more of, and a journey that stopped mid-path', () => {
  const t = udp();
  const d = only([ev(1, 'tc:ingress', 'b', 'veth-b', t), drop(1, 'b', 'veth-b', t, 'SKB_CSUM', 'udp_rcv+0x1')]);
  assert.equal(d.cause, 'dropped');
  assert.equal(d.sentence, 'dropped: SKB_CSUM at veth-b in b by udp_rcv');
  const u = only(cross(2, t, 'a', 'veth-a', 'b', 'veth-b'));
  assert.equal(u.cause, 'unfinished');
  assert.equal(u.sentence, 'last seen at nf:ipv4:pre_routing of veth-b in b');
});

test('journeys that arrived are told nothing: a ping and its reply, a delivered UDP datagram, a TCP exchange', () => {
  const tcp = (flags: string, reply = false): Tuple => reply
    ? { saddr: '198.51.100.2', daddr: '192.0.2.1', sport: 80, dport: 40000, proto: 'tcp', flags }
    : { saddr: '192.0.2.1', daddr: '198.51.100.2', sport: 40000, dport: 80, proto: 'tcp', flags };
  const path = (skb: number, t: Tuple, reply: boolean) => [
    ...(reply ? cross(skb, t, 'b', 'veth-b', 'a', 'veth-a') : cross(skb, t, 'a', 'veth-a', 'b', 'veth-b')),
    ev(skb, 'nf:ipv4:local_in', reply ? 'a' : 'b', reply ? 'veth-a' : 'veth-b', t),
  ];
  const records = [
    ...path(1, icmp(), false), ...path(2, icmp(true), true), ev(3, 'skb_copy_datagram_iovec', 'a', 'veth-a', icmp(true)),
    ...path(4, udp(), false), ev(4, 'skb_copy_datagram_iovec', 'b', 'veth-b', udp()), ev(4, 'consume_skb', 'b', 'veth-b', udp()),
    ...path(5, tcp('SYN'), false), ...path(6, tcp('SYN|ACK', true), true), ...path(7, tcp('ACK'), false),
    // A ping answered by a raw socket: the ping socket's NO_SOCKET free is a normal end.
    ...path(8, icmp(true), true), drop(8, 'a', 'veth-a', icmp(true), 'NO_SOCKET', 'ping_rcv+0xb3'),
  ];
  assert.deepEqual(explain(records), []);
});

test('explain reads a trace file: settings records, explanations of a trace recorded with --explain; text escaped', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pktpath-explain-'));
  try {
    const t = udp();
    const e = { v: 1, type: 'explanation', time: at(1), skb: '0x1', flow: 'x', cause: 'dropped', sentence: 's', evidence: [{ text: 'e', time: null }] };
    assert.equal(classify(JSON.stringify(e)).kind, 'explanation');
    assert.throws(() => classify(JSON.stringify({ ...e, cause: 'bogus' })), /cause must be one of/);
    const { skb_metadata: _m, ...s } = { ...settings('b'), skb_metadata: null };
    const lines = [s, ...cross(1, t, 'a', 'veth-a', 'b', 'veth\u001b[31m-b'), e, drop(1, 'b', 'veth\u001b[31m-b', t, 'NO_SOCKET', '__udp4_lib_rcv+0x1')];
    const file = join(dir, 't.jsonl');
    writeFileSync(file, lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
    const { explanations } = await explainFile(file);
    assert.deepEqual(explanations.map((x) => x.cause), ['no-socket']);
    const text = explanationText(explanations[0]!);
    assert.equal(text.split('\n')[0], 'no-socket: no socket for udp port 9999 in b (answered with ICMP port unreachable)');
    assert.doesNotMatch(text, /\u001b/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('assert\'s cause: the packet\'s explanation, or none; a different cause fails in words', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pktpath-explain-'));
  try {
    const t = udp();
    const header = { v: 1, type: 'header', pktpath: '0', kernel: 'Linux', time: at(1), argv: [], command: null, points: [], notes: [], namespaces: [] };
    const lines = [header, ...cross(1, t, 'a', 'veth-a', 'b', 'veth-b'), drop(1, 'b', 'veth-b', t, 'NO_SOCKET', '__udp4_lib_rcv+0x1'),
      ...cross(2, udp(7777), 'a', 'veth-a', 'b', 'veth-b'), ev(2, 'skb_copy_datagram_iovec', 'b', 'veth-b', udp(7777))];
    const file = join(dir, 't.jsonl');
    writeFileSync(file, lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
    const expectations = parseExpectations('e.yaml', [
      'expect:',
      '  - { name: refused, match: { dport: 9999 }, cause: no-socket }',
      '  - { name: served, match: { dport: 7777 }, cause: none }',
      '  - { name: wrong, match: { dport: 9999 }, cause: forwarding-disabled }',
    ].join('\n'));
    const results = await assertTrace(file, expectations);
    assert.deepEqual(results.map((r) => r.ok), [true, true, false]);
    assert.match(results[2]!.message, /cause no-socket \(no socket for udp port 9999 in b \(answered with ICMP port unreachable\)\), not forwarding-disabled/);
    assert.throws(() => parseExpectations('e.yaml', 'expect:\n  - { name: x, cause: bogus }\n'), /cause must be equal to one of the allowed values/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('normalize carries each path\'s cause, and diff says a change of cause in words', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pktpath-explain-'));
  try {
    const t = udp();
    const router = settings('router', {
      ipv4: { forwarding: 0, conf: { all: { forwarding: 0 } } }, devices: [{ ifindex: 2, name: 'veth-r0', addresses: ['192.0.2.254/24'] }],
    });
    const path = [...cross(1, t, 'a', 'veth-a', 'router', 'veth-r0'), drop(1, 'router', 'veth-r0', t, 'IP_INADDRERRORS', 'ip_error+0x1')];
    const write = (name: string, lines: object[]) => {
      const f = join(dir, name);
      writeFileSync(f, lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
      return f;
    };
    const opts = { vars: { addresses: [], ephemeralPorts: true, netns: null }, keepNeighbour: false };
    const before = await normalizeFile(write('a.jsonl', path), opts, []);
    const after = await normalizeFile(write('b.jsonl', [router, ...path]), opts, []);
    assert.equal(before.packets[0]!.end.cause, 'no-route');
    assert.equal(after.packets[0]!.end.cause, 'forwarding-disabled');
    const words = diffTraces(before, after).changes.map((c) => c.what);
    assert.deepEqual(words, ['ending: dropped: IP_INADDRERRORS at router/veth-r0 by ip_error, cause no-route → dropped: IP_INADDRERRORS at router/veth-r0 by ip_error, cause forwarding-disabled']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('proxy ARP, informational: the next hop answered by a device that does not have its address, once', () => {
  const t = udp();
  const neigh = (n: number) => ev(0, 'neigh:neigh_update', 'a', 'veth-a', null, {
    skb: '0x0', neigh: { event: 'update', family: 4, address: '198.51.100.2', ifindex: 2, iface: 'veth-a', lladdr: '02:00:00:00:00:fe', state: 'REACHABLE', old_state: 'INCOMPLETE', probes: n, error: null },
  });
  const router = settings('router', {
    ipv4: { forwarding: 1, conf: { all: { proxy_arp: 0 }, 'veth-r0': { proxy_arp: 1 } } },
    devices: [{ ifindex: 2, name: 'veth-r0', lladdr: '02:00:00:00:00:FE', addresses: ['192.0.2.254/24'] }],
  });
  const arrived = (skb: number) => [...cross(skb, t, 'a', 'veth-a', 'router', 'veth-r0'), ev(skb, 'nf:ipv4:forward', 'router', 'veth-r0', t), ev(skb, 'net_dev_xmit', 'router', 'veth-r1', t)];
  const out = explain([router, neigh(1), ...arrived(1), ...arrived(2)]);
  assert.deepEqual(out.map((e) => e.cause), ['proxy-arp']);
  assert.equal(out[0]!.sentence, '198.51.100.2 was answered by proxy ARP: veth-r0 in router (proxy_arp=1) answered with its own address 02:00:00:00:00:fe');
  // Without proxy_arp on the answering device, nothing.
  assert.deepEqual(explain([settings('router', { devices: router.devices! }), neigh(1), ...arrived(3)]), []);
});

test('a routed pod\'s gateway unanswered: the sender\'s lookup before its skb, the probes sent, the host side\'s proxy_arp', () => {
  const t: Tuple = { saddr: '203.0.113.10', daddr: '192.0.2.10', sport: 0, dport: 0, proto: 'icmp', flags: '' };
  const change = (event: 'send_done' | 'timer', probes: number, state = 'INCOMPLETE') => ev(0, event === 'timer' ? 'neigh:neigh_timer_handler' : 'neigh:neigh_event_send_done', 'a', 'eth0', null, {
    skb: '0x0', neigh: { event, family: 4, address: '203.0.113.1', ifindex: 2, iface: 'eth0', lladdr: null, state: state as 'INCOMPLETE', old_state: null, probes, error: null },
  });
  const host = settings('router', { ipv4: { forwarding: 1, conf: { all: { proxy_arp: 0 }, 'lxc-c': { proxy_arp: 0 } } } });
  const e = only([
    { ...host, routes: [{ family: 4, table: 'main', dst: '203.0.113.10/32', gateway: null, dev: 'lxc-c', type: 'unicast', src: null }] } as SettingsRecord,
    // A socket looks its route up before it makes the skb: the lookup is tied to none.
    ev(0, 'fib:fib_table_lookup', 'a', 'lo', t, { skb: '0x0', route: { result: 'unicast', oif_name: 'eth0', gateway: '203.0.113.1', table_name: 'main' } }),
    ev(1, 'nf:ipv4:local_out', 'a', 'eth0', t), ev(1, 'nf:ipv4:post_routing', 'a', 'eth0', t),
    // The first probe's send (repeated for a second queued packet), two retries; the FAILED change comes after the drop.
    change('send_done', 4), change('send_done', 4), change('timer', 5), change('timer', 6),
    drop(1, 'a', 'eth0', t, 'NEIGH_FAILED', 'neigh_invalidate+0x1'), change('timer', 6, 'FAILED'),
  ]);
  assert.equal(e.sentence, 'no neighbour answered for 203.0.113.1 on eth0 in a (FAILED after 3 probes)');
  const texts = e.evidence.map((x) => x.text);
  assert.equal(texts[0], 'route lookup in a (table main): unicast via 203.0.113.1 on eth0');
  assert.ok(texts.includes('neighbour 203.0.113.1 on eth0 in a: INCOMPLETE after 3 probes, unanswered; failed at the drop'), texts.join('\n'));
  assert.ok(texts.includes('lxc-c in router routes to 203.0.113.10 and would answer for 203.0.113.1 by proxy ARP: proxy_arp=0 on lxc-c'), texts.join('\n'));
});

test('a forwarded packet too big for the device its route leads out of; an unreachable route freed without a reason', () => {
  const t = icmp();
  const m = only([
    settings('router', { devices: [{ ifindex: 2, name: 'veth-r0' }, { ifindex: 3, name: 'veth-r1', mtu: 1280 }] }),
    ...cross(1, t, 'a', 'veth-a', 'router', 'veth-r0').map((r) => ({ ...r, len: 1428 })),
    ev(1, 'fib:fib_table_lookup', 'router', 'veth-r0', t, { route: { result: 'unicast', oif_name: 'veth-r1', gateway: null, table_name: 'main' } }),
    ev(1, 'icmp_send', 'router', 'veth-r0', t, { len: 1428 }), drop(1, 'router', 'veth-r0', t, 'PKT_TOO_BIG', 'ip_forward+0x1'),
  ]);
  assert.equal(m.sentence, 'too big for veth-r1 in router: 1428 bytes, mtu 1280');
  assert.ok(m.evidence.some((x) => x.text === 'settings of router: veth-r1 (veth) mtu 1280'));

  // A tunnel's outer packet with df set, refused by ip_fragment without a reason: told to the tunnel's own address.
  const outer: Tuple = { saddr: '198.51.100.1', daddr: '198.51.100.2', sport: 40000, dport: 4789, proto: 'udp', flags: '' };
  const v = only([
    ev(3, 'net_dev_start_xmit', 'router', 'vx0', t, { len: 1442, mtu: 1450 }), ev(3, 'icmp_send', 'router', 'veth-r1', outer, { len: 1478, mtu: 1280 }),
    drop(3, 'router', 'veth-r1', outer, 'NOT_SPECIFIED', 'ip_fragment.constprop.0+0x84'),
  ]);
  assert.equal(v.sentence, 'too big for veth-r1 in router: 1478 bytes, mtu 1280');
  assert.equal(v.evidence[v.evidence.length - 1]!.text, 'icmp_send: 198.51.100.1 is told (fragmentation needed / packet too big)');

  const n = only([
    ...cross(2, t, 'a', 'veth-a', 'router', 'veth-r0'),
    ev(2, 'fib:fib_table_lookup', 'router', 'veth-r0', t, { route: { result: 'unreachable', error: 'EHOSTUNREACH', oif_name: '', gateway: null, table_name: 'main' } }),
    drop(2, 'router', 'veth-r0', t, 'NOT_SPECIFIED', 'ip_error+0x1'),
  ]);
  assert.equal(n.cause, 'no-route');
  assert.equal(n.sentence, 'no route to 198.51.100.2 in router');
});

test('--explain keeps the settings records the main output writes: explain reads them back from the trace', async () => {
  const seen: SettingsNotice[] = [];
  const main = { event() {}, lost() {}, settings: (n: SettingsNotice) => seen.push(n), close: () => Promise.resolve() };
  const explainer = { journey: () => [], end: () => [], settings() {}, decision() {} };
  const sink = new ExplainSink(main, new BatchedWriter(new PassThrough()), explainer, true);
  const notice = { netns: 1, previous: null } as unknown as SettingsNotice;
  sink.settings(notice);
  await sink.close();
  assert.deepEqual(seen, [notice]);
});
