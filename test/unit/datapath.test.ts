/**
 * The datapath explained, without root: verdicts of other tc programs read
 * from what pktpath observes next, nft trace events and the trace table,
 * their text and JSON forms, and the inventory's text and schema.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatDatapath } from '../../src/cli/datapath.js';
import { tupleFromHeaders } from '../../src/decode/ip.js';
import { compileFilter } from '../../src/filter/expression.js';
import { expressionToNft, flagsToNft, nftRulesText } from '../../src/filter/nft-rules.js';
import type { DatapathInventory, ProgRef } from '../../src/kernel/datapath.js';
import { attr, attrList, attrString, attrStr, attrs, nested } from '../../src/kernel/netlink.js';
import { parseTrace } from '../../src/kernel/nft-trace.js';
import { TRACE_TABLE_PREFIX, parseChains, traceTableMessages } from '../../src/kernel/nftables.js';
import type { TraceEvent } from '../../src/output/event.js';
import { jsonLine } from '../../src/output/json.js';
import { formatNft } from '../../src/output/nft.js';
import { TextFormatter } from '../../src/output/text.js';
import { formatVerdict } from '../../src/output/verdict.js';
import { TraceInterleave, placeTraceEvents } from '../../src/trace/nft.js';
import { type HookPrograms, type TcPosition, VerdictStage } from '../../src/trace/verdicts.js';
import { validateDatapath, validateJsonLine } from '../helpers/schema.js';

const prog = (id: number, name: string): ProgRef => ({ id, name, tag: '0123456789abcdef', type: 'sched_cls', own: false });
const REDIRECT = prog(412, 'cni_redirect');
const POLICY = prog(17, 'cni_policy');
const HOST = 4026532001;
const POD_B = 4026532002;

let clock = 0n;
function ev(func: string, o: Partial<TraceEvent> = {}): TraceEvent {
  clock += 1000n;
  return {
    timeNs: 1_700_000_000_000_000_000n + clock, sinceStartNs: clock, skb: 0xffff888102aa5d00n, cpu: 1, pid: 42, comm: 'ping',
    netns: HOST, netnsName: 'host', mark: 0, ifindex: 2, ifname: 'lxc-a', protocol: 0x0800, mtu: 1500, len: 84,
    tuple: { l3: 4, saddr: '192.0.2.10', daddr: '198.51.100.10', sport: 0, dport: 0, l4proto: 1, tcpFlags: 0 },
    tupleBefore: null, func, probe: { type: func.startsWith('tc:') ? 'tc' : 'tracepoint', name: func },
    dropReason: null, caller: null, stack: null, packet: null, ct: null, verdict: null, nft: null, ownSrcMac: false, ...o,
  };
}

/** A stage over one hook (lxc-a ingress in the host) with `programs`, and what it let out. */
function stage(programs: HookPrograms, holdMs = 500) {
  const out: TraceEvent[] = [];
  const s = new VerdictStage((netns, ifindex, dir) => (netns === HOST && ifindex === 2 && dir === 'ingress' ? programs : undefined),
    (e) => out.push(e), holdMs);
  const push = (e: TraceEvent, position: TcPosition | null = null, now = 0) => s.push(e, position, now);
  return { s, out, push };
}

test('a peer redirect: first observer saw it, the next sight is another device\'s tc ingress', () => {
  const { out, push } = stage({ between: [REDIRECT], after: [] });
  push(ev('netif_receive_skb'));
  push(ev('tc:ingress'), 'first');
  assert.equal(out.length, 1, 'the tc event is held until its verdict is known');
  push(ev('tc:ingress', { netns: POD_B, netnsName: 'pod-b', ifname: 'eth0', ifindex: 2 }), 'last');
  push(ev('nf:ipv4:pre_routing', { netns: POD_B, ifname: 'eth0' }));
  assert.deepEqual(out.map((e) => e.func), ['netif_receive_skb', 'tc:ingress', 'tc:ingress', 'nf:ipv4:pre_routing'], 'order kept');
  const v = out[1]!.verdict!;
  assert.equal(v.action, 'redirect');
  assert.deepEqual(v.target, { kind: 'peer', direction: 'ingress', ifindex: 2, ifname: 'eth0', netns: POD_B, netnsName: 'pod-b' });
  assert.equal(v.inferred, true);
  assert.equal(formatVerdict(v), 'REDIRECT peer \u2192 eth0@pod-b by cni_redirect#412 [inferred]');
});

