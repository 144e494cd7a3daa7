/**
 * JSON lines records (`--output-json`). Field names and order are a contract
 * (see DESIGN.md "JSON lines"): consumers and recorded traces depend on them,
 * so any change bumps JSON_SCHEMA_VERSION. Zero values are written, not omitted.
 */
import { AddressText, SlotCache } from '../decode/cache.js';
import { type LineEncoder, NO_BYTES as NO_TEXT, lineText, utf8 } from './line.js';
import { IPPROTO, tcpFlagNames } from '../decode/protocols.js';
import type { CapturedPacket } from '../decode/packet.js';
import { type Tuple, sameTuple, sameTupleFields, tupleHash } from '../decode/tuple.js';
import type { CtInfo, CtTuple } from '../decode/ct.js';
import { type JsonCt, toJsonCt } from './ct.js';
import { type JsonNft, toJsonNft } from './nft.js';
import { type JsonSkbDump, toJsonSkbDump } from './dump.js';
import { type JsonSkbMeta, toJsonSkbMeta } from './skb-meta.js';
import { type JsonTunnel, toJsonTunnel } from './tunnel.js';
import { type JsonVerdict, toJsonVerdict } from './verdict.js';
import type { LostNotice, ProbeType, TraceEvent } from './event.js';
import {
  formatDecimal, formatIface, formatProcess, formatSkb, formatTime, utcFraction, utcSecondPrefix,
} from './format.js';
import { type JsonTuple, jsonProto, jsonTuple } from './tuple.js';

export type { JsonCt, JsonCtTuple } from './ct.js';
export type { JsonProto, JsonTuple } from './tuple.js';

export const JSON_SCHEMA_VERSION = 1;

export interface JsonRecord {
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
  /** The tuple at the previous point that saw this skb, when it changed since (NAT, tunnels). */
  tuple_before?: JsonTuple | null;
  func: string;
  probe: { type: ProbeType; name: string };
  drop_reason: string | null;
  caller: string | null;
  /** Present only when the point knows the packet's conntrack state. */
  ct?: JsonCt;
  /** At tc hooks where other programs run: what they did. */
  verdict?: JsonVerdict;
  /** nftables trace events (--output-nft): the rule evaluation. */
  nft?: JsonNft;
  /** --output-tunnel, for encapsulated packets: the tunnel and the inner tuple. */
  tunnel?: JsonTunnel;
  /** --output-skb-metadata: field → value. */
  skb_metadata?: JsonSkbMeta;
  /** --output-skb, --output-skb-shared-info, --output-skb-cb. */
  skb_dump?: JsonSkbDump;
  /** Present only when stacks are requested. */
  stack?: string[];
  /** The bytes captured at this point, when packets are captured (--output-packet, --output-pcap). */
  packet?: JsonPacket;
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
}

export interface JsonLostRecord {
  v: typeof JSON_SCHEMA_VERSION;
  type: 'lost';
  time: string;
  count: number;
  total: number;
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
  if (e.ct) rec.ct = toJsonCt(e.ct);
  if (e.verdict) rec.verdict = toJsonVerdict(e.verdict);
  if (e.nft) rec.nft = toJsonNft(e.nft);
  if (e.tunnel) rec.tunnel = toJsonTunnel(e.tunnel);
  if (e.skbMeta) rec.skb_metadata = toJsonSkbMeta(e.skbMeta);
  if (e.dump) rec.skb_dump = toJsonSkbDump(e.dump);
  if (opts.stack) rec.stack = e.stack ?? [];
  if (e.packet) rec.packet = toJsonPacket(e.packet);
  return rec;
}

/**
 * Quotes a string as JSON.stringify does. Most strings here (names, symbols,
 * addresses) need no escaping; a plain scan for the characters that do is
 * cheaper than a regular expression on such short strings.
 */
function str(s: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    // Control characters, '"', '\\', and surrogates (lone ones are escaped).
    if (c < 0x20 || c === 0x22 || c === 0x5c || (c >= 0xd800 && c <= 0xdfff)) return JSON.stringify(s);
  }
  return '"' + s + '"';
}

function strOrNull(s: string | null): string {
  return s === null ? 'null' : str(s);
}


// Cached pieces of the line, kept as bytes. Each holds the JSON of a few
// fields that repeat across events (same skb, process, namespace, interface,
// tuple, probe) with the punctuation around them, so a line is a dozen copies
// and a few numbers written as digits (see line.ts for why not a string).
// The caches are direct-mapped: a slot holds the last value that hashed there.

let headPrefix = '';
let head: Uint8Array = utf8('');

/** `{"v":1,"time":"YYYY-MM-DDTHH:MM:SS.` for the second of `ns`; returns the nanoseconds into it. */
function timeHead(ns: bigint): number {
  const frac = utcFraction(ns);
  const p = utcSecondPrefix();
  if (p !== headPrefix) {
    headPrefix = p;
    head = utf8('{"v":1,"time":"' + p);
  }
  return frac;
}

