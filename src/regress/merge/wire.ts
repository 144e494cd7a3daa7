/**
 * What of a packet survives the wire between two nodes, as a key: the same
 * packet leaving node A and arriving on node B has the same key, and two
 * packets of one flow differ in it wherever the records say how. The outer
 * tuple, the tunnel (kind, VNI or key, inner tuple), and the packet's own
 * identity: the wire section's IP id, IP length and L4 identity (TCP
 * sequence, ICMP echo id and sequence, UDP checksum), or the same read from
 * the captured bytes (`packet`). TTL, checksums of the IP header, MAC
 * addresses and the outer UDP source port of a tunnel on some kernels change
 * on the way, so none of them is in the key. A hash of the captured bytes
 * from the IP header on (TTL and header checksum left out) tells two
 * candidates apart where both captured them.
 */
import { parseIpHeaders } from '../../decode/ip.js';
import { IPPROTO } from '../../decode/protocols.js';
import type { JsonRecord } from '../../output/json.js';
import type { JsonTuple } from '../../output/tuple.js';

/** A packet's identity in its headers: IPv4 id (null for IPv6), IP length, and the L4 identity. */
export interface WireIdentity {
  ipId: number | null;
  ipLen: number;
  l4: number | null;
}

/** The points a packet is received at and sent from: the arrival is its first receiving point on a node, the departure its last sending one. */
const RECEIVING = new Set(['netif_receive_skb', 'netif_receive_skb_entry', 'netif_receive_skb_list_entry', 'netif_rx', 'netif_rx_entry',
  'napi_gro_receive_entry', 'napi_gro_frags_entry', 'tc:ingress']);
const SENDING = new Set(['net_dev_queue', 'net_dev_start_xmit', 'net_dev_xmit', 'qdisc_enqueue', 'qdisc_dequeue', 'tc:egress']);

/** The wire section's JSON form (--output-wire). */
interface JsonWireIds {
  ip_id: number | null;
  ip_len: number;
  l4_id: number | null;
}
type WithWire = JsonRecord & { wire?: JsonWireIds & { inner: JsonWireIds | null } };

export type Direction = 'rx' | 'tx' | null;

/** Whether the point receives or sends a packet on a device; null for the points between. */
export function pointDirection(func: string): Direction {
  if (RECEIVING.has(func) || /^nf:ipv[46]:pre_routing$/.test(func)) return 'rx';
  if (SENDING.has(func) || /^nf:ipv[46]:post_routing$/.test(func)) return 'tx';
  return null;
}

const u16 = (b: Uint8Array, at: number) => (b[at]! << 8) | b[at + 1]!;
const u32 = (b: Uint8Array, at: number) => ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;

/** The L4 identity at `at` of a header of `proto`: TCP sequence, ICMP echo id and sequence, UDP checksum; null for others or short bytes. */
export function l4Identity(b: Uint8Array, proto: number, at: number): number | null {
  switch (proto) {
    case IPPROTO.TCP: return at + 8 <= b.length ? u32(b, at + 4) : null;
    case IPPROTO.ICMP: case IPPROTO.ICMPV6: return at + 8 <= b.length ? u32(b, at + 4) : null;
    case IPPROTO.UDP: return at + 8 <= b.length ? u16(b, at + 6) : null;
    default: return null;
  }
}

/** Where the IP header of captured bytes starts: after Ethernet and its VLAN tags when they start at L2. */
function ipStart(b: Uint8Array, l2: boolean): number {
  if (!l2) return 0;
  let at = 12;
  while (at + 2 <= b.length && (u16(b, at) === 0x8100 || u16(b, at) === 0x88a8)) at += 4;
  return at + 2;
}

