/**
 * nftables' trace events tied to the skbs the ring saw (src/trace/nft-ties.ts),
 * pump by pump as the session hands them over: the socket's reads with the
 * times around them, the ring's records read after each.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { NftTrace } from '../../src/kernel/nft-trace.js';
import type { TraceEvent } from '../../src/output/event.js';
import { type TraceRead, TraceTies } from '../../src/trace/nft-ties.js';

const OWN = 'pktpath_trace_42';
const NETNS = 4026532002;
const SKB = 0xffff888102aa5d00n;
const ms = (n: number) => BigInt(Math.round(n * 1e6));

/** An IPv4 ICMP header (192.0.2.1 → 192.0.2.2): every echo request of a ping has the same tuple. */
const ICMP_REQUEST = Buffer.from('45000054000040004001000bc0000201c0000202', 'hex');

/** A ring record of the ping's echo request in the namespace, at `atNs` since the start. */
function record(func: string, atNs: bigint, skb = SKB): TraceEvent {
  return {
    timeNs: atNs, sinceStartNs: atNs, skb, cpu: 0, pid: 7, comm: 'ping', netns: NETNS, netnsName: 'b', mark: 0, ifindex: 2,
    ifname: 'veth-b', protocol: 0x0800, mtu: 1500, len: 84,
    tuple: { l3: 4, saddr: '192.0.2.1', daddr: '192.0.2.2', sport: 0, dport: 0, l4proto: 1, tcpFlags: 0 },
    tupleBefore: null, func, probe: { type: 'tracepoint', name: func }, dropReason: null, caller: null, stack: null,
    packet: null, ct: null, verdict: null, nft: null, ownSrcMac: false,
  };
}

/** The path of one echo request through the namespace, from `atNs`, 50 µs long. */
const received = (atNs: bigint, skb = SKB) => [
  record('netif_receive_skb', atNs, skb), record('nf:ipv4:pre_routing', atNs + 10_000n, skb),
  record('nf:ipv4:local_in', atNs + 20_000n, skb), record('consume_skb', atNs + 50_000n, skb),
];

/** A trace event: pktpath's own table starts each packet's trace (with the headers), a rule of `t` follows. */
function trace(id: number, own: boolean): NftTrace {
  return {
    id, family: 'inet', table: own ? OWN : 't', chain: own ? 'trace_prerouting' : 'input', handle: 2, type: 'rule',
    verdict: own ? 'continue' : 'accept', target: null, nfproto: 2, iif: 2, oif: 0, mark: 0,
    network: own ? ICMP_REQUEST : null, transport: own ? Buffer.alloc(8) : null,
  };
}

/**
 * The session's pumps: each reads the socket between `afterNs` (when the
 * previous read began) and `byNs`, then notes the ring's records, then settles.
 */
class Pumps {
  readonly ties = new TraceTies<null>(OWN);
  private readStartNs = 0n;

  pump(read: { fromNs: number; byNs: number; traces: NftTrace[] }, records: TraceEvent[]) {
    const reads: Array<TraceRead<null>> = read.traces.map((t) => ({
      from: null, netns: NETNS, trace: t, afterNs: this.readStartNs, byNs: ms(read.byNs),
    }));
    this.readStartNs = ms(read.fromNs);
    for (const r of records) this.ties.note(r);
    return this.ties.settle(reads).map(({ read: r, start }) => ({ id: r.trace.id, table: r.trace.table, firstNs: start.seen?.firstNs }));
  }
}

test('a trace queued after a pump began but before its read ties to its own packet, not the one before it', () => {
  const p = new Pumps();
  // The first echo request, read and tied in one pump.
  assert.deepEqual(p.pump({ fromNs: 1, byNs: 1.1, traces: [trace(1, true), trace(1, false)] }, received(ms(0.5))),
    [{ id: 1, table: OWN, firstNs: ms(0.5) }, { id: 1, table: 't', firstNs: ms(0.5) }]);
  // The pump began at 50 ms; the second request arrived at 50.01 ms, its trace was queued before the read at 50.2 ms.
  assert.deepEqual(p.pump({ fromNs: 50, byNs: 50.2, traces: [trace(2, true), trace(2, false)] }, received(ms(50.01))),
    [{ id: 2, table: OWN, firstNs: ms(50.01) }, { id: 2, table: 't', firstNs: ms(50.01) }]);
});

test('at output the trace comes before the packet\'s first record: it waits one pump, then ties to it', () => {
  const p = new Pumps();
  assert.deepEqual(p.pump({ fromNs: 1, byNs: 1.1, traces: [trace(1, true)] }, received(ms(0.5))), [{ id: 1, table: OWN, firstNs: ms(0.5) }]);
  // Read at 50.1 ms: the packet's first record (the netfilter observer after pktpath's table) is written at 50.101 ms.
  const sent = [record('nf:ipv4:local_out', ms(50.101)), record('net_dev_xmit', ms(50.11))];
  assert.deepEqual(p.pump({ fromNs: 50, byNs: 50.1, traces: [trace(2, true), trace(2, false)] }, []), []);
  assert.deepEqual(p.pump({ fromNs: 55, byNs: 55.1, traces: [] }, sent),
    [{ id: 2, table: OWN, firstNs: ms(50.101) }, { id: 2, table: 't', firstNs: ms(50.101) }]);
});