test('a pass seen by the last observer is not inferred, and the last observer\'s own event is absorbed', () => {
  const { out, push } = stage({ between: [REDIRECT], after: [] });
  push(ev('tc:ingress'), 'first');
  push(ev('tc:ingress'), 'last');
  push(ev('nf:ipv4:pre_routing'));
  assert.deepEqual(out.map((e) => e.func), ['tc:ingress', 'nf:ipv4:pre_routing']);
  assert.equal(out[0]!.verdict!.action, 'pass');
  assert.equal(out[0]!.verdict!.inferred, false);
  assert.equal(formatVerdict(out[0]!.verdict!), 'PASS by cni_redirect#412');
});

test('legacy tc after the chain: a drop names its programs and the kernel\'s reason', () => {
  const { out, push } = stage({ between: [], after: [POLICY] });
  push(ev('tc:ingress'), 'last');
  push(ev('kfree_skb', { dropReason: 'TC_INGRESS' }));
  assert.equal(out[0]!.verdict!.action, 'drop');
  assert.equal(formatVerdict(out[0]!.verdict!), 'DROP by cni_policy#17 (TC_INGRESS) [inferred]');
  // Passed both the tcx programs and then the legacy ones: one verdict for the hook, of the programs that decided last.
  const two = stage({ between: [REDIRECT], after: [POLICY] });
  two.push(ev('tc:ingress'), 'first');
  two.push(ev('tc:ingress'), 'last');
  two.push(ev('ip_rcv_core_or_nf', { func: 'nf:ipv4:pre_routing' }));
  assert.equal(two.out[0]!.verdict!.action, 'pass');
  assert.deepEqual(two.out[0]!.verdict!.by.map((p) => p.id), [17]);
});

test('redirects to another device\'s egress: neighbour when the frame\'s source is that device\'s own address', () => {
  for (const [own, kind] of [[true, 'neigh'], [false, 'plain']] as const) {
    const { out, push } = stage({ between: [REDIRECT], after: [] });
    push(ev('tc:ingress'), 'first');
    push(ev('tc:egress', { ifindex: 3, ifname: 'eth1', ownSrcMac: own }), 'last');
    assert.equal(out[0]!.verdict!.target!.kind, kind);
    assert.equal(out[0]!.verdict!.target!.direction, 'egress');
  }
  const { out, push } = stage({ between: [REDIRECT], after: [] });
  push(ev('tc:ingress'), 'first');
  push(ev('netif_rx', { ifindex: 3, ifname: 'eth1' }));
  assert.equal(out[0]!.verdict!.target!.kind, 'plain');
  assert.equal(out[0]!.verdict!.target!.direction, 'ingress');
});

test('an skb not seen again within the hold time, or at the end, gets unknown; other skbs wait in order', () => {
  const { s, out, push } = stage({ between: [REDIRECT], after: [] }, 100);
  push(ev('tc:ingress'), 'first', 0);
  push(ev('netif_receive_skb', { skb: 0x1234n }), null, 10);
  assert.equal(out.length, 0);
  s.tick(50);
  assert.equal(out.length, 0);
  s.tick(150);
  assert.deepEqual(out.map((e) => e.func), ['tc:ingress', 'netif_receive_skb']);
  assert.equal(out[0]!.verdict!.action, 'unknown');
  push(ev('tc:ingress'), 'first', 200);
  s.flush();
  assert.equal(out[2]!.verdict!.action, 'unknown');
});

test('hooks without other programs pass events straight through', () => {
  const { out, push } = stage({ between: [], after: [] });
  push(ev('tc:ingress'), 'last');
  assert.equal(out.length, 1);
  assert.equal(out[0]!.verdict, null);
});

/** A trace event of nftables at `func`, for the skb `skb`, dated (as NftTracer dates it) at its packet's first record `first`. */
const nftEv = (func: string, skb: bigint, rule: string, first?: TraceEvent) => ev(func, {
  skb, probe: { type: 'nft', name: 'nft' }, ...(first ? { sinceStartNs: first.sinceStartNs } : {}),
  nft: { family: 'inet', table: 'cni', chain: 'forward', handle: 4, rule, kind: 'rule', verdict: 'drop', target: null, traceId: 1 },
});
const wrapped = (e: TraceEvent) => ({ e });
const funcs = (list: Array<{ e: TraceEvent }>) => list.map(({ e }) => `${e.probe.type === 'nft' ? 'nft ' : ''}${e.func}`);

