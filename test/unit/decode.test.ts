import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatAddress, formatIPv6Groups, parseAddress } from '../../src/decode/addr.js';
import { decodeEvent } from '../../src/decode/event.js';
import { EVENT_LAYOUT, EventFlags, RecordType, SECTION_HEAD, SectionKind, VLAN_TAGGED } from '../../src/decode/layout.js';

const F = EVENT_LAYOUT.fields;
const TF = EVENT_LAYOUT.tuple.fields;

/** A record as a probe writes it, at an offset inside a larger buffer (as in the ring). */
function record(at: number, fill: (v: DataView, b: Uint8Array) => void): { view: DataView; bytes: Uint8Array } {
  const buf = new ArrayBuffer(at + EVENT_LAYOUT.size + 64);
  const view = new DataView(buf, 0);
  const bytes = new Uint8Array(buf);
  const v = new DataView(buf, at);
  const b = new Uint8Array(buf, at);
  v.setUint32(F.type, RecordType.event, true);
  fill(v, b);
  return { view, bytes };
}

test('decodes every field of an IPv4 TCP event', () => {
  const { view, bytes } = record(24, (v, b) => {
    v.setUint32(F.flags, EventFlags.tuple | EventFlags.reason | EventFlags.caller, true);
    v.setBigUint64(F.ts_ns, 123456789n, true);
    v.setBigUint64(F.skb, 0xffff888104870900n, true);
    v.setBigUint64(F.caller, 0xffffffff81000010n, true);
    v.setUint32(F.point_id, 5, true);
    v.setUint32(F.cpu, 1, true);
    v.setUint32(F.pid, 4242, true);
    v.setUint32(F.netns, 4026531840, true);
    v.setUint32(F.mark, 0xdead, true);
    v.setUint32(F.ifindex, 7, true);
    v.setUint32(F.len, 60, true);
    v.setUint32(F.mtu, 1500, true);
    v.setInt32(F.stack_id, -1, true);
    v.setUint32(F.drop_reason, 12, true);
    v.setUint16(F.protocol, 0x0800, true);
    b[F.hook] = 3;
    b[F.pf] = 2;
    b.set([...Buffer.from('curl')], F.comm);
    const t = F.tuple;
    b.set([192, 0, 2, 1], t + TF.saddr);
    b.set([192, 0, 2, 2], t + TF.daddr);
    v.setUint16(t + TF.sport, 43210, true);
    v.setUint16(t + TF.dport, 80, true);
    b[t + TF.l3] = 4;
    b[t + TF.l4proto] = 6;
    b[t + TF.tcp_flags] = 0x12;
  });
  const e = decodeEvent(view, bytes, 24)!;
  assert.deepEqual(e, {
    flags: EventFlags.tuple | EventFlags.reason | EventFlags.caller,
    tsNs: 123456789n, skb: 0xffff888104870900n, caller: 0xffffffff81000010n, pointId: 5, cpu: 1, pid: 4242,
    netns: 4026531840, mark: 0xdead, ifindex: 7, len: 60, mtu: 1500, stackId: -1, dropReason: 12,
    protocol: 0x0800, hook: 3, pf: 2, comm: 'curl', funcIp: 0n,
    tuple: { l3: 4, saddr: '192.0.2.1', daddr: '192.0.2.2', sport: 43210, dport: 80, l4proto: 6, tcpFlags: 0x12 },
    vlan: null,
    packet: null,
    ct: null,
    verdict: null,
    sections: null,
  });
});

test('IPv6 tuples; no tuple without the flag; other record types are skipped', () => {
  const { view, bytes } = record(0, (v, b) => {
    v.setUint32(F.flags, EventFlags.tuple, true);
    b.set([...parseAddress('2001:db8::1')!.bytes], F.tuple + TF.saddr);
    b.set([...parseAddress('2001:db8::2')!.bytes], F.tuple + TF.daddr);
    b[F.tuple + TF.l3] = 6;
    b[F.tuple + TF.l4proto] = 58;
    b.set([...Buffer.from('a-very-long-comm-name')].slice(0, 16), F.comm);
  });
  const e = decodeEvent(view, bytes, 0)!;
  assert.equal(e.tuple?.saddr, '2001:db8::1');
  assert.equal(e.tuple?.daddr, '2001:db8::2');
  assert.equal(e.comm, 'a-very-long-comm');
  view.setUint32(F.flags, 0, true);
  assert.equal(decodeEvent(view, bytes, 0)!.tuple, null);
  view.setUint32(F.type, 99, true);
  assert.equal(decodeEvent(view, bytes, 0), null);
});

