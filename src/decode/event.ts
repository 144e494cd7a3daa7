/**
 * The one decoder of the kernel→user record defined in probes/include/event.h:
 * the fixed core, then each section where its head says it is — the point's
 * own (./ct.ts, ./verdict.ts) here, the optional ones by the decoders the
 * caller hands in (src/output/sections/registry.ts) — then the packet bytes
 * (./packet.ts). Offsets are in ./layout.ts.
 */
import { type RawCt, decodeCt } from './ct.js';
import { EVENT_LAYOUT, EventFlags, RecordType, SECTION_HEAD, SectionKind } from './layout.js';
import { type CapturedPacket, decodePacket } from './packet.js';
import { type RawVerdict, decodeVerdict } from './verdict.js';
import { type Tuple, decodeTuple, decodeVlan } from './tuple.js';

/** A record as the probe wrote it, with numbers still numbers. */
export interface RawEvent {
  flags: number;
  tsNs: bigint;
  skb: bigint;
  /** EVENT_HAS_CALLER; 0n otherwise. */
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
  /** EVENT_HAS_FUNC: the probed function's address; 0n otherwise. */
  funcIp: bigint;
  /** EVENT_HAS_TUPLE */
  tuple: Tuple | null;
  /** VLAN ids, outer first; null for an untagged frame. */
  vlan: number[] | null;
  /** EVENT_HAS_PACKET */
  packet: CapturedPacket | null;
  /** EVENT_HAS_CT */
  ct: RawCt | null;
  /** EVENT_HAS_VERDICT */
  verdict: RawVerdict | null;
  /** The optional sections the record carries, by their decoders' keys; null when it carries none. */
  sections: Record<string, unknown> | null;
}

/** An optional section's decoder: `at` is where the section starts, behind its head. */
export interface SectionDecoder {
  key: string;
  decode(view: DataView, bytes: Uint8Array, at: number): unknown;
}

/** Decoders by section kind. */
export type SectionDecoders = ReadonlyArray<SectionDecoder | undefined>;

const NO_DECODERS: SectionDecoders = [];
const HEAD = SECTION_HEAD.size;

const F = EVENT_LAYOUT.fields;

// Consecutive records mostly come from the same task: the last comm is kept
// with its bytes (as four 32-bit words), and reused when they match.
const lastCommWords = new Uint32Array(4);
let lastComm = '';

function readComm(view: DataView, bytes: Uint8Array, at: number): string {
  const w0 = view.getUint32(at, true);
  const w1 = view.getUint32(at + 4, true);
  const w2 = view.getUint32(at + 8, true);
  const w3 = view.getUint32(at + 12, true);
  const last = lastCommWords;
  if (w0 === last[0] && w1 === last[1] && w2 === last[2] && w3 === last[3]) return lastComm;
  let end = at;
  while (end < at + 16 && bytes[end] !== 0) end++;
  let s = '';
  for (let i = at; i < end; i++) s += String.fromCharCode(bytes[i]!);
  last[0] = w0;
  last[1] = w1;
  last[2] = w2;
  last[3] = w3;
  lastComm = s;
  return s;
}

// A packet's records come one after another, a dozen of them with one skb:
// the last skb's BigInt is kept with its two words and reused when they
// match, so most records allocate no BigInt for it.
let lastSkbLo = 0;
let lastSkbHi = 0;
let lastSkb = 0n;

function readSkb(view: DataView, at: number): bigint {
  const lo = view.getUint32(at, true);
  const hi = view.getUint32(at + 4, true);
  if (lo === lastSkbLo && hi === lastSkbHi) return lastSkb;
  lastSkbLo = lo;
  lastSkbHi = hi;
  return (lastSkb = view.getBigUint64(at, true));
}

/**
 * Decodes one event record. `view` and `bytes` cover the same memory; `at` is
 * the record's offset in them; `sections` decodes the optional sections by
 * kind (those it lacks are skipped). Returns null for records of another type.
 */
export function decodeEvent(view: DataView, bytes: Uint8Array, at: number, sections: SectionDecoders = NO_DECODERS): RawEvent | null {
  if (view.getUint32(at + F.type, true) !== RecordType.event) return null;
  const flags = view.getUint32(at + F.flags, true);
  const raw: RawEvent = {
    flags,
    tsNs: view.getBigUint64(at + F.ts_ns, true),
    skb: readSkb(view, at + F.skb),
    caller: flags & EventFlags.caller ? view.getBigUint64(at + F.caller, true) : 0n,
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
    comm: readComm(view, bytes, at + F.comm),
    funcIp: flags & EventFlags.func ? view.getBigUint64(at + F.func_ip, true) : 0n,
    tuple: flags & EventFlags.tuple ? decodeTuple(view, bytes, at + F.tuple) : null,
    vlan: decodeVlan(view, at + F.vlan),
    packet: flags & EventFlags.packet ? decodePacket(view, bytes, at) : null,
    ct: null,
    verdict: null,
    sections: null,
  };
  // The sections lie between the core and the packet bytes, each behind its head.
  const end = at + view.getUint16(at + F.cap_offset, true);
  for (let s = at + EVENT_LAYOUT.size; s + HEAD <= end;) {
    const kind = view.getUint16(s, true);
    const len = view.getUint16(s + SECTION_HEAD.fields.len, true);
    if (len < HEAD || s + len > end) break;
    const body = s + HEAD;
    if (kind === SectionKind.ct) {
      if (flags & EventFlags.ct) raw.ct = decodeCt(view, bytes, body);
    } else if (kind === SectionKind.verdict) {
      if (flags & EventFlags.verdict) raw.verdict = decodeVerdict(view, body);
    } else {
      const d = sections[kind];
      if (d !== undefined) (raw.sections ??= {})[d.key] = d.decode(view, bytes, body);
    }
    s += len;
  }
  return raw;
}