test('two packets of a flow between two reads each get their own skb, in order; a reused trace id starts anew', () => {
  const p = new Pumps();
  const OTHER = 0xffff888102aa7000n;
  // The same skb address and flow hash give the same trace id: pktpath's table starts each packet's trace.
  const out = p.pump({ fromNs: 10, byNs: 10.1, traces: [trace(7, true), trace(7, false), trace(7, true), trace(7, false)] },
    [...received(ms(1)), ...received(ms(2), OTHER)]);
  assert.deepEqual(out.map((x) => x.firstNs), [ms(1), ms(1), ms(2), ms(2)]);
});

test('a packet gone before the previous read began had its trace read then: a later trace does not take it', () => {
  const p = new Pumps();
  // The first request's trace was lost (the socket overflowed); the second's ties to the second.
  assert.deepEqual(p.pump({ fromNs: 10, byNs: 10.1, traces: [] }, received(ms(1))), []);
  assert.deepEqual(p.pump({ fromNs: 60, byNs: 60.1, traces: [trace(2, true)] }, received(ms(55))), [{ id: 2, table: OWN, firstNs: ms(55) }]);
});

test('a trace of a packet the ring never shows waits one pump, then goes untied', () => {
  const p = new Pumps();
  assert.deepEqual(p.pump({ fromNs: 1, byNs: 1.1, traces: [trace(3, true), trace(3, false)] }, []), []);
  assert.deepEqual(p.pump({ fromNs: 6, byNs: 6.1, traces: [] }, []),
    [{ id: 3, table: OWN, firstNs: undefined }, { id: 3, table: 't', firstNs: undefined }]);
});

test('a read late by 200 ms (40 requests of a ping, 5 ms apart, on one skb address): each trace ties to its own request, in order', () => {
  const p = new Pumps();
  assert.deepEqual(p.pump({ fromNs: 1, byNs: 1.1, traces: [] }, []), []);
  const arrivals = Array.from({ length: 40 }, (_, i) => ms(2 + 5 * i));
  const out = p.pump({ fromNs: 205, byNs: 205.2, traces: arrivals.flatMap((_, i) => [trace(100 + i, true), trace(100 + i, false)]) },
    arrivals.flatMap((at) => received(at)));
  assert.deepEqual(out.map((x) => x.firstNs), arrivals.flatMap((at) => [at, at]));
});

test('sightings no trace can take are let go: a flow never traced holds none of its ended packets past a read', () => {
  const p = new Pumps();
  for (let pump = 0; pump < 50; pump++) {
    const from = pump * 5;
    const records = Array.from({ length: 100 }, (_, i) => received(ms(from + i * 0.04), SKB + BigInt(i % 7) * 0x100n)).flat();
    p.pump({ fromNs: from + 4.9, byNs: from + 4.95, traces: pump === 49 ? [trace(1, true)] : [] }, records);
  }
  // The last read's trace looked at the flow: only the packets of the last 5 ms may still be its.
  assert.ok(p.ties.sightings.size <= 100, `${p.ties.sightings.size} sightings held`);
});

test('IPv6 with a hop-by-hop header (nftables copies none of it): the trace ties to the flow whose ports the transport copy holds, with its tuple', () => {
  const p = new Pumps();
  const V6 = '20010db8000000000000000000000001';
  const udp = (sport: number, dport: number) => ({ l3: 6 as const, saddr: '2001:db8::1', daddr: '2001:db8::2', sport, dport, l4proto: 17, tcpFlags: 0 });
  const at = (t: ReturnType<typeof udp>, atNs: bigint, skb: bigint) => received(atNs, skb).map((r) => ({ ...r, protocol: 0x86dd, tuple: t }));
  // The fixed header only (next header 0, hop-by-hop), then the UDP header from where netfilter found it.
  const hbh: NftTrace = {
    ...trace(9, true), nfproto: 10,
    network: Buffer.from(`6000000000100040${V6}${V6.replace(/1$/, '2')}`, 'hex'), transport: Buffer.from('a4921b59000b0000', 'hex'),
  };
  // Read before its packet's records: it waits a pump; another flow between the same addresses, untied, is not its.
  const OTHER = 0xffff888102aa7000n;
  assert.deepEqual(p.pump({ fromNs: 1, byNs: 1.1, traces: [hbh] }, at(udp(40000, 53), ms(0.2), OTHER)), []);
  assert.deepEqual(p.pump({ fromNs: 6, byNs: 6.1, traces: [] }, at(udp(42130, 7001), ms(1.15), SKB)), [{ id: 9, table: OWN, firstNs: ms(1.15) }]);
  // The start took the skb's tuple: the protocol and ports its headers did not name.
  const [{ start }] = p.ties.settle([{ from: null, netns: NETNS, trace: { ...hbh, id: 9, table: 't', network: null, transport: null }, afterNs: ms(6), byNs: ms(6.2) }]);
  assert.deepEqual(start!.tuple, udp(42130, 7001));
  assert.equal(start!.seen!.skb, SKB);
});
