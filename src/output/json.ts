/**
 * JSON lines records (`--output-json`). Field names and order are a contract
 * (see DESIGN.md "JSON lines"): consumers and recorded traces depend on them,
 * so any change bumps JSON_SCHEMA_VERSION. Zero values are written, not omitted.
 * Lines are JSON.stringify's, with DEL, C1 and bidi controls as `\u` escapes
 * too (jsonText, ./escape.ts): JSON lines are printed on terminals.
 */
import { SlotCache, mix32 } from '../decode/cache.js';
import { type LineEncoder, NO_BYTES as NO_TEXT, lineText, utf8 } from './line.js';
import { isControl, jsonText } from './escape.js';
import { IPPROTO, tcpFlagNames } from '../decode/protocols.js';
import type { CapturedPacket } from '../decode/packet.js';
import { type Tuple, sameTupleFields, tupleHash } from '../decode/tuple.js';
import type { CtInfo } from '../decode/ct.js';
import { type JsonCt, ctHash, sameCt, toJsonCt } from './ct.js';
import { type JsonNft, toJsonNft } from './nft.js';
import { type JsonSectionFields, hasSection, sectionsJsonText, sectionsToJson } from './sections/registry.js';
import { type JsonVerdict, toJsonVerdict } from './verdict.js';
import type { LostNotice, PodRef, ProbeType, TraceEvent } from './event.js';
import {
  formatDecimal, formatIface, formatProcess, formatSkb, formatTime, skbDigitWords, utcFraction, utcSecondPrefix,
} from './format.js';
import { type JsonTuple, jsonProto, jsonTuple } from './tuple.js';

export type { JsonCt, JsonCtTuple } from './ct.js';
export type { JsonProto, JsonTuple } from './tuple.js';

export const JSON_SCHEMA_VERSION = 1;

/** A JSON line's event; the optional sections' fields come from their registry (JsonSectionFields). */
export interface JsonRecord extends JsonSectionFields {
  v: typeof JSON_SCHEMA_VERSION;
  time: string;
  skb: string;
  cpu: number;
  process: string;
  pid: number;
  netns: number;
  netns_name: string;
  mark: number;
  iface: string;
  ifindex: number;
  proto: number;
  mtu: number;
  len: number;
  tuple: JsonTuple | null;
  /** The tuple at the previous point that saw this skb, when it changed since (NAT, encapsulation). */
  tuple_before?: JsonTuple | null;
  func: string;
  probe: { type: ProbeType; name: string };
  drop_reason: string | null;
  caller: string | null;
  /** The pod whose network namespace this is: present only there. */
  pod?: PodRef;
  /** VLAN ids, outer first: present only on tagged frames. */
  vlan?: number[];
  /** Present only when the point knows the packet's conntrack state. */
  ct?: JsonCt;
  /** At tc hooks where other programs run: what they did. */
  verdict?: JsonVerdict;
  /** nftables trace events (--output-nft): the rule evaluation. */
  nft?: JsonNft;
  /** Present only when stacks are requested. */
  stack?: string[];
  /** The bytes captured at this point, when packets are captured (--output-packet, --output-pcap). */
  packet?: JsonPacket;
  /** In a merged trace: the node the record was made on. */
  node?: string;
  /** In a merged trace: the packet's journey across nodes (`<node>:<skb>` of its first record). */
  journey?: string;
}

export interface JsonPacket {
  /** Whether the bytes start at the Ethernet header (else at the network header). */
  l2: boolean;
  /** The packet's length from where the capture starts. */
  orig_len: number;
  /** The captured bytes, base64. */
  data: string;
}

function toJsonPacket(p: CapturedPacket): JsonPacket {
  return { l2: p.l2, orig_len: p.origLen, data: Buffer.from(p.data.buffer, p.data.byteOffset, p.data.byteLength).toString('base64') };
}

/**
 * The first line of a recorded trace (`pktpath record`): what made it, so a
 * trace explains itself and normalisation can name what the events only number.
 */