/** `Z","skb":"0x…","cpu":` */
const skbSegs = new AddressText(4096, (skb) => utf8('Z","skb":"' + formatSkb(skb) + '","cpu":'));

const procSegs = new SlotCache(1024, () => ({ cpu: NaN, pid: NaN, comm: '', bytes: NO_TEXT }));

/** `cpu,"process":"comm:pid","pid":pid,"netns":` */
function procSeg(cpu: number, comm: string, pid: number): Uint8Array {
  const h = pid ^ Math.imul(cpu, 0x9e3779b1);
  const c = procSegs.at(h ^ (h >>> 12));
  if (c.pid === pid && c.cpu === cpu && c.comm === comm) return c.bytes;
  c.cpu = cpu;
  c.pid = pid;
  c.comm = comm;
  return (c.bytes = utf8(cpu + ',"process":' + str(formatProcess(comm, pid)) + ',"pid":' + pid + ',"netns":'));
}

interface WhereSeg {
  netns: number;
  name: string;
  mark: number;
  ifindex: number;
  ifname: string;
  proto: number;
  mtu: number;
  bytes: Uint8Array;
}

const whereSegs = new SlotCache<WhereSeg>(1024, () => ({ netns: NaN, name: '', mark: 0, ifindex: 0, ifname: '', proto: 0, mtu: 0, bytes: NO_TEXT }));

/**
 * `inode,"netns_name":…,"mark":…,"iface":…,"ifindex":…,"proto":…,"mtu":…,"len":`:
 * where the packet is, which changes at a few points of its path. Found by
 * namespace and ifindex both: ifindexes repeat across namespaces (every
 * pod's eth0), and a flood between two of them alternates at one index.
 */
function whereSeg(e: TraceEvent): Uint8Array {
  const { netns, netnsName, mark, ifindex, ifname, protocol, mtu } = e;
  const h = netns ^ Math.imul(ifindex, 0x9e3779b1) ^ Math.imul(mark, 31) ^ Math.imul(protocol, 7) ^ mtu;
  const c = whereSegs.at(h ^ (h >>> 10) ^ (h >>> 20));
  if (
    c.netns === netns && c.ifindex === ifindex && c.mark === mark && c.proto === protocol && c.mtu === mtu &&
    c.ifname === ifname && c.name === netnsName
  ) {
    return c.bytes;
  }
  c.netns = netns;
  c.name = netnsName;
  c.mark = mark;
  c.ifindex = ifindex;
  c.ifname = ifname;
  c.proto = protocol;
  c.mtu = mtu;
  return (c.bytes = utf8(
    formatDecimal(netns) + ',"netns_name":' + str(netnsName) + ',"mark":' + formatDecimal(mark) +
    ',"iface":' + str(formatIface(ifname, ifindex)) + ',"ifindex":' + ifindex +
    ',"proto":' + protocol + ',"mtu":' + mtu + ',"len":',
  ));
}

const NO_TUPLE = utf8(',"tuple":null');
const tupleSegs = new SlotCache(1024, (): { tuple: Tuple | null; bytes: Uint8Array } => ({ tuple: null, bytes: NO_TEXT }));

/** `,"tuple":{…}` */
function tupleSeg(t: Tuple): Uint8Array {
  const c = tupleSegs.at(tupleHash(t));
  if (c.tuple !== null && sameTupleFields(c.tuple, t)) return c.bytes;
  const p = jsonProto(t.l4proto);
  const bytes = utf8(
    ',"tuple":{"saddr":' + str(t.saddr) +
    ',"daddr":' + str(t.daddr) +
    ',"sport":' + t.sport +
    ',"dport":' + t.dport +
    ',"proto":' + (typeof p === 'number' ? String(p) : '"' + p + '"') +
    ',"flags":"' + (t.l4proto === IPPROTO.TCP ? tcpFlagNames(t.tcpFlags) : '') + '"}',
  );
  c.tuple = t;
  return (c.bytes = bytes);
}

/** The same flow, or both absent. */
const sameCtTuple = (a: CtTuple | null, b: CtTuple | null): boolean => (a === null || b === null ? a === b : sameTuple(a, b));

/** Every field of the entry's view equal: the test a cached text of `b` passes for `a`. */
function sameCt(a: CtInfo, b: CtInfo): boolean {
  if (a.id !== b.id || a.state !== b.state || a.dir !== b.dir || a.source !== b.source || a.found !== b.found ||
    a.zone !== b.zone || a.mark !== b.mark || a.error !== b.error || a.status.length !== b.status.length) return false;
  for (let i = 0; i < a.status.length; i++) if (a.status[i] !== b.status[i]) return false;
  return sameCtTuple(a.orig, b.orig) && sameCtTuple(a.reply, b.reply);
}