test('VLAN tags: outer first, a priority tag (id 0) is a tag, none is null', () => {
  const { view, bytes } = record(8, () => {});
  const at = 8 + F.vlan;
  const ids = () => decodeEvent(view, bytes, 8)!.vlan;
  assert.equal(ids(), null);
  view.setUint16(at, VLAN_TAGGED | 100, true);
  assert.deepEqual(ids(), [100]);
  view.setUint16(at, VLAN_TAGGED | 200, true);
  view.setUint16(at + 2, VLAN_TAGGED | 100, true);
  assert.deepEqual(ids(), [200, 100]);
  view.setUint16(at, VLAN_TAGGED | 0, true);
  view.setUint16(at + 2, 0, true);
  assert.deepEqual(ids(), [0]);
});

test('addresses: RFC 5952 text, round trips, and rejects', () => {
  for (const text of ['192.0.2.1', '0.0.0.0', '2001:db8::1', '::', '::1', '2001:db8:0:1:1:1:1:1', 'fe80::1:2', '::ffff:192.0.2.1', '2001:db8::1:0:0:1']) {
    const a = parseAddress(text)!;
    assert.ok(a, text);
    assert.equal(formatAddress(a.bytes, 0, a.l3), text);
  }
  assert.equal(formatAddress(parseAddress('2001:0db8:0000:0000:0000:0000:0000:0001')!.bytes, 0, 6), '2001:db8::1');
  assert.equal(formatAddress(parseAddress('2001:db8:0:0:1:0:0:1')!.bytes, 0, 6), '2001:db8::1:0:0:1');
  // Kept by value: addresses that differ in any one word, many of them, twice, each its own text.
  const texts: string[] = [];
  for (let i = 0; i < 3000; i++) {
    const g = [0x2001, 0xdb8, i % 3, 0, (i * 7) & 0xffff, 0, i % 5, i & 0xff];
    texts.push(formatIPv6Groups(g));
  }
  for (const round of [0, 1]) {
    for (const text of texts) assert.equal(formatAddress(parseAddress(text)!.bytes, 0, 6), text, `round ${round}`);
  }
  for (const bad of ['300.1.1.1', '1.2.3', '01.2.3.4', '1.2.3.4.5', '2001:db8:::1', '1::2::3', '12345::', 'x', '', '1:2:3:4:5:6:7:8:9']) {
    assert.equal(parseAddress(bad), null, bad);
  }
});

test('stack frames of the probe itself are dropped', async () => {
  const { dropProbeFrames } = await import('../../src/trace/stacks.js');
  assert.deepEqual(dropProbeFrames([
    'bpf_prog_3077b84defea7ff5_pktpath_tp+0xd33 [bpf]', 'bpf_trace_run4+0x8b', '__traceiter_kfree_skb+0x2f',
    'sk_skb_reason_drop+0x5c', 'nf_hook_slow+0x8e',
  ]), ['sk_skb_reason_drop+0x5c', 'nf_hook_slow+0x8e']);
  assert.deepEqual(dropProbeFrames(['x [bpf]']), ['x [bpf]']);
  // Symbols read before the probe was loaded: its frame is a bare address.
  assert.deepEqual(dropProbeFrames(['0xffffffffc0a3e5b1', 'bpf_trace_run2+0x8b', 'kfree_skb_reason+0x5c']), ['kfree_skb_reason+0x5c']);
});

test('captured packet bytes follow the event', () => {
  const { view, bytes } = record(8, (v, b) => {
    v.setUint32(F.flags, EventFlags.packet, true);
    v.setUint32(F.cap_len, 4, true);
    v.setUint32(F.cap_orig_len, 98, true);
    v.setUint16(F.cap_offset, EVENT_LAYOUT.size, true);
    b[F.cap_l2] = 1;
    b.set([0x45, 0, 0, 84], EVENT_LAYOUT.size);
  });
  const e = decodeEvent(view, bytes, 8)!;
  assert.deepEqual(e.packet, { data: Uint8Array.from([0x45, 0, 0, 84]), origLen: 98, l2: true });
  bytes[8 + EVENT_LAYOUT.size] = 0;
  assert.equal(e.packet!.data[0], 0x45, 'a copy, not a view of the ring');
});

test('the unused rest of a filter region is skipped by a branch the verifier knows is taken', async () => {
  const { skipRest } = await import('../../src/filter/inject.js');
  const rest = skipRest(100);
  assert.equal(rest.length, 100);
  assert.deepEqual([rest[1]!.code, rest[1]!.off], [0x15, 98]);
  assert.equal(skipRest(2).length, 2);
});

