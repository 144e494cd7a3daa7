/**
 * The one decoder of the kernel→user record defined in probes/include/event.h.
 * Offsets are written out once here; test/unit/layout.test.ts checks them
 * against the BTF of the compiled probes.
 */
import { formatAddress } from './addr.js';

export const RECORD_EVENT = 1;

export const EventFlags = {
  tuple: 1 << 0,
  stack: 1 << 1,
  reason: 1 << 2,
  caller: 1 << 3,
  nfHook: 1 << 4,
  tcDir: 1 << 5,
  packet: 1 << 6,
  ct: 1 << 7,
} as const;

/** ct_section.source */
export const CtSource = { nfct: 1, lookup: 2 } as const;
/** ct_section.ctinfo for untracked packets, and for lookups (which have none). */
export const CT_CTINFO_UNTRACKED = 7;
export const CT_CTINFO_NONE = 0xff;

/** Field offsets of `struct event` (and its nested `struct tuple`). */
export const EVENT_LAYOUT = {
  /** struct event; a struct ct_section follows at points that read conntrack, the packet bytes at cap_offset. */
  size: 152,
  fields: {
    type: 0, flags: 4, ts_ns: 8, skb: 16, caller: 24, point_id: 32, cpu: 36, pid: 40,
    netns: 44, mark: 48, ifindex: 52, len: 56, mtu: 60, stack_id: 64, drop_reason: 68,
    protocol: 72, hook: 74, pf: 75, comm: 80, tuple: 96, cap_len: 136, cap_orig_len: 140, cap_l2: 144,
    cap_offset: 146,
  },
  tuple: { size: 40, fields: { saddr: 0, daddr: 16, sport: 32, dport: 34, l3: 36, l4proto: 37, tcp_flags: 38 } },
  ct_section: {
    size: 112,
    fields: { id: 0, status: 8, mark: 12, error: 16, zone: 20, source: 22, ctinfo: 23, dir: 24, orig: 32, reply: 72 },
  },
  ct_tuple: { size: 40, fields: { saddr: 0, daddr: 16, sport: 32, dport: 34, l3: 36, l4proto: 37 } },
} as const;

export interface Tuple {
  l3: 4 | 6;
  saddr: string;
  daddr: string;
  sport: number;
  dport: number;
  l4proto: number;
  tcpFlags: number;
}

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

/** A record as the probe wrote it, with numbers still numbers. */
export interface RawEvent {
  flags: number;
  tsNs: bigint;
  skb: bigint;
  caller: bigint;
  pointId: number;
  cpu: number;
  pid: number;
  netns: number;
  mark: number;
  ifindex: number;
  len: number;
  mtu: number;
  stackId: number;
  dropReason: number;
  protocol: number;
  hook: number;
  pf: number;
  comm: string;
  tuple: Tuple | null;
  /** Packet bytes captured after the event (a copy: the ring is reused). */
  packet: { data: Uint8Array; origLen: number; l2: boolean } | null;
  /** EVENT_HAS_CT */
  ct: RawCt | null;
}

const F = EVENT_LAYOUT.fields;
const T = F.tuple;
const TF = EVENT_LAYOUT.tuple.fields;

// Consecutive records mostly come from the same task: the last comm is kept
// with its bytes, and reused when they match.
const lastCommBytes = new Uint8Array(16);
let lastComm = '';

function readComm(bytes: Uint8Array, at: number): string {
  let same = true;
  for (let i = 0; i < 16; i++) {
    if (bytes[at + i] !== lastCommBytes[i]) {
      same = false;
      break;
    }
  }
  if (same) return lastComm;
  let end = at;
  while (end < at + 16 && bytes[end] !== 0) end++;
  let s = '';
  for (let i = at; i < end; i++) s += String.fromCharCode(bytes[i]!);
  lastCommBytes.set(bytes.subarray(at, at + 16));
  lastComm = s;
  return s;
}

function readPacket(view: DataView, bytes: Uint8Array, at: number): RawEvent['packet'] {
  const len = view.getUint32(at + F.cap_len, true);
  const from = at + view.getUint16(at + F.cap_offset, true);
  return {
    data: bytes.slice(from, from + len),
    origLen: view.getUint32(at + F.cap_orig_len, true),
    l2: bytes[at + F.cap_l2] !== 0,
  };
}

/** The conntrack section follows the event. */
const C = EVENT_LAYOUT.size;
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

/** Decodes the conntrack section of the event at `at` (whose EVENT_HAS_CT flag is set). */
export function decodeCt(view: DataView, bytes: Uint8Array, at: number): RawCt {
  const c = at + C;
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

/**
 * Decodes one event record. `view` and `bytes` cover the same memory; `at` is
 * the record's offset in them. Returns null for records of another type.
 */
export function decodeEvent(view: DataView, bytes: Uint8Array, at: number): RawEvent | null {
  if (view.getUint32(at + F.type, true) !== RECORD_EVENT) return null;
  const flags = view.getUint32(at + F.flags, true);
  let tuple: Tuple | null = null;
  if (flags & EventFlags.tuple) {
    const l3 = bytes[at + T + TF.l3] === 6 ? 6 : 4;
    tuple = {
      l3,
      saddr: formatAddress(bytes, at + T + TF.saddr, l3),
      daddr: formatAddress(bytes, at + T + TF.daddr, l3),
      sport: view.getUint16(at + T + TF.sport, true),
      dport: view.getUint16(at + T + TF.dport, true),
      l4proto: bytes[at + T + TF.l4proto]!,
      tcpFlags: bytes[at + T + TF.tcp_flags]!,
    };
  }
  return {
    flags,
    tsNs: view.getBigUint64(at + F.ts_ns, true),
    skb: view.getBigUint64(at + F.skb, true),
    caller: view.getBigUint64(at + F.caller, true),
    pointId: view.getUint32(at + F.point_id, true),
    cpu: view.getUint32(at + F.cpu, true),
    pid: view.getUint32(at + F.pid, true),
    netns: view.getUint32(at + F.netns, true),
    mark: view.getUint32(at + F.mark, true),
    ifindex: view.getUint32(at + F.ifindex, true),
    len: view.getUint32(at + F.len, true),
    mtu: view.getUint32(at + F.mtu, true),
    stackId: view.getInt32(at + F.stack_id, true),
    dropReason: view.getUint32(at + F.drop_reason, true),
    protocol: view.getUint16(at + F.protocol, true),
    hook: bytes[at + F.hook]!,
    pf: bytes[at + F.pf]!,
    comm: readComm(bytes, at + F.comm),
    tuple,
    packet: flags & EventFlags.packet ? readPacket(view, bytes, at) : null,
    ct: flags & EventFlags.ct ? decodeCt(view, bytes, at) : null,
  };
}