test('trace events go after their skb at the same hook, else before its end, else last, with the time of what they follow', () => {
  const A = 0xffff8881000a0000n;
  const B = 0xffff8881000b0000n;
  const batch = [ev('nf:ipv4:pre_routing', { skb: A }), ev('nf:ipv4:forward', { skb: A }), ev('kfree_skb', { skb: A }),
    ev('nf:ipv4:local_in', { skb: B }), ev('consume_skb', { skb: B })].map(wrapped);
  const atHook = nftEv('nf:ipv4:forward', A, 'drop', batch[0]!.e);
  const noHook = nftEv('nf:ipv4:input', B, 'accept', batch[3]!.e);
  const unknown = nftEv('nf:ipv4:forward', 0n, 'accept');
  const placed = placeTraceEvents(batch, [atHook, noHook, unknown], wrapped);
  assert.deepEqual(funcs(placed), ['nf:ipv4:pre_routing', 'nf:ipv4:forward', 'nft nf:ipv4:forward', 'kfree_skb',
    'nf:ipv4:local_in', 'nft nf:ipv4:input', 'consume_skb', 'nft nf:ipv4:forward']);
  const [placedAtHook, placedNoHook] = placed.filter(({ e }) => e.probe.type === 'nft').map(({ e }) => e);
  assert.equal(placedAtHook!.sinceStartNs, batch[1]!.e.sinceStartNs);
  assert.equal(placedNoHook!.sinceStartNs, batch[3]!.e.sinceStartNs);
  // The events handed in keep their own time: what is placed is a copy.
  assert.equal(atHook.sinceStartNs, batch[0]!.e.sinceStartNs);
});

test('an skb\'s address used again by the next packet: each trace event goes into its own packet\'s path', () => {
  const A = 0xffff8881000a0000n;
  const first = [ev('netif_receive_skb', { skb: A }), ev('nf:ipv4:local_in', { skb: A }), ev('consume_skb', { skb: A })];
  const second = [ev('netif_receive_skb', { skb: A }), ev('nf:ipv4:local_in', { skb: A }), ev('consume_skb', { skb: A })];
  const ofFirst = nftEv('nf:ipv4:local_in', A, 'accept', first[0]);
  const ofSecond = nftEv('nf:ipv4:local_in', A, 'accept', second[0]);
  const placed = placeTraceEvents([...first, ...second].map(wrapped), [ofFirst, ofSecond], wrapped).map(({ e }) => e);
  const dated = (n: TraceEvent, at: TraceEvent) => ({ ...n, timeNs: at.timeNs, sinceStartNs: at.sinceStartNs });
  assert.deepEqual(placed, [first[0], first[1], dated(ofFirst, first[1]!), first[2], second[0], second[1], dated(ofSecond, second[1]!), second[2]]);
});

test('records wait one pump for trace events polled after them: a drop read before its nft verdict still follows it', () => {
  const A = 0xffff8881000a0000n;
  const B = 0xffff8881000b0000n;
  const interleave = new TraceInterleave(wrapped);
  // The ring held the drop; nftables' event of the same packet came after the poll before that drain.
  const first = [ev('nf:ipv4:pre_routing', { skb: A }), ev('nf:ipv4:forward', { skb: A }), ev('kfree_skb', { skb: A })].map(wrapped);
  assert.deepEqual(interleave.next(first, []), []);
  const second = [ev('netif_receive_skb', { skb: B }), ev('nf:ipv4:forward', { skb: B })].map(wrapped);
  const out = interleave.next(second, [nftEv('nf:ipv4:forward', A, 'drop', first[0]!.e)]);
  assert.deepEqual(funcs(out), ['nf:ipv4:pre_routing', 'nf:ipv4:forward', 'nft nf:ipv4:forward', 'kfree_skb']);
  // No longer than one pump: the next one lets the second batch out, with a trace event the last poll brought.
  const third = [ev('consume_skb', { skb: B })].map(wrapped);
  assert.deepEqual(funcs(interleave.next(third, [nftEv('nf:ipv4:forward', B, 'accept', second[0]!.e)])),
    ['netif_receive_skb', 'nf:ipv4:forward', 'nft nf:ipv4:forward']);
  assert.deepEqual(funcs(interleave.flush([])), ['consume_skb']);
  assert.deepEqual(interleave.flush([nftEv('nf:ipv4:forward', 0n, 'accept')]).length, 1);
});