export interface JsonHeaderRecord {
  v: typeof JSON_SCHEMA_VERSION;
  type: 'header';
  /** pktpath's version. */
  pktpath: string;
  /** The kernel, as `uname -srm` would say. */
  kernel: string;
  /** The node the trace was made on (`--node`, else the host name); absent in traces of older versions. */
  node?: string;
  time: string;
  /** pktpath's own arguments. */
  argv: string[];
  /** The command whose traffic was traced; null for a plain trace. */
  command: string[] | null;
  /** The observation points attached, by name. */
  points: string[];
  /** What could not be observed on this kernel, and why. */
  notes: string[];
  /** The namespaces observed: inode, name (empty when it has none), whether it is pktpath's own. */
  namespaces: Array<{ inode: number; name: string; self: boolean }>;
  /** How the kernel's times became the records' wall-clock times. */
  clock?: JsonClock;
  /** A trace `pktpath merge` made: its inputs, one a node, and how their clocks were aligned. */
  merged?: JsonMerged;
}

/** The mapping of the kernel's clock to the wall clock, read once at the start (src/trace/clock.ts). */
export interface JsonClock {
  /** The kernel clock the probes stamp records with (bpf_ktime_get_ns: CLOCK_MONOTONIC). */
  kernel: 'monotonic';
  /** An instant on that clock, ns, as a decimal string (it outgrows a double's integers). */
  kernel_ns: string;
  /** The same instant on the wall clock (CLOCK_REALTIME). */
  time: string;
  /** Half the narrowest bracket of the readings the pair was taken from, ns. */
  uncertainty_ns: number;
}

export interface JsonMergedNode {
  node: string;
  /** The input it was read from, as named on the command line. */
  source: string;
  /** Records read from it (a stream's: those of the first window, read before the header was written). */
  records: number;
  /** What was added to its times, ns. */
  offset_ns: number;
  /** How far the offset may be off, ns; null where the pairs bound it on one side only, or not at all. */
  uncertainty_ns: number | null;
  /** Pairs across the wire it took part in. */
  pairs: number;
}

export interface JsonMerged {
  nodes: JsonMergedNode[];
  /** The node whose clock the others were aligned to. */
  reference: string;
  window_ms: number;
  pairs: number;
  ambiguous: number;
}

export interface JsonLostRecord {
  v: typeof JSON_SCHEMA_VERSION;
  type: 'lost';
  time: string;
  count: number;
  total: number;
  /** Absent for the ring's records. */
  source?: 'nft';
}

export function toJsonRecord(e: TraceEvent, opts: { stack: boolean }): JsonRecord {
  const t = e.tuple;
  const rec: JsonRecord = {
    v: JSON_SCHEMA_VERSION,
    time: formatTime(e.timeNs),
    skb: formatSkb(e.skb),
    cpu: e.cpu,
    process: formatProcess(e.comm, e.pid),
    pid: e.pid,
    netns: e.netns,
    netns_name: e.netnsName,
    mark: e.mark,
    iface: formatIface(e.ifname, e.ifindex),
    ifindex: e.ifindex,
    proto: e.protocol,
    mtu: e.mtu,
    len: e.len,
    tuple: jsonTuple(t),
    ...(e.tupleBefore ? { tuple_before: jsonTuple(e.tupleBefore) } : {}),
    func: e.func,
    probe: { type: e.probe.type, name: e.probe.name },
    drop_reason: e.dropReason,
    caller: e.caller,
  };
  if (e.pod) rec.pod = { namespace: e.pod.namespace, name: e.pod.name, uid: e.pod.uid };
  if (e.vlan) rec.vlan = [...e.vlan];
  if (e.ct) rec.ct = toJsonCt(e.ct);
  if (e.verdict) rec.verdict = toJsonVerdict(e.verdict);
  if (e.nft) rec.nft = toJsonNft(e.nft);
  sectionsToJson(e, rec as unknown as Record<string, unknown>);
  if (opts.stack) rec.stack = e.stack ?? [];
  if (e.packet) rec.packet = toJsonPacket(e.packet);
  if (e.node !== undefined) Object.assign(rec, { node: e.node }, e.journey !== undefined && { journey: e.journey });
  return rec;
}

