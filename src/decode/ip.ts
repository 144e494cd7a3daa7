/**
 * IPv4 and IPv6 headers in user space, read by the probes' rules
 * (probes/include/packet.h, parse_ip and parse_l4): the IPv6 extension
 * headers (hop-by-hop, routing, fragment, destination options, AH) walked up
 * to four deep, a later fragment without a transport header, ports for the
 * protocols the probes read them for. Every tuple pktpath makes from packet
 * bytes (nftables' trace events, encapsulated inner packets) comes from here, and
 * the headers a recorded tuple describes are written here (`packetFromTuple`).
 */
import { formatAddress, parseAddress } from './addr.js';
import { IPPROTO, PORTED_PROTOCOLS } from './protocols.js';
import type { Tuple } from './tuple.js';

const EXT = { HOPOPTS: 0, ROUTING: 43, FRAGMENT: 44, DSTOPTS: 60, AH: 51 } as const;
/** The probes' bound on the extension headers walked. */
const MAX_EXTENSION_HEADERS = 4;
const IPV4_OFFSET_MASK = 0x1fff;
const IPV6_OFFSET_MASK = 0xfff8;

/** Where a packet's headers are, from its IP header. */
export interface IpHeaders {
  l3: 4 | 6;
  /** Offsets of the source and destination addresses. */
  saddrAt: number;
  daddrAt: number;
  /** The transport protocol (after the extension headers). */
  l4proto: number;
  /** Offset of the transport header; -1 for a later fragment, which has none. */
  l4At: number;
  /**
   * The extension headers run past the bytes given (nftables copies 40 bytes
   * of the network header): l4proto is the next header the bytes name, and
   * the transport protocol is not known.
   */
  truncated: boolean;
}

const u16 = (b: Uint8Array, at: number) => (b[at]! << 8) | b[at + 1]!;

/** The headers of the IPv4 or IPv6 packet at `at`; null when it is neither (or shorter than its fixed header). */
export function parseIpHeaders(b: Uint8Array, at = 0): IpHeaders | null {
  if (at >= b.length) return null;
  const version = b[at]! >> 4;
  if (version === 4 && at + 20 <= b.length) {
    const l4proto = b[at + 9]!;
    // Later fragments carry no transport header.
    const later = (u16(b, at + 6) & IPV4_OFFSET_MASK) !== 0;
    return { l3: 4, saddrAt: at + 12, daddrAt: at + 16, l4proto, l4At: later ? -1 : at + (b[at]! & 0xf) * 4, truncated: false };
  }
  if (version !== 6 || at + 40 > b.length) return null;
  let next = b[at + 6]!;
  let p = at + 40;
  const headers = { l3: 6 as const, saddrAt: at + 8, daddrAt: at + 24 };
  for (let i = 0; i < MAX_EXTENSION_HEADERS; i++) {
    const kind = next;
    if (kind !== EXT.HOPOPTS && kind !== EXT.ROUTING && kind !== EXT.DSTOPTS && kind !== EXT.FRAGMENT && kind !== EXT.AH) break;
    if (p + 4 > b.length) return { ...headers, l4proto: kind, l4At: -1, truncated: true };
    next = b[p]!;
    if (kind === EXT.FRAGMENT) {
      // A later fragment: the protocol is known, its header is in the first fragment.
      if ((u16(b, p + 2) & IPV6_OFFSET_MASK) !== 0) return { ...headers, l4proto: next, l4At: -1, truncated: false };
      p += 8;
    } else {
      p += kind === EXT.AH ? (b[p + 1]! + 2) * 4 : (b[p + 1]! + 1) * 8;
    }
  }
  return { ...headers, l4proto: next, l4At: p, truncated: false };
}

/** The tuple of headers found by parseIpHeaders; the transport header from `l4` at `l4At` (its own copy when `l4` is another array). */
function tupleOf(b: Uint8Array, h: IpHeaders, l4: Uint8Array | null, l4At: number): Tuple {
  let sport = 0;
  let dport = 0;
  let tcpFlags = 0;
  if (l4 !== null && PORTED_PROTOCOLS.has(h.l4proto) && l4At + 4 <= l4.length) {
    sport = u16(l4, l4At);
    dport = u16(l4, l4At + 2);
    if (h.l4proto === IPPROTO.TCP && l4At + 14 <= l4.length) tcpFlags = l4[l4At + 13]!;
  }
  return { l3: h.l3, saddr: formatAddress(b, h.saddrAt, h.l3), daddr: formatAddress(b, h.daddrAt, h.l3), sport, dport, l4proto: h.l4proto, tcpFlags };
}

/** The tuple of the IP packet at `at` of `b` (its transport header in it); null when it is not IP. */
export function tupleFromPacket(b: Uint8Array, at = 0): Tuple | null {
  const h = parseIpHeaders(b, at);
  return h === null ? null : tupleOf(b, h, h.l4At < 0 ? null : b, h.l4At);
}

/** A tuple from separate copies of the headers, and whether its protocol and ports are known. */
export interface HeadersTuple {
  tuple: Tuple;
  /**
   * False when the extension headers run past the network copy: the tuple's
   * l4proto is the first header not copied, its ports are none, and the
   * transport copy is of a header of unknown protocol.
   */
  l4Known: boolean;
}

/**
 * The tuple of copies of a packet's network header and, when that copy stops
 * before it, its transport header (what nftables' trace events carry: at most
 * 40 bytes of the first, none of IPv6's extension headers, and the second from
 * where netfilter found it); null when the network header is not IPv4 or IPv6.
 */
export function tupleFromHeaders(network: Uint8Array, transport: Uint8Array | null): HeadersTuple | null {
  const h = parseIpHeaders(network);
  if (h === null) return null;
  if (h.truncated) return { tuple: tupleOf(network, h, null, 0), l4Known: false };
  if (h.l4At < 0) return { tuple: tupleOf(network, h, null, 0), l4Known: true };
  const inside = h.l4At < network.length;
  return { tuple: tupleOf(network, h, inside ? network : transport, inside ? h.l4At : 0), l4Known: true };
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
 * flags, every other field zero (no options, not a fragment, TTL 64): what a
 * recorded tuple describes, for filters that read packets (parseIpHeaders'
 * inverse).
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