test('a filter region\'s length is read from the probe: the marker and the no-ops after it; one filter, encoded per length', async () => {
  const { FILTER_MAGIC, injectRegion, regionLength } = await import('../../src/filter/inject.js');
  const { Alu, Class, NOP, Src, encode, insn } = await import('../../src/bpf/insn.js');
  const marker = insn(Class.ALU64 | Alu.MOV | Src.K, 0, 0, 0, FILTER_MAGIC.l2);
  const after = insn(Class.ALU64 | Alu.MOV | Src.X, 1, 0, 0, 0);
  const program = (n: number) => encode([after, marker, ...new Array(n - 1).fill(NOP), after, NOP]);
  assert.equal(regionLength(program(6), 1), 6);
  assert.equal(regionLength(program(1), 1), 1);
  const code = [insn(Class.ALU64 | Alu.MOV | Src.K, 0, 0, 0, 1)];
  for (const n of [6, 20, 6]) {
    const out = injectRegion(program(n), FILTER_MAGIC.l2, code, 'test');
    assert.equal(out.length, program(n).length);
    // The instruction after the region is untouched: the region was as long as the probe made it.
    assert.deepEqual(out.subarray((n + 1) * 8, (n + 2) * 8), encode([after]));
    assert.equal(out.readInt16LE(3 * 8 + 2), n - 3, 'the skip over the rest of this region');
  }
});

test('a traced program\'s exit: its verdict section follows the event, and names what it returned', async () => {
  const { returnedVerdict } = await import('../../src/decode/verdict.js');
  const VF = EVENT_LAYOUT.verdict_section.fields;
  const { view, bytes } = record(16, (v) => {
    v.setUint32(F.flags, EventFlags.verdict, true);
    const len = SECTION_HEAD.size + EVENT_LAYOUT.verdict_section.size;
    v.setUint16(EVENT_LAYOUT.size, SectionKind.verdict, true);
    v.setUint16(EVENT_LAYOUT.size + SECTION_HEAD.fields.len, len, true);
    v.setUint16(F.cap_offset, EVENT_LAYOUT.size + len, true);
    const at = EVENT_LAYOUT.size + SECTION_HEAD.size;
    v.setInt32(at + VF.retval, 7, true);
    v.setUint32(at + VF.redirect_ifindex, 12, true);
    v.setUint32(at + VF.redirect_flags, 4, true);
  });
  const raw = decodeEvent(view, bytes, 16)!.verdict!;
  assert.deepEqual(raw, { retval: 7, redirectIfindex: 12, redirectFlags: 4 });
  const device = (ifindex: number) => ({ ifname: ifindex === 12 ? 'lxc-b' : '', netns: 1, netnsName: 'host' });
  const by = { id: 41, name: 'cni_redirect', hook: 'tc' as const };
  const flags = { neigh: 2, peer: 4 };
  const peer = returnedVerdict(raw, by, device, flags);
  assert.equal(peer.action, 'redirect');
  assert.deepEqual(peer.target, { kind: 'peer', direction: 'ingress', ifindex: 12, ifname: 'lxc-b', netns: 1, netnsName: 'host' });
  assert.equal(peer.inferred, false);
  assert.equal(peer.evidence, 'returned TC_ACT_REDIRECT to the peer of lxc-b');
  // bpf_redirect(ifindex, 0): the device's egress; BPF_F_NEIGH: the neighbour path.
  assert.deepEqual([0, 2].map((f) => returnedVerdict({ ...raw, redirectFlags: f }, by, device, flags).target!.kind), ['plain', 'neigh']);
  assert.equal(returnedVerdict({ ...raw, redirectFlags: 0 }, by, device, flags).target!.direction, 'egress');
  const actions = [-1, 0, 2, 4, 99].map((retval) => returnedVerdict({ retval, redirectIfindex: 0, redirectFlags: 0 }, by, device, flags));
  assert.deepEqual(actions.map((v) => v.action), ['next', 'pass', 'drop', 'stolen', 'unknown']);
  assert.equal(actions[2]!.evidence, 'returned TC_ACT_SHOT');
  assert.equal(actions[4]!.evidence, 'returned 99');
  // Newer kernels keep NEIGH and PEER at bits 16 and 17.
  assert.equal(returnedVerdict({ ...raw, redirectFlags: 1 << 17 }, by, device, { neigh: 1 << 16, peer: 1 << 17 }).target!.kind, 'peer');
  // XDP programs return enum xdp_action.
  const xdp = [0, 1, 2, 3].map((retval) => returnedVerdict({ retval, redirectIfindex: 0, redirectFlags: 0 }, { ...by, hook: 'xdp' }, device, flags));
  assert.deepEqual(xdp.map((v) => v.action), ['drop', 'drop', 'pass', 'redirect']);
  assert.equal(xdp[1]!.evidence, 'returned XDP_DROP');
  // A redirect whose target the kernel did not say: no target.
  assert.equal(returnedVerdict({ retval: 7, redirectIfindex: 0, redirectFlags: 0 }, by, device, flags).target, null);
});
