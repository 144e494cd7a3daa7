/** The tuple section: addresses, ports and protocol parsed from the packet's IP and transport headers, and the VLAN tags before them. */
import { formatAddress } from './addr.js';
import { EVENT_LAYOUT, VLAN_TAGGED, VLAN_VID_MASK } from './layout.js';

/** Never changed once decoded: the text caches of src/output keep the tuples they were made from. */
export interface Tuple {
  readonly l3: 4 | 6;
  readonly saddr: string;
  readonly daddr: string;
  readonly sport: number;
  readonly dport: number;
  readonly l4proto: number;
  readonly tcpFlags: number;
}

const TF = EVENT_LAYOUT.tuple.fields;

/** Decodes a `struct tuple` at `at`. */
export function decodeTuple(view: DataView, bytes: Uint8Array, at: number): Tuple {
  const l3 = bytes[at + TF.l3] === 6 ? 6 : 4;
  return {
    l3,
    saddr: formatAddress(bytes, at + TF.saddr, l3),
    daddr: formatAddress(bytes, at + TF.daddr, l3),
    sport: view.getUint16(at + TF.sport, true),
    dport: view.getUint16(at + TF.dport, true),
    l4proto: bytes[at + TF.l4proto]!,
    tcpFlags: bytes[at + TF.tcp_flags]!,
  };
}

/**
 * The VLAN ids of event.vlan at `at`, outer first; null for an untagged frame
 * (most records: nothing is allocated for them).
 */
export function decodeVlan(view: DataView, at: number): number[] | null {
  const outer = view.getUint16(at, true);
  if (!(outer & VLAN_TAGGED)) return null;
  const inner = view.getUint16(at + 2, true);
  return inner & VLAN_TAGGED ? [outer & VLAN_VID_MASK, inner & VLAN_VID_MASK] : [outer & VLAN_VID_MASK];
}

/** The same flow in the same direction (TCP flags aside). */
export function sameTuple(a: Omit<Tuple, 'tcpFlags'>, b: Omit<Tuple, 'tcpFlags'>): boolean {
  return a.saddr === b.saddr && a.daddr === b.daddr && a.sport === b.sport && a.dport === b.dport &&
    a.l4proto === b.l4proto;
}

/**
 * `b` goes the other way of `a` (its reply): another packet. No NAT turns a
 * packet around, so where one skb address shows both, the first skb was freed
 * where no probe saw it (or where the trace does not look) and the address
 * given to the second.
 */
export function turnedAround(a: { readonly saddr: string; readonly daddr: string }, b: { readonly saddr: string; readonly daddr: string }): boolean {
  return b.saddr === a.daddr && b.daddr === a.saddr && b.saddr !== b.daddr;
}

/** A hash of every field of a tuple, for caches of its text forms: cheap, from numbers and the ends of the addresses. */
export function tupleHash(t: Tuple): number {
  const sa = t.saddr;
  const da = t.daddr;
  const h = Math.imul(t.sport, 31) + Math.imul(t.dport, 17) + t.l4proto + Math.imul(t.tcpFlags, 7) +
    Math.imul(sa.length, 131) + Math.imul(da.length, 71) +
    Math.imul(sa.length > 0 ? sa.charCodeAt(sa.length - 1) : 0, 3) +
    (da.length > 0 ? da.charCodeAt(da.length - 1) : 0);
  return h ^ (h >>> 10);
}

/** Every field equal, TCP flags included: the test a cached text form of `b` passes for `a`. */
export function sameTupleFields(a: Tuple, b: Tuple): boolean {
  return a.sport === b.sport && a.dport === b.dport && a.l4proto === b.l4proto && a.tcpFlags === b.tcpFlags &&
    a.l3 === b.l3 && a.saddr === b.saddr && a.daddr === b.daddr;
}
