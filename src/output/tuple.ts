/**
 * The tuple section in text and JSON: pwru's `192.0.2.1:43210->192.0.2.2:80(tcp)`,
 * what changed between two points (NAT, encapsulation), and the schema's tuple object.
 */
import { SlotCache, flat } from '../decode/cache.js';
import { parseAddress } from '../decode/addr.js';
import { IPPROTO, PORTED_PROTOCOLS, protocolName, protocolNumber, tcpFlagBits, tcpFlagNames } from '../decode/protocols.js';
import { type Tuple, sameTupleFields, tupleHash } from '../decode/tuple.js';
import { escapeText } from './escape.js';
import { formatEndpoint } from './format.js';

/**
 * pwru-style tuple: `192.0.2.1:43210->192.0.2.2:80(tcp)`,
 * `[2001:db8::1]:80->[2001:db8::2]:5000(udp)`, `192.0.2.1->192.0.2.2(icmp)`.
 * Protocols without ports (icmp, icmp6, unknown numbers) are printed without
 * them. With `tcpFlags`, TCP flags go inside the parentheses: `(tcp:SYN|ACK)`.
 * Escaped (./escape.ts): a recorded trace's addresses are any strings.
 */
export function formatTuple(t: Tuple | null, opts: { tcpFlags: boolean }): string {
  if (t === null) return '';
  const cache = opts.tcpFlags ? withFlags : withoutFlags;
  const c = cache.at(tupleHash(t));
  if (c.tuple !== null && sameTupleFields(c.tuple, t)) return c.text;
  c.tuple = t;
  return (c.text = flat(escapeText(buildTuple(t, opts.tcpFlags))));
}

// The packets of a flow repeat their tuple at every point they pass.
const noTuple = (): { tuple: Tuple | null; text: string } => ({ tuple: null, text: '' });
const withFlags = new SlotCache(1024, noTuple);
const withoutFlags = new SlotCache(1024, noTuple);

function buildTuple(t: Tuple, tcpFlags: boolean): string {
  const p = t.l4proto;
  let l4 = protocolName(p) ?? String(p);
  if (tcpFlags && p === IPPROTO.TCP && t.tcpFlags !== 0) l4 += ':' + tcpFlagNames(t.tcpFlags);
  const v6 = t.l3 === 6;
  const s = v6 ? '[' + t.saddr + ']' : t.saddr;
  const d = v6 ? '[' + t.daddr + ']' : t.daddr;
  if (PORTED_PROTOCOLS.has(p)) return s + ':' + t.sport + '->' + d + ':' + t.dport + '(' + l4 + ')';
  return s + '->' + d + '(' + l4 + ')';
}

/** The VLAN ids a frame carries, outer first: `vlan=100`, `vlan=200.100` (QinQ). */
export function formatVlan(ids: readonly number[]): string {
  return 'vlan=' + ids.join('.');
}

/**
 * What changed in a packet's tuple since the point before it: `DNAT 192.0.2.2:80 → 198.51.100.2:8080`
 * when only the destination moved, `SNAT …` when only the source did, both when both did, and the
 * whole tuples (`tuple A → B`) when the packet became another one (encapsulation, decapsulation).
 */
export function formatTupleChange(before: Tuple, after: Tuple): string {
  const ported = PORTED_PROTOCOLS.has(after.l4proto);
  if (before.l4proto !== after.l4proto || before.l3 !== after.l3) {
    return 'tuple ' + formatTuple(before, { tcpFlags: false }) + ' \u2192 ' + formatTuple(after, { tcpFlags: false });
  }
  const parts: string[] = [];
  if (before.daddr !== after.daddr || before.dport !== after.dport) {
    parts.push('DNAT ' + formatEndpoint(before.daddr, before.dport, ported) + ' \u2192 ' +
      formatEndpoint(after.daddr, after.dport, ported));
  }
  if (before.saddr !== after.saddr || before.sport !== after.sport) {
    parts.push('SNAT ' + formatEndpoint(before.saddr, before.sport, ported) + ' \u2192 ' +
      formatEndpoint(after.saddr, after.sport, ported));
  }
  return escapeText(parts.join(' '));
}

/** JSON `proto`: the schema names tcp, udp, icmp and icmp6; every other protocol stays a number, sctp included. */
export type JsonProto = 'tcp' | 'udp' | 'icmp' | 'icmp6' | number;

export function jsonProto(n: number): JsonProto {
  return n === IPPROTO.SCTP ? n : (protocolName(n) as JsonProto | undefined) ?? n;
}

/** jsonProto's inverse. */
export function protoFromJson(p: JsonProto): number {
  return typeof p === 'number' ? p : protocolNumber(p) ?? 0;
}

/** The address family of an address as JSON writes it. */
export const l3OfAddress = (addr: string): 4 | 6 => (parseAddress(addr)?.l3 === 6 ? 6 : 4);

export interface JsonTuple {
  saddr: string;
  daddr: string;
  sport: number;
  dport: number;
  proto: JsonProto;
  /** `SYN|ACK` style; '' when no flag is set or the packet is not TCP. */
  flags: string;
}

export function jsonTuple(t: Tuple | null): JsonTuple | null {
  if (t === null) return null;
  return {
    saddr: t.saddr,
    daddr: t.daddr,
    sport: t.sport,
    dport: t.dport,
    proto: jsonProto(t.l4proto),
    flags: t.l4proto === IPPROTO.TCP ? tcpFlagNames(t.tcpFlags) : '',
  };
}

/** A tuple read back from its JSON form (`pktpath show`): jsonTuple's inverse. */
export function tupleFromJson(t: JsonTuple): Tuple {
  const proto = protoFromJson(t.proto);
  return {
    l3: l3OfAddress(t.saddr),
    saddr: t.saddr,
    daddr: t.daddr,
    sport: t.sport,
    dport: t.dport,
    l4proto: proto,
    tcpFlags: proto === IPPROTO.TCP ? tcpFlagBits(t.flags) : 0,
  };
}