/**
 * Quotes a string as jsonText does. Most strings here (names, symbols,
 * addresses) need no escaping; a plain scan for the characters that do is
 * cheaper than a regular expression on such short strings.
 */
function str(s: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    // Controls, '"', '\\', and surrogates (lone ones are escaped).
    if (c === 0x22 || c === 0x5c || isControl(c) || (c >= 0xd800 && c <= 0xdfff)) return jsonText(s);
  }
  return '"' + s + '"';
}

function strOrNull(s: string | null): string {
  return s === null ? 'null' : str(s);
}

// The line as bytes. A record's fields fall in two runs that repeat from
// record to record — its start (time to the second, process, where the packet
// is) and its end (tuple, point) — and two fixed-width values that change at
// every record: the time's nanoseconds and the skb. Each run is kept as bytes
// by what it is made of, so a line is two copies and the values written into
// the first (see line.ts for why not a string). A run is looked for in two
// slots of its cache, and a miss takes the place of what the second held.

const TIME_OPEN = '{"v":' + JSON_SCHEMA_VERSION + ',"time":"';
const SKB_OPEN = '","skb":"0x';

/** `{"v":1,"time":"<second>.<nanos>Z","skb":"0x<16 hex>","cpu":…,"len":` (the run up to the length). */
function headText(e: TraceEvent): string {
  return TIME_OPEN + formatTime(e.timeNs) + SKB_OPEN + formatSkb(e.skb).slice(2) + '","cpu":' + e.cpu +
    ',"process":' + str(formatProcess(e.comm, e.pid)) + ',"pid":' + e.pid +
    ',"netns":' + formatDecimal(e.netns) + ',"netns_name":' + str(e.netnsName) + ',"mark":' + formatDecimal(e.mark) +
    ',"iface":' + str(formatIface(e.ifname, e.ifindex)) + ',"ifindex":' + e.ifindex +
    ',"proto":' + e.protocol + ',"mtu":' + e.mtu + ',"len":';
}

/** `,"tuple":{…}` or `,"tuple":null` */
function tupleText(t: Tuple | null): string {
  if (t === null) return ',"tuple":null';
  const p = jsonProto(t.l4proto);
  return ',"tuple":{"saddr":' + str(t.saddr) + ',"daddr":' + str(t.daddr) + ',"sport":' + t.sport + ',"dport":' + t.dport +
    ',"proto":' + (typeof p === 'number' ? String(p) : '"' + p + '"') +
    ',"flags":"' + (t.l4proto === IPPROTO.TCP ? tcpFlagNames(t.tcpFlags) : '') + '"}';
}

/** `,"func":…,"probe":{…},"drop_reason":…,"caller":…` (the record goes on or closes after it). */
function pointText(e: TraceEvent): string {
  return ',"func":' + str(e.func) + ',"probe":{"type":' + str(e.probe.type) + ',"name":' + str(e.probe.name) +
    '},"drop_reason":' + strOrNull(e.dropReason) + ',"caller":' + strOrNull(e.caller);
}

interface HeadRun {
  /** The second's `YYYY-MM-DDTHH:MM:SS.` (the same string for the whole second). */
  second: string;
  cpu: number;
  pid: number;
  comm: string;
  netns: number;
  netnsName: string;
  mark: number;
  ifindex: number;
  ifname: string;
  proto: number;
  mtu: number;
  /** Where the nanoseconds' 9 digits start, and the skb's 16 hex digits. */
  nanosAt: number;
  skbAt: number;
  bytes: Uint8Array;
}

const heads = new SlotCache<HeadRun>(1024, () => ({
  second: '', cpu: NaN, pid: 0, comm: '', netns: 0, netnsName: '', mark: 0, ifindex: 0, ifname: '', proto: 0, mtu: 0,
  nanosAt: 0, skbAt: 0, bytes: NO_TEXT,
}));

function isHeadOf(c: HeadRun, e: TraceEvent, second: string): boolean {
  return c.pid === e.pid && c.cpu === e.cpu && c.netns === e.netns && c.ifindex === e.ifindex && c.mark === e.mark &&
    c.proto === e.protocol && c.mtu === e.mtu && c.second === second && c.comm === e.comm && c.ifname === e.ifname &&
    c.netnsName === e.netnsName;
}