const ctSegs = new SlotCache(256, (): { ct: CtInfo | null; bytes: Uint8Array } => ({ ct: null, bytes: NO_TEXT }));

/**
 * `,"ct":{…}`. Half the records of a flow carry conntrack (tc and netfilter
 * points) and the entry's view repeats from packet to packet: its text is
 * kept, keyed by what it is made of.
 */
function ctSeg(ct: CtInfo): Uint8Array {
  const o = ct.orig;
  const h = (o === null ? 0 : Math.imul(o.sport, 31) + Math.imul(o.dport, 17) + o.l4proto) +
    Math.imul(ct.status.length, 131) + Math.imul(ct.state.length, 7) + (ct.dir === 'reply' ? 1 : 0) + ct.zone + ct.mark;
  const c = ctSegs.at(h ^ (h >>> 9));
  if (c.ct !== null && sameCt(c.ct, ct)) return c.bytes;
  c.ct = ct;
  return (c.bytes = utf8(',"ct":' + JSON.stringify(toJsonCt(ct))));
}

interface PointSeg {
  func: string;
  type: string;
  name: string;
  dropReason: string | null;
  caller: string | null;
  /** Without the closing brace, for lines that go on (ct, stack). */
  open: Uint8Array;
  /** With the closing brace. */
  closed: Uint8Array;
}

const pointSegs = new SlotCache<PointSeg>(512, () => ({ func: '', type: '', name: '', dropReason: null, caller: null, open: NO_TEXT, closed: NO_TEXT }));

/** `,"func":…,"probe":{…},"drop_reason":…,"caller":…`, with or without the final `}`. */
function pointSeg(e: TraceEvent): PointSeg {
  const func = e.func;
  const probe = e.probe;
  const drop = e.dropReason;
  const caller = e.caller;
  const h =
    Math.imul(func.length, 31) + Math.imul(probe.name.length, 7) + probe.type.length +
    (func.length > 0 ? Math.imul(func.charCodeAt(func.length - 1), 131) : 0) +
    (drop === null ? 0 : Math.imul(drop.length, 13)) + (caller === null ? 0 : Math.imul(caller.length, 17));
  const c = pointSegs.at(h ^ (h >>> 9));
  if (
    c.func === func && c.name === probe.name && c.type === probe.type &&
    c.dropReason === drop && c.caller === caller
  ) {
    return c;
  }
  const open =
    ',"func":' + str(func) +
    ',"probe":{"type":' + str(probe.type) + ',"name":' + str(probe.name) +
    '},"drop_reason":' + strOrNull(drop) +
    ',"caller":' + strOrNull(caller);
  c.func = func;
  c.type = probe.type;
  c.name = probe.name;
  c.dropReason = drop;
  c.caller = caller;
  c.open = utf8(open);
  c.closed = utf8(open + '}');
  return c;
}

const CLOSE = 0x7d;

/**
 * Writes `JSON.stringify(toJsonRecord(e, opts))` as bytes, built directly: the
 * generic serializer walks a fresh object per event and costs several times
 * more, which matters at a million events a second. Tests check both agree.
 */
export function encodeJsonLine(e: TraceEvent, opts: { stack: boolean }, enc: LineEncoder): void {
  const frac = timeHead(e.timeNs);
  const t = e.tuple;
  enc.bytes(head);
  enc.nanos9(frac);
  enc.bytes(skbSegs.get(e.skb));
  enc.bytes(procSeg(e.cpu, e.comm, e.pid));
  enc.bytes(whereSeg(e));
  enc.number(e.len);
  enc.bytes(t === null ? NO_TUPLE : tupleSeg(t));
  // Tuple changes are rare next to the core fields: the generic path is fine here.
  if (e.tupleBefore) enc.text(',"tuple_before":' + JSON.stringify(jsonTuple(e.tupleBefore)));
  const point = pointSeg(e);
  if (!e.ct && !opts.stack && !e.verdict && !e.nft && !e.tunnel && !e.skbMeta && !e.dump && !e.packet) {
    enc.bytes(point.closed);
    return;
  }
  enc.bytes(point.open);
  if (e.ct) enc.bytes(ctSeg(e.ct));
  // Verdict and nft sections are rare next to the core fields: the generic path is fine here.
  if (e.verdict) enc.text(',"verdict":' + JSON.stringify(toJsonVerdict(e.verdict)));
  if (e.nft) enc.text(',"nft":' + JSON.stringify(toJsonNft(e.nft)));
  if (e.tunnel) enc.text(',"tunnel":' + JSON.stringify(toJsonTunnel(e.tunnel)));
  if (e.skbMeta) enc.text(',"skb_metadata":' + JSON.stringify(toJsonSkbMeta(e.skbMeta)));
  if (e.dump) enc.text(',"skb_dump":' + JSON.stringify(toJsonSkbDump(e.dump)));
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
  };
}