/** An NFT_MSG_TRACE payload as the kernel sends it: nfgenmsg, then big-endian attributes. */
function traceMessage(o: { type: number; handle?: bigint; verdict?: number; network?: Buffer; transport?: Buffer }): Buffer {
  const be32 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeInt32BE(n);
    return b;
  };
  const parts = [Buffer.from([1, 0, 0, 0]), attrString(1, 'filter'), attrString(2, 'input'), attr(4, be32(o.type)), attr(6, be32(0x1234abcd))];
  if (o.handle !== undefined) {
    const h = Buffer.alloc(8);
    h.writeBigUInt64BE(o.handle);
    parts.push(attr(3, h));
  }
  if (o.verdict !== undefined) parts.push(nested(5, attr(1, be32(o.verdict))));
  if (o.network) parts.push(attr(8, o.network));
  if (o.transport) parts.push(attr(9, o.transport));
  parts.push(attr(10, be32(2)), attr(15, be32(2)));
  return Buffer.concat(parts);
}

const IPV4_UDP = Buffer.from('450000210001000040110000c6336410c000020a', 'hex');
const UDP_9999 = Buffer.from('d431270f000d0000', 'hex');

test('nft trace events parse: table, chain, handle, verdict, the packet\'s headers', () => {
  const t = parseTrace(traceMessage({ type: 3, handle: 7n, verdict: 0, network: IPV4_UDP, transport: UDP_9999 }))!;
  assert.equal(t.family, 'inet');
  assert.equal(t.table, 'filter');
  assert.equal(t.chain, 'input');
  assert.equal(t.handle, 7);
  assert.equal(t.type, 'rule');
  assert.equal(t.verdict, 'drop');
  assert.equal(t.id, 0x1234abcd);
  assert.equal(t.iif, 2);
  assert.deepEqual(tupleFromHeaders(t.network!, t.transport), {
    tuple: { l3: 4, saddr: '198.51.100.16', daddr: '192.0.2.10', sport: 54321, dport: 9999, l4proto: 17, tcpFlags: 0 },
    l4Known: true,
  });
  const policy = parseTrace(traceMessage({ type: 1, verdict: 1 }))!;
  assert.equal(policy.type, 'policy');
  assert.equal(policy.verdict, 'accept');
  assert.equal(policy.handle, null);
  assert.equal(parseTrace(traceMessage({ type: 9 })), null);
});