/** The run up to `"len":` for `e`'s second and fields (its nanoseconds and skb are another record's: write them over). */
function headRun(e: TraceEvent, second: string): HeadRun {
  const h = mix32(e.pid ^ Math.imul(e.cpu, 0x9e3779b1) ^ Math.imul(e.netns, 0x85ebca6b) ^ Math.imul(e.ifindex, 0xc2b2ae35) ^
    Math.imul(e.mark, 31) ^ Math.imul(e.protocol, 7) ^ e.mtu);
  const first = heads.at(h);
  if (isHeadOf(first, e, second)) return first;
  const c = heads.second(h);
  if (isHeadOf(c, e, second)) return c;
  // A start of another second is of no use any more.
  const fill = first.second !== second ? first : c;
  fill.second = second;
  fill.cpu = e.cpu;
  fill.pid = e.pid;
  fill.comm = e.comm;
  fill.netns = e.netns;
  fill.netnsName = e.netnsName;
  fill.mark = e.mark;
  fill.ifindex = e.ifindex;
  fill.ifname = e.ifname;
  fill.proto = e.protocol;
  fill.mtu = e.mtu;
  const text = headText(e);
  // The text before both is ASCII: characters are bytes.
  fill.nanosAt = TIME_OPEN.length + second.length;
  fill.skbAt = text.indexOf(SKB_OPEN) + SKB_OPEN.length;
  fill.bytes = utf8(text);
  return fill;
}

interface TailRun {
  tuple: Tuple | null;
  func: string;
  type: string;
  name: string;
  dropReason: string | null;
  caller: string | null;
  /** Without the closing brace, for records that go on (ct, stack). */
  open: Uint8Array;
  /** With it. */
  closed: Uint8Array;
}

const tails = new SlotCache<TailRun>(1024, () => ({
  tuple: null, func: '', type: '', name: '', dropReason: null, caller: null, open: NO_TEXT, closed: NO_TEXT,
}));

function isTailOf(c: TailRun, e: TraceEvent): boolean {
  const t = e.tuple;
  // An entry never filled matches nothing (its fields could be an event's).
  return c.open !== NO_TEXT && c.func === e.func && c.name === e.probe.name && c.type === e.probe.type && c.dropReason === e.dropReason &&
    c.caller === e.caller && (t === null ? c.tuple === null : c.tuple !== null && sameTupleFields(c.tuple, t));
}

/** `,"tuple":…,"func":…,"caller":…`, the run after the length. */
function tailRun(e: TraceEvent): TailRun {
  const { tuple, func, probe, dropReason: drop, caller } = e;
  const p = Math.imul(func.length, 31) + Math.imul(probe.name.length, 7) + probe.type.length +
    (func.length > 0 ? Math.imul(func.charCodeAt(func.length - 1), 131) : 0) +
    (drop === null ? 0 : Math.imul(drop.length, 13)) + (caller === null ? 0 : Math.imul(caller.length, 17));
  // The two parts mixed apart: a flow's next port must not meet the next point's name.
  const h = mix32((tuple === null ? 0 : tupleHash(tuple)) ^ Math.imul(p, 0x9e3779b1));
  const first = tails.at(h);
  if (isTailOf(first, e)) return first;
  const c = tails.second(h);
  if (isTailOf(c, e)) return c;
  const fill = first.open === NO_TEXT ? first : c;
  const open = tupleText(tuple) + pointText(e);
  fill.tuple = tuple;
  fill.func = func;
  fill.type = probe.type;
  fill.name = probe.name;
  fill.dropReason = drop;
  fill.caller = caller;
  fill.open = utf8(open);
  fill.closed = utf8(open + '}');
  return fill;
}

const ctSegs = new SlotCache(256, (): { ct: CtInfo | null; bytes: Uint8Array } => ({ ct: null, bytes: NO_TEXT }));

/**
 * `,"ct":{…}`. Half the records of a flow carry conntrack (tc and netfilter
 * points) and the entry's view repeats from packet to packet: its text is
 * kept, keyed by what it is made of.
 */
