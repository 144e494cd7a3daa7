/**
 * The same tcpdump expressions on recorded events, in user space (`pktpath
 * show`): libpcap's own interpreter runs the program on the bytes the event
 * captured, or, when it captured none, on the headers its tuple describes
 * (addresses, protocol, ports, TCP flags), so a trace recorded without
 * packet bytes can still be narrowed to a host, a port or a SYN.
 */
import { parseAddress } from '../decode/addr.js';
import { IPPROTO } from '../decode/protocols.js';
import type { Tuple } from '../decode/tuple.js';
import { type CbpfInsn, FilterSyntaxError, LinkType, compilePcap, pcapVerdict } from './pcap.js';

export interface RecordedFilter {
  expression: string;
  l2: CbpfInsn[];
  /** Null when the expression needs a link-layer header (arp, ether host): no network-layer packet matches. */
  l3: CbpfInsn[] | null;
}

/** Compiles for both link types; a syntax error names the expression, as the live filter's does. */
export function compileRecordedFilter(expression: string): RecordedFilter {
  let l2: CbpfInsn[];
  try {
    l2 = compilePcap(expression, LinkType.ETHERNET);
  } catch (e) {
    if (e instanceof FilterSyntaxError) throw new FilterSyntaxError(`filter '${expression}': ${e.message}`);
    throw e;
  }
  let l3: CbpfInsn[] | null;
  try {
    l3 = compilePcap(expression, LinkType.RAW);
  } catch {
    l3 = null;
  }
  return { expression, l2, l3 };
}

/** Whether captured bytes match (`l2`: they start at the Ethernet header). */
export function bytesMatch(f: RecordedFilter, data: Uint8Array, l2: boolean, wireLen: number): boolean {
  const program = l2 ? f.l2 : f.l3;
  return program !== null && pcapVerdict(program, data, Math.max(wireLen, data.length)) !== 0;
}

/** Whether the headers a tuple describes match. */
export function tupleMatches(f: RecordedFilter, t: Tuple): boolean {
  return f.l3 !== null && pcapVerdict(f.l3, packetFromTuple(t)) !== 0;
}

/** Transport header bytes written for each protocol: enough for every field a tuple holds. */
function transportLength(proto: number): number {
  switch (proto) {
    case IPPROTO.TCP:
      return 20;
    case IPPROTO.UDP:
    case IPPROTO.UDPLITE:
    case IPPROTO.ICMP:
    case IPPROTO.ICMPV6:
      return 8;
    case IPPROTO.SCTP:
    case IPPROTO.DCCP:
      return 12;
    default:
      return 0;
  }
}

/**
 * An IPv4 or IPv6 packet with the tuple's addresses, protocol, ports and TCP
 * flags, every other field zero (no options, not a fragment, TTL 64).
 */
export function packetFromTuple(t: Tuple): Uint8Array {
  const l4 = transportLength(t.l4proto);
  const ipLen = t.l3 === 4 ? 20 : 40;
  const p = new Uint8Array(ipLen + l4);
  const v = new DataView(p.buffer);
  const s = parseAddress(t.saddr)?.bytes;
  const d = parseAddress(t.daddr)?.bytes;
  if (t.l3 === 4) {
    p[0] = 0x45;
    v.setUint16(2, p.length);
    p[8] = 64;
    p[9] = t.l4proto;
    if (s) p.set(s, 12);
    if (d) p.set(d, 16);
  } else {
    p[0] = 0x60;
    v.setUint16(4, l4);
    p[6] = t.l4proto;
    p[7] = 64;
    if (s) p.set(s, 8);
    if (d) p.set(d, 24);
  }
  if (l4 >= 4 && t.l4proto !== IPPROTO.ICMP && t.l4proto !== IPPROTO.ICMPV6) {
    v.setUint16(ipLen, t.sport);
    v.setUint16(ipLen + 2, t.dport);
  }
  if (t.l4proto === IPPROTO.TCP) {
    p[ipLen + 12] = 5 << 4;
    p[ipLen + 13] = t.tcpFlags;
  } else if (t.l4proto === IPPROTO.UDP) {
    v.setUint16(ipLen + 4, 8);
  }
  return p;
}