test('nft evaluations read like the rule they name, in text and JSON', () => {
  const nft = { family: 'inet', table: 'filter', chain: 'input', handle: 7, rule: 'udp dport 9999 drop', kind: 'rule' as const,
    verdict: 'drop', target: null, traceId: 1 };
  assert.equal(formatNft(nft), 'nft inet filter input #7 "udp dport 9999 drop" \u2192 DROP');
  assert.equal(formatNft({ ...nft, kind: 'policy', handle: null, rule: null, verdict: 'accept' }), 'nft inet filter input policy \u2192 ACCEPT');
  const e = ev('nf:ipv4:local_in', { probe: { type: 'nft', name: 'nft' }, nft });
  const line = jsonLine(e, { stack: false });
  assert.equal(validateJsonLine(line), null);
  const { traceId, ...rest } = nft;
  assert.deepEqual(JSON.parse(line).nft, { ...rest, trace_id: traceId });
  const text = new TextFormatter({ tuple: false, meta: false, stack: false, caller: false, tcpFlags: false, timestamp: 'none', color: false });
  assert.match(text.formatEvent(e), /nf:ipv4:local_in nft inet filter input #7 "udp dport 9999 drop" → DROP$/);
});

test('verdicts validate against the schema and sit on the text line', () => {
  const { out, push } = stage({ between: [REDIRECT], after: [] });
  push(ev('tc:ingress'), 'first');
  push(ev('tc:ingress', { netns: POD_B, netnsName: 'pod-b', ifname: 'eth0' }), 'last');
  const line = jsonLine(out[0]!, { stack: false });
  assert.equal(validateJsonLine(line), null, line);
  assert.equal(JSON.parse(line).verdict.target.kind, 'peer');
  const text = new TextFormatter({ tuple: false, meta: false, stack: false, caller: false, tcpFlags: false, timestamp: 'none', color: false });
  assert.match(text.formatEvent(out[0]!), /tc:ingress REDIRECT peer → eth0@pod-b by cni_redirect#412 \[inferred\]$/);
});

test('the classic flags become nft rules; either-side flags one rule per side', () => {
  const v4 = (text: string) => ({ l3: 4 as const, bytes: new Uint8Array(text.split('.').map(Number)), text });
  assert.deepEqual(nftRulesText(flagsToNft({})), ['']);
  assert.deepEqual(nftRulesText(flagsToNft({ dstIp: v4('192.0.2.2'), proto: 17, dstPort: 53 })), ['ip daddr 192.0.2.2 meta l4proto 17 th dport 53']);
  const either = nftRulesText(flagsToNft({ ip: v4('192.0.2.2'), port: 80 }));
  assert.equal(either.length, 2 * 3 * 2, 'two sides, three protocols with ports, two port sides');
  assert.equal(either[0], 'ip saddr 192.0.2.2 meta l4proto 6 th sport 80');
  assert.deepEqual(nftRulesText(flagsToNft({}, { value: 0x42, mask: 0xff })), ['meta mark & 0xff == 0x42']);
});

test('a tcpdump expression goes into the trace table as iptables\' bpf match, where it fits', () => {
  const icmp = compileFilter('icmp');
  const rules = expressionToNft(icmp, { value: 0x42, mask: 0xff })!;
  assert.deepEqual(nftRulesText(rules), ['xt match bpf "icmp" meta mark & 0xff == 0x42']);
  const match = traceTableMessages('t', rules).filter((m) => (m.type & 0xff) === 6)
    .map((m) => attrList(attrs(m.payload, 4).get(4)!).map(([, e]) => attrs(e)).find((e) => attrStr(e.get(1)) === 'match')!);
  assert.equal(match.length, 2, 'one rule per chain');
  const data = attrs(match[0]!.get(2)!);
  assert.equal(attrStr(data.get(1)), 'bpf');
  assert.equal(data.get(2)!.readUInt32BE(0), 0, 'revision 0');
  // struct xt_bpf_info: the length, the program from byte 4, room for 64 instructions, then the kernel's pointer.
  const info = data.get(3)!;
  assert.equal(info.length, 528);
  assert.equal(info.readUInt16LE(0), icmp.l3.cbpf.length);
  const last = icmp.l3.cbpf[icmp.l3.cbpf.length - 1]!;
  const at = 4 + 8 * (icmp.l3.cbpf.length - 1);
  assert.deepEqual([info.readUInt16LE(at), info[at + 2], info[at + 3], info.readUInt32LE(at + 4)], [last.code, last.jt, last.jf, last.k]);
  // Too long for the match, or needing a link-layer header: nftables traces every packet.
  assert.equal(expressionToNft(compileFilter(`icmp or ${Array.from({ length: 16 }, (_, i) => `udp port ${i + 1}`).join(' or ')}`)), null);
  assert.equal(expressionToNft(compileFilter('ether host 02:00:00:00:00:01')), null);
});

test('the trace table is owned, first of all, and only sets nftrace', () => {
  const rules = flagsToNft({ ip: { l3: 4, bytes: new Uint8Array([192, 0, 2, 2]), text: '192.0.2.2' } });
  const msgs = traceTableMessages(`${TRACE_TABLE_PREFIX}123`, rules);
  const type = (m: { type: number }) => m.type & 0xff;
  assert.deepEqual(msgs.map(type), [0, 3, 6, 6, 3, 6, 6], 'table, then per chain its two rules');
  const table = attrs(msgs[0]!.payload, 4);
  assert.equal(attrStr(table.get(1)), 'pktpath_trace_123');
  assert.equal(table.get(2)!.readUInt32BE(0), 2, 'NFT_TABLE_F_OWNER');
  for (const chain of msgs.filter((m) => type(m) === 3)) {
    const hook = attrs(attrs(chain.payload, 4).get(4)!);
    assert.equal(hook.get(2)!.readInt32BE(0), -2147483648, 'the earliest priority');
  }
  for (const rule of msgs.filter((m) => type(m) === 6)) {
    const names = attrList(attrs(rule.payload, 4).get(4)!).map(([, e]) => attrStr(attrs(e).get(1)));
    // Loads and compares, then the mark: no verdict of its own, so nobody's packets fare differently.
    assert.deepEqual(names.slice(-2), ['immediate', 'meta']);
    assert.ok(names.every((n) => ['meta', 'cmp', 'payload', 'immediate'].includes(n!)), names.join(','));
  }
});

test('nft chain listings parse: tables, base chains with hook, priority, devices', () => {
  const listing = parseChains([
    'table inet cni {', '\tchain forward { # handle 1', '\t\ttype filter hook forward priority 0; policy accept;', '\t}',
    '\tchain helper { # handle 2', '\t}', '}',
    'table netdev edge {', '\tchain ing { # handle 1', '\t\ttype filter hook ingress device "lxc-a" priority -5; policy drop;', '\t}', '}',
    'table inet empty {', '}', '',
  ].join('\n'));
  assert.deepEqual(listing.tables.map((t) => `${t.family} ${t.name}`), ['inet cni', 'netdev edge', 'inet empty']);
  assert.deepEqual(listing.baseChains, [
    { family: 'inet', table: 'cni', name: 'forward', handle: 1, type: 'filter', hook: 'forward', priority: 0, policy: 'accept', devices: [] },
    { family: 'netdev', table: 'edge', name: 'ing', handle: 1, type: 'filter', hook: 'ingress', priority: -5, policy: 'drop', devices: ['lxc-a'] },
  ]);
});

test('the inventory reads per namespace and validates against its schema', () => {
  const inv: DatapathInventory = {
    namespaces: [{
      netns: { inode: HOST, name: 'host' },
      devices: [
        { ifindex: 1, name: 'lo', xdp: null, tc: { ingress: { tcx: [], legacy: [] }, egress: { tcx: [], legacy: [] } } },
        {
          ifindex: 2, name: 'lxc-a', xdp: null,
          tc: {
            ingress: { tcx: [{ ...REDIRECT, linkId: 9 }, { ...prog(500, 'pktpath_tc'), own: true, linkId: 10 }], legacy: [] },
            egress: { tcx: [], legacy: [{ ...POLICY, priority: 49152, handle: 1, tcName: 'policy_drop.bpf.o:[tc]', directAction: true }] },
          },
        },
      ],
      nft: {
        tables: [{ family: 'inet', name: 'cni' }],
        baseChains: [{ family: 'inet', table: 'cni', name: 'forward', handle: 1, type: 'filter', hook: 'forward', priority: 0, policy: 'accept', devices: [] }],
      },
      settings: null,
      errors: [],
    }],
    netfilter: [{ ...prog(600, 'pktpath_nf'), type: 'netfilter', own: true, linkId: 11, family: 'ipv4', hook: 'local_in', priority: -199 }],
    cgroupSkb: [],
  };
  assert.equal(validateDatapath({ schema: 'pktpath.datapath.v1', ...inv }), null);
  const text = formatDatapath(inv);
  assert.match(text, /^netns host \(inode 4026532001\)\n {2}lxc-a \(ifindex 2\)\n {4}tc ingress tcx\[0\]: cni_redirect#412 sched_cls tag 0123456789abcdef link 9\n/);
  assert.match(text, /tc ingress tcx\[1\]: pktpath_tc#500 \(pktpath\)/);
  assert.match(text, /tc egress clsact pref 49152 handle 0x1: cni_policy#17 tag 0123456789abcdef policy_drop\.bpf\.o:\[tc\] direct-action/);
  assert.match(text, /no tc or XDP programs: lo/);
  assert.match(text, /nft table inet cni\n {4}chain forward: type filter hook forward priority 0 policy accept/);
  assert.match(text, /ipv4 local_in priority -199: pktpath_nf#600 \(pktpath\) link 11/);
  assert.notEqual(validateDatapath({ schema: 'pktpath.datapath.v1', ...inv, namespaces: [{ netns: {} }] }), null);
});
