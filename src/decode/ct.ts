/**
 * The conntrack section: what netfilter's connection tracking knows of the
 * packet, decoded from `struct ct_section` and named in the terms users know
 * from `conntrack -L` and nft's `ct state`: a state, a direction, status flag
 * names, and the entry's two tuples (which differ where NAT applies).
 */
import { formatAddress } from './addr.js';
import { CT_CTINFO_NONE, CT_CTINFO_UNTRACKED, CtSource, EVENT_LAYOUT } from './layout.js';
import type { Tuple } from './tuple.js';

/** One direction of a conntrack entry: a tuple without TCP flags (ports are 0 for protocols without). */
export type CtTuple = Omit<Tuple, 'tcpFlags'>;

/** The conntrack section as the probe wrote it. */
export interface RawCt {
  /** ct_section.source: CtSource.nfct or CtSource.lookup. */
  source: number;
  /** struct nf_conn address; 0n when there is no entry (untracked, lookup found nothing). */
  id: bigint;
  status: number;
  mark: number;
  zone: number;
  /** Lookups: 0 when found, else -errno. */
  error: number;
  /** enum ip_conntrack_info, CT_CTINFO_UNTRACKED, or CT_CTINFO_NONE for lookups. */
  ctinfo: number;
  /** 0 original direction, 1 reply. */
  dir: number;
  orig: CtTuple | null;
  reply: CtTuple | null;
}

/** The section follows the event. */
const CF = EVENT_LAYOUT.ct_section.fields;
const CTF = EVENT_LAYOUT.ct_tuple.fields;

function readCtTuple(view: DataView, bytes: Uint8Array, at: number): CtTuple | null {
  const l3 = bytes[at + CTF.l3];
  // An entry always has an IPv4 or IPv6 tuple; anything else is not one we can name.
  if (l3 !== 4 && l3 !== 6) return null;
  return {
    l3,
    saddr: formatAddress(bytes, at + CTF.saddr, l3),
    daddr: formatAddress(bytes, at + CTF.daddr, l3),
    sport: view.getUint16(at + CTF.sport, true),
    dport: view.getUint16(at + CTF.dport, true),
    l4proto: bytes[at + CTF.l4proto]!,
  };
}

/** Decodes the conntrack section at `c` (of a record whose EVENT_HAS_CT flag is set). */
export function decodeCt(view: DataView, bytes: Uint8Array, c: number): RawCt {
  const id = view.getBigUint64(c + CF.id, true);
  return {
    source: bytes[c + CF.source]!,
    id,
    status: view.getUint32(c + CF.status, true),
    mark: view.getUint32(c + CF.mark, true),
    zone: view.getUint16(c + CF.zone, true),
    error: view.getInt32(c + CF.error, true),
    ctinfo: bytes[c + CF.ctinfo]!,
    dir: bytes[c + CF.dir]!,
    orig: id === 0n ? null : readCtTuple(view, bytes, c + CF.orig),
    reply: id === 0n ? null : readCtTuple(view, bytes, c + CF.reply),
  };
}

/** NONE: a lookup found no entry (yet). */
export type CtState = 'NEW' | 'ESTABLISHED' | 'RELATED' | 'UNTRACKED' | 'NONE';

export interface CtInfo {
  /** `nfct`: the entry attached to the skb (netfilter hooks); `tc-lookup`: a lookup of the packet's tuple (tc). */
  source: 'nfct' | 'tc-lookup';
  /** False only for lookups that found no entry. */
  found: boolean;
  state: CtState;
  /** The packet's direction in the connection. */
  dir: 'orig' | 'reply';
  /** Address of the entry (struct nf_conn): the same for every packet of the connection; 0n when none. */
  id: bigint;
  /** IPS_* status flag names, lowest bit first. */
  status: string[];
  zone: number;
  mark: number;
  /** Lookups: 0 when found, else -errno. */
  error: number;
  orig: CtTuple | null;
  reply: CtTuple | null;
}

/** enum ip_conntrack_status (include/uapi/linux/netfilter/nf_conntrack_common.h), by bit. */
export const IPS_NAMES: readonly string[] = [
  'EXPECTED', 'SEEN_REPLY', 'ASSURED', 'CONFIRMED', 'SRC_NAT', 'DST_NAT', 'SEQ_ADJUST', 'SRC_NAT_DONE',
  'DST_NAT_DONE', 'DYING', 'FIXED_TIMEOUT', 'TEMPLATE', 'NAT_CLASH', 'HELPER', 'OFFLOAD', 'HW_OFFLOAD',
];
const IPS_EXPECTED = 1 << 0;
const IPS_SEEN_REPLY = 1 << 1;

export function ctStatusNames(status: number): string[] {
  const out: string[] = [];
  for (let bit = 0; bit < 32; bit++) {
    if ((status >>> bit) & 1) out.push(IPS_NAMES[bit] ?? `BIT${bit}`);
  }
  return out;
}

/** enum ip_conntrack_info: 0 ESTABLISHED, 1 RELATED, 2 NEW, +3 in the reply direction. */
function stateOfCtinfo(ctinfo: number): CtState {
  if (ctinfo === CT_CTINFO_UNTRACKED) return 'UNTRACKED';
  switch (ctinfo % 3) {
    case 0:
      return 'ESTABLISHED';
    case 1:
      return 'RELATED';
    default:
      return 'NEW';
  }
}

/** What conntrack itself would say for a packet of a found entry (as resolve_normal_ct does). */
function stateOfEntry(status: number, reply: boolean): CtState {
  if (reply || status & IPS_SEEN_REPLY) return 'ESTABLISHED';
  if (status & IPS_EXPECTED) return 'RELATED';
  return 'NEW';
}

export function ctInfo(raw: RawCt): CtInfo {
  const lookup = raw.source === CtSource.lookup;
  const found = lookup ? raw.error === 0 && raw.id !== 0n : true;
  let state: CtState;
  if (!found) state = 'NONE';
  else if (raw.ctinfo === CT_CTINFO_NONE) state = stateOfEntry(raw.status, raw.dir === 1);
  else state = stateOfCtinfo(raw.ctinfo);
  return {
    source: lookup ? 'tc-lookup' : 'nfct',
    found,
    state,
    dir: raw.dir === 1 ? 'reply' : 'orig',
    id: raw.id,
    status: ctStatusNames(raw.status),
    zone: raw.zone,
    mark: raw.mark,
    error: raw.error,
    orig: raw.orig,
    reply: raw.reply,
  };
}

export interface NatChange {
  kind: 'SNAT' | 'DNAT';
  from: { addr: string; port: number };
  to: { addr: string; port: number };
}

/**
 * The translations an entry records: the reply tuple is what the other end
 * sends back, so it differs from the reversed original where NAT rewrote the
 * packet. DNAT first (it happens first on the way through).
 */
export function natChanges(ct: CtInfo): NatChange[] {
  const o = ct.orig;
  const r = ct.reply;
  if (o === null || r === null) return [];
  const out: NatChange[] = [];
  if (o.daddr !== r.saddr || o.dport !== r.sport) {
    out.push({ kind: 'DNAT', from: { addr: o.daddr, port: o.dport }, to: { addr: r.saddr, port: r.sport } });
  }
  if (o.saddr !== r.daddr || o.sport !== r.dport) {
    out.push({ kind: 'SNAT', from: { addr: o.saddr, port: o.sport }, to: { addr: r.daddr, port: r.dport } });
  }
  return out;
}