/** The identity of captured bytes' outer IP packet; null when they hold no IP header. */
export function packetIdentity(b: Uint8Array, l2: boolean): { id: WireIdentity; hash: number } | null {
  const at = ipStart(b, l2);
  const h = parseIpHeaders(b, at);
  if (h === null) return null;
  const v4 = h.l3 === 4;
  const id: WireIdentity = {
    ipId: v4 ? u16(b, at + 4) : null,
    ipLen: v4 ? u16(b, at + 2) : u16(b, at + 4) + 40,
    l4: h.l4At < 0 ? null : l4Identity(b, h.l4proto, h.l4At),
  };
  // FNV-1a over the bytes from the IP header, the fields routers change skipped (TTL/hop limit, IPv4's header checksum).
  const skip = v4 ? [at + 8, at + 10, at + 11] : [at + 7];
  let hash = 0x811c9dc5;
  for (let i = at; i < b.length; i++) {
    if (skip.includes(i)) continue;
    hash = Math.imul(hash ^ b[i]!, 0x01000193);
  }
  return { id, hash: hash >>> 0 };
}

const tupleKey = (t: JsonTuple | null | undefined) => (t ? `${t.saddr}>${t.daddr}/${t.proto}/${t.sport}>${t.dport}` : '-');
const identityKey = (w: WireIdentity | null | undefined) => (w ? `${w.ipId ?? '-'}/${w.ipLen}/${w.l4 ?? '-'}` : '?');

/** A record's key on the wire, and the hash of its captured bytes; null when it carries no IP tuple. */
export interface WireKey {
  key: string;
  hash: number | null;
}

const packetCache = new WeakMap<object, ReturnType<typeof packetIdentity>>();

function capturedIdentity(r: JsonRecord): ReturnType<typeof packetIdentity> {
  const p = r.packet;
  if (!p) return null;
  let got = packetCache.get(p);
  if (got === undefined) {
    const data = Buffer.from(p.data, 'base64');
    got = packetIdentity(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), p.l2);
    packetCache.set(p, got);
  }
  return got;
}

/**
 * The key of a record: the same on both sides of the wire. The identity is
 * the wire section's when the record has it, else the captured bytes'; a
 * record with neither has `?` there and is paired by its tuples alone.
 */
export function wireKey(r: WithWire): WireKey | null {
  if (!r.tuple) return null;
  const captured = capturedIdentity(r);
  const wire = r.wire;
  const outer = wire ? { ipId: wire.ip_id, ipLen: wire.ip_len, l4: wire.l4_id } : captured?.id;
  const t = r.tunnel;
  let key = `${tupleKey(r.tuple)}#${identityKey(outer)}`;
  if (t) key += `|${t.kind}:${t.vni ?? '-'}:${tupleKey(t.inner)}#${wire?.inner ? identityKey({ ipId: wire.inner.ip_id, ipLen: wire.inner.ip_len, l4: wire.inner.l4_id }) : ''}`;
  return { key, hash: captured?.hash ?? null };
}

/**
 * Which packet an skb holds, as far as its records say: the innermost
 * packet's IPv4 id, else the TCP sequence or ICMP echo id and sequence; null
 * where neither is known. A DNAT, an encapsulation or GRO leave it as it is;
 * an skb's address taken by the next packet after a free no tracepoint saw
 * (TCP frees what it sent that way) changes it.
 */
export function heldPacket(r: JsonRecord): string | null {
  const w = r as WithWire;
  const inner = r.tunnel != null;
  const ids = w.wire ? (inner ? w.wire.inner : w.wire) : null;
  const id = ids ? { ipId: ids.ip_id, l4: ids.l4_id } : capturedIdentity(r)?.id ?? null;
  if (id === null || (inner && !w.wire)) return null;
  if (id.ipId !== null && id.ipId !== 0) return `id${id.ipId}`;
  const proto = (inner ? r.tunnel!.inner : r.tuple)?.proto;
  return id.l4 !== null && (proto === 'tcp' || proto === 'icmp' || proto === 'icmp6') ? `l4${id.l4}` : null;
}