function ctSeg(ct: CtInfo): Uint8Array {
  const c = ctSegs.at(ctHash(ct));
  if (c.ct !== null && sameCt(c.ct, ct)) return c.bytes;
  c.ct = ct;
  return (c.bytes = utf8(',"ct":' + jsonText(toJsonCt(ct))));
}

const CLOSE = 0x7d;

/** `,"pod":{…}`, kept per pod: every record of a pod's namespace carries the same one. */
const podSegs = new WeakMap<PodRef, Uint8Array>();
function podSeg(pod: PodRef): Uint8Array {
  let bytes = podSegs.get(pod);
  if (bytes === undefined) {
    bytes = utf8(',"pod":{"namespace":' + str(pod.namespace) + ',"name":' + str(pod.name) + ',"uid":' + str(pod.uid) + '}');
    podSegs.set(pod, bytes);
  }
  return bytes;
}

/**
 * Writes `jsonText(toJsonRecord(e, opts))` as bytes, built directly: the
 * generic serializer walks a fresh object per event and costs several times
 * more, which matters at a million events a second. Tests check both agree.
 */
export function encodeJsonLine(e: TraceEvent, opts: { stack: boolean }, enc: LineEncoder): void {
  const nanos = utcFraction(e.timeNs);
  const skb = skbDigitWords(e.skb);
  if (skb !== null && !e.tupleBefore) {
    const head = headRun(e, utcSecondPrefix());
    const start = enc.at;
    enc.bytes(head.bytes);
    enc.nanos9At(start + head.nanosAt, nanos);
    enc.wordsAt(start + head.skbAt, skb);
    enc.number(e.len);
    const tail = tailRun(e);
    if (!e.pod && !e.vlan && !e.ct && !opts.stack && !e.verdict && !e.nft && !e.packet && !hasSection(e) && e.node === undefined) {
      enc.bytes(tail.closed);
      return;
    }
    enc.bytes(tail.open);
  } else {
    // Tuple changes are rare next to the core fields, and skbs that are not kernel addresses come from files: strings are fine here.
    enc.text(headText(e));
    enc.number(e.len);
    enc.text(tupleText(e.tuple) + (e.tupleBefore ? ',"tuple_before":' + jsonText(jsonTuple(e.tupleBefore)) : '') +
      pointText(e));
  }
  if (e.pod) enc.bytes(podSeg(e.pod));
  if (e.vlan) enc.text(',"vlan":[' + e.vlan.join(',') + ']');
  if (e.ct) enc.bytes(ctSeg(e.ct));
  // Verdict and nft sections are rare next to the core fields: the generic path is fine here.
  if (e.verdict) enc.text(',"verdict":' + jsonText(toJsonVerdict(e.verdict)));
  if (e.nft) enc.text(',"nft":' + jsonText(toJsonNft(e.nft)));
  if (hasSection(e)) enc.text(sectionsJsonText(e));
  if (opts.stack) {
    const st = e.stack;
    if (st === null || st.length === 0) {
      enc.text(',"stack":[]');
    } else {
      enc.text(',"stack":[' + str(st[0]!));
      for (let i = 1; i < st.length; i++) enc.text(',' + str(st[i]!));
      enc.byte(0x5d);
    }
  }
  if (e.packet) enc.text(',"packet":' + JSON.stringify(toJsonPacket(e.packet)));
  if (e.node !== undefined) enc.text(',"node":' + str(e.node) + (e.journey !== undefined ? ',"journey":' + str(e.journey) : ''));
  enc.byte(CLOSE);
}

/** The line encodeJsonLine writes, as a string. */
export function jsonLine(e: TraceEvent, opts: { stack: boolean }): string {
  return lineText((enc) => encodeJsonLine(e, opts, enc));
}

/** The in-band record written whenever the kernel dropped records. */
export function lostRecord(n: LostNotice): JsonLostRecord {
  return {
    v: JSON_SCHEMA_VERSION,
    type: 'lost',
    time: formatTime(n.timeNs),
    count: n.count,
    total: n.total,
    ...(n.source ? { source: n.source } : {}),
  };
}
