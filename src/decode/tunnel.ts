/**
 * The tunnel section (--output-tunnel): what an encapsulated packet carries,
 * read from its first bytes (captured for it): VXLAN (UDP 4789, 8472),
 * Geneve (UDP 6081), GRE (with or without a key, of IP or of Ethernet) and
 * IP-in-IP (4in4, 6in4, 4in6, 6in6). The same encapsulations the probes'
 * inner filters find (probes/include/tunnel.h).
 */
import type { CapturedPacket } from './packet.js';
import { tupleFromPacket } from './ip.js';
import type { Tuple } from './tuple.js';

export type TunnelKind = 'vxlan' | 'geneve' | 'gre' | 'ipip';

export interface TunnelInfo {
  kind: TunnelKind;
  /** VXLAN and Geneve: the VNI; GRE: the key, when it has one; null otherwise. */
  vni: number | null;
  /** The inner packet's tuple; null when it is not IP (ARP inside VXLAN) or was not captured far enough. */
  inner: Tuple | null;
}

const ETH_P_IP = 0x0800;
const ETH_P_IPV6 = 0x86dd;
const ETH_P_TEB = 0x6558;
const VLAN_TAGS = new Set([0x8100, 0x88a8]);
const VXLAN_PORTS = new Set([4789, 8472]);
const GENEVE_PORT = 6081;
const IPPROTO_IPIP = 4;
const IPPROTO_IPV6 = 41;
const IPPROTO_UDP = 17;
const IPPROTO_GRE = 47;

const u16 = (b: Uint8Array, at: number) => (at + 2 <= b.length ? (b[at]! << 8) | b[at + 1]! : -1);
const u24 = (b: Uint8Array, at: number) => (at + 3 <= b.length ? (b[at]! << 16) | (b[at + 1]! << 8) | b[at + 2]! : -1);

/** The IP header's offset in an Ethernet frame (VLAN tags skipped), or -1 when it carries no IP. */
function ipAfterEthernet(b: Uint8Array, at: number): number {
  let off = at + 12;
  let type = u16(b, off);
  for (let i = 0; i < 2 && VLAN_TAGS.has(type); i++) {
    off += 4;
    type = u16(b, off);
  }
  return type === ETH_P_IP || type === ETH_P_IPV6 ? off + 2 : -1;
}

/** The inner tuple from the IP header at `at`. */
function innerTuple(b: Uint8Array, at: number): Tuple | null {
  return at < 0 ? null : tupleFromPacket(b, at);
}

/** What the captured packet is a tunnel of; null for a packet that is not encapsulated. */
export function parseTunnel(p: CapturedPacket): TunnelInfo | null {
  const b = p.data;
  const nh = p.l2 ? ipAfterEthernet(b, 0) : 0;
  if (nh < 0 || nh >= b.length) return null;
  const version = b[nh]! >> 4;
  let proto: number;
  let l4: number;
  if (version === 4 && nh + 20 <= b.length) {
    // Later fragments carry no transport header.
    if ((u16(b, nh + 6) & 0x1fff) !== 0) return null;
    proto = b[nh + 9]!;
    l4 = nh + (b[nh]! & 0xf) * 4;
  } else if (version === 6 && nh + 40 <= b.length) {
    proto = b[nh + 6]!;
    l4 = nh + 40;
  } else {
    return null;
  }
  switch (proto) {
    case IPPROTO_UDP: {
      const dport = u16(b, l4 + 2);
      if (VXLAN_PORTS.has(dport)) {
        const frame = l4 + 16;
        return { kind: 'vxlan', vni: u24(b, l4 + 8 + 4), inner: innerTuple(b, ipAfterEthernet(b, frame)) };
      }
      if (dport === GENEVE_PORT && u16(b, l4 + 8 + 2) === ETH_P_TEB) {
        const frame = l4 + 16 + ((b[l4 + 8] ?? 0) & 0x3f) * 4;
        return { kind: 'geneve', vni: u24(b, l4 + 8 + 4), inner: innerTuple(b, ipAfterEthernet(b, frame)) };
      }
      return null;
    }
    case IPPROTO_GRE: {
      const flags = u16(b, l4);
      const type = u16(b, l4 + 2);
      if (flags < 0 || type < 0) return null;
      const csum = flags & 0x8000 ? 4 : 0;
      const key = flags & 0x2000 ? 4 : 0;
      const seq = flags & 0x1000 ? 4 : 0;
      const after = l4 + 4 + csum + key + seq;
      const vni = key && l4 + 4 + csum + 4 <= b.length
        ? ((b[l4 + 4 + csum]! << 24) | (b[l4 + 5 + csum]! << 16) | (b[l4 + 6 + csum]! << 8) | b[l4 + 7 + csum]!) >>> 0
        : null;
      if (type === ETH_P_TEB) return { kind: 'gre', vni, inner: innerTuple(b, ipAfterEthernet(b, after)) };
      if (type === ETH_P_IP || type === ETH_P_IPV6) return { kind: 'gre', vni, inner: innerTuple(b, after) };
      return null;
    }
    case IPPROTO_IPIP:
    case IPPROTO_IPV6:
      return { kind: 'ipip', vni: null, inner: innerTuple(b, l4) };
    default:
      return null;
  }
}
