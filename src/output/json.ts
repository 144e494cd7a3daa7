/**
 * JSON lines records (`--output-json`). Field names and order are a contract
 * (see DESIGN.md "JSON lines"): consumers and recorded traces depend on them,
 * so any change bumps JSON_SCHEMA_VERSION. Zero values are written, not omitted.
 */
import type { CtInfo, CtTuple } from '../trace/ct.js';
import type { Tuple } from '../decode/event.js';
import type { LostNotice, ProbeType, TraceEvent } from '../trace/event.js';
import {
  flat,
  formatDecimal,
  formatIface,
  formatProcess,
  formatSkb,
  formatTime,
  nanos9,
  tcpFlagNames,
  tupleSlot,
  utcFraction,
  utcSecondPrefix,
} from './format.js';

export const JSON_SCHEMA_VERSION = 1;

export type JsonProto = 'tcp' | 'udp' | 'icmp' | 'icmp6' | number;

export interface JsonTuple {
  saddr: string;
  daddr: string;
  sport: number;
  dport: number;
  proto: JsonProto;
  /** `SYN|ACK` style; '' when no flag is set or the packet is not TCP. */
  flags: string;
}

export interface JsonCtTuple {
  saddr: string;
  daddr: string;
  sport: number;
  dport: number;
  proto: JsonProto;
}

export interface JsonCt {
  source: CtInfo['source'];
  found: boolean;
  state: CtInfo['state'];
  dir: CtInfo['dir'];
  /** Address of the entry, `0x…`: groups the packets of one connection. */
  id: string;
  status: string[];
  zone: number;
  mark: number;
  error: number;
  orig: JsonCtTuple | null;
  reply: JsonCtTuple | null;
}

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
  /** Present only when stacks are requested. */
  stack?: string[];
}

export interface JsonLostRecord {
  v: typeof JSON_SCHEMA_VERSION;
  type: 'lost';
  time: string;
  count: number;
  total: number;
}

/** The schema names these four; every other protocol stays a number (sctp included). */
function jsonProto(n: number): JsonProto {
  switch (n) {
    case 6:
      return 'tcp';
    case 17:
      return 'udp';
    case 1:
      return 'icmp';
    case 58:
      return 'icmp6';
    default:
      return n;
  }
}

function jsonCtTuple(t: CtTuple | null): JsonCtTuple | null {
  return t === null ? null : { saddr: t.saddr, daddr: t.daddr, sport: t.sport, dport: t.dport, proto: jsonProto(t.l4proto) };
}

export function toJsonCt(ct: CtInfo): JsonCt {
  return {
    source: ct.source,
    found: ct.found,
    state: ct.state,
    dir: ct.dir,
    id: '0x' + ct.id.toString(16).padStart(16, '0'),
    status: ct.status,
    zone: ct.zone,
    mark: ct.mark,
    error: ct.error,
    orig: jsonCtTuple(ct.orig),
    reply: jsonCtTuple(ct.reply),
  };
}

function jsonTuple(t: Tuple | null): JsonTuple | null {
  if (t === null) return null;
  return {
    saddr: t.saddr,
    daddr: t.daddr,
    sport: t.sport,
    dport: t.dport,
    proto: jsonProto(t.l4proto),
    flags: t.l4proto === 6 ? tcpFlagNames(t.tcpFlags) : '',
  };
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
  if (opts.stack) rec.stack = e.stack ?? [];
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

// Cached pieces of the line. Each holds the JSON text of a few fields that
// repeat across events (same skb, process, namespace, interface, tuple, probe)
// together with the punctuation around them, so a line is joined from about a
// dozen flat strings; writing out a line costs per piece as well as per byte.
// The caches are direct-mapped: a slot holds the last value that hashed there.

let headPrefix = '';
let head = '';

/** `{"v":1,"time":"YYYY-MM-DDTHH:MM:SS.` for the second of `ns`; returns the nanoseconds into it. */
function timeHead(ns: bigint): number {
  const frac = utcFraction(ns);
  const p = utcSecondPrefix();
  if (p !== headPrefix) {
    headPrefix = p;
    head = flat('{"v":1,"time":"' + p);
  }
  return frac;
}

const SKB_SLOTS = 4096;
const skbKeys: bigint[] = new Array<bigint>(SKB_SLOTS).fill(-1n);
const skbSegs: string[] = new Array<string>(SKB_SLOTS).fill('');

/** `Z","skb":"0x…","cpu":` */
function skbSeg(skb: bigint): string {
  const lo = Number(skb & 0xffffffffn);
  const slot = ((lo >>> 8) ^ (lo >>> 20)) & (SKB_SLOTS - 1);
  if (skbKeys[slot] === skb) return skbSegs[slot]!;
  const s = flat('Z","skb":"' + formatSkb(skb) + '","cpu":');
  skbKeys[slot] = skb;
  skbSegs[slot] = s;
  return s;
}

const PROC_SLOTS = 1024;
const procPids: number[] = new Array<number>(PROC_SLOTS).fill(-1);
const procComms: string[] = new Array<string>(PROC_SLOTS).fill('');
const procSegs: string[] = new Array<string>(PROC_SLOTS).fill('');

/** `,"process":"comm:pid","pid":pid,"netns":` */
function procSeg(comm: string, pid: number): string {
  const slot = pid & (PROC_SLOTS - 1);
  if (procPids[slot] === pid && procComms[slot] === comm) return procSegs[slot]!;
  const s = flat(',"process":' + str(formatProcess(comm, pid)) + ',"pid":' + pid + ',"netns":');
  procPids[slot] = pid;
  procComms[slot] = comm;
  procSegs[slot] = s;
  return s;
}

const NS_SLOTS = 256;
const nsKeys: number[] = new Array<number>(NS_SLOTS).fill(-1);
const nsNames: string[] = new Array<string>(NS_SLOTS).fill('');
const nsSegs: string[] = new Array<string>(NS_SLOTS).fill('');

/** `inode,"netns_name":"name","mark":` */
function netnsSeg(netns: number, name: string): string {
  const slot = (netns ^ (netns >>> 8)) & (NS_SLOTS - 1);
  if (nsKeys[slot] === netns && nsNames[slot] === name) return nsSegs[slot]!;
  const s = flat(formatDecimal(netns) + ',"netns_name":' + str(name) + ',"mark":');
  nsKeys[slot] = netns;
  nsNames[slot] = name;
  nsSegs[slot] = s;
  return s;
}

const IF_SLOTS = 1024;
const ifKeys: number[] = new Array<number>(IF_SLOTS).fill(-1);
const ifNames: string[] = new Array<string>(IF_SLOTS).fill('');
const ifSegs: string[] = new Array<string>(IF_SLOTS).fill('');

/** `,"iface":"name:ifindex","ifindex":ifindex,"proto":` */
function ifaceSeg(ifname: string, ifindex: number): string {
  const slot = ifindex & (IF_SLOTS - 1);
  if (ifKeys[slot] === ifindex && ifNames[slot] === ifname) return ifSegs[slot]!;
  const s = flat(',"iface":' + str(formatIface(ifname, ifindex)) + ',"ifindex":' + ifindex + ',"proto":');
  ifKeys[slot] = ifindex;
  ifNames[slot] = ifname;
  ifSegs[slot] = s;
  return s;
}

const PM_SLOTS = 256;
const pmProtos: number[] = new Array<number>(PM_SLOTS).fill(-1);
const pmMtus: number[] = new Array<number>(PM_SLOTS).fill(-1);
const pmSegs: string[] = new Array<string>(PM_SLOTS).fill('');

/** `proto,"mtu":mtu,"len":` */
function protoMtuSeg(proto: number, mtu: number): string {
  const slot = (proto ^ (proto >>> 8) ^ mtu ^ (mtu >>> 8)) & (PM_SLOTS - 1);
  if (pmProtos[slot] === proto && pmMtus[slot] === mtu) return pmSegs[slot]!;
  const s = flat(proto + ',"mtu":' + mtu + ',"len":');
  pmProtos[slot] = proto;
  pmMtus[slot] = mtu;
  pmSegs[slot] = s;
  return s;
}

interface TupleSeg extends Omit<Tuple, 'l3'> {
  s: string;
}

const TUPLE_SLOTS = 1024;
const tupleSegs: (TupleSeg | null)[] = new Array<TupleSeg | null>(TUPLE_SLOTS).fill(null);

/** `,"tuple":{…}` */
function tupleSeg(t: Tuple): string {
  const slot = tupleSlot(t, false);
  const c = tupleSegs[slot];
  if (
    c != null && c.sport === t.sport && c.dport === t.dport && c.l4proto === t.l4proto &&
    c.tcpFlags === t.tcpFlags && c.saddr === t.saddr && c.daddr === t.daddr
  ) {
    return c.s;
  }
  const p = jsonProto(t.l4proto);
  const s = flat(
    ',"tuple":{"saddr":' + str(t.saddr) +
    ',"daddr":' + str(t.daddr) +
    ',"sport":' + t.sport +
    ',"dport":' + t.dport +
    ',"proto":' + (typeof p === 'number' ? String(p) : '"' + p + '"') +
    ',"flags":"' + (t.l4proto === 6 ? tcpFlagNames(t.tcpFlags) : '') + '"}',
  );
  tupleSegs[slot] = { saddr: t.saddr, daddr: t.daddr, sport: t.sport, dport: t.dport, l4proto: t.l4proto, tcpFlags: t.tcpFlags, s };
  return s;
}

interface PointSeg {
  func: string;
  type: string;
  name: string;
  dropReason: string | null;
  caller: string | null;
  /** Without the closing brace, for lines that go on (ct, stack). */
  open: string;
  /** With the closing brace. */
  closed: string;
}

const POINT_SLOTS = 512;
const pointSegs: (PointSeg | null)[] = new Array<PointSeg | null>(POINT_SLOTS).fill(null);

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
  const slot = (h ^ (h >>> 9)) & (POINT_SLOTS - 1);
  const c = pointSegs[slot];
  if (
    c != null && c.func === func && c.name === probe.name && c.type === probe.type &&
    c.dropReason === drop && c.caller === caller
  ) {
    return c;
  }
  const open = flat(
    ',"func":' + str(func) +
    ',"probe":{"type":' + str(probe.type) + ',"name":' + str(probe.name) +
    '},"drop_reason":' + strOrNull(drop) +
    ',"caller":' + strOrNull(caller),
  );
  const seg: PointSeg = { func, type: probe.type, name: probe.name, dropReason: drop, caller, open, closed: flat(open + '}') };
  pointSegs[slot] = seg;
  return seg;
}

/**
 * `JSON.stringify(toJsonRecord(e, opts))`, built directly: the generic
 * serializer walks a fresh object per event and costs several times more,
 * which matters at a million events a second. Tests check both agree.
 */
export function jsonLine(e: TraceEvent, opts: { stack: boolean }): string {
  const frac = timeHead(e.timeNs);
  const t = e.tuple;
  let s =
    head + nanos9(frac) +
    skbSeg(e.skb) + e.cpu +
    procSeg(e.comm, e.pid) +
    netnsSeg(e.netns, e.netnsName) + formatDecimal(e.mark) +
    ifaceSeg(e.ifname, e.ifindex) +
    protoMtuSeg(e.protocol, e.mtu) + e.len +
    (t === null ? ',"tuple":null' : tupleSeg(t));
  // Tuple changes are rare next to the core fields: the generic path is fine here.
  if (e.tupleBefore) s += ',"tuple_before":' + JSON.stringify(jsonTuple(e.tupleBefore));
  const point = pointSeg(e);
  if (!e.ct && !opts.stack) return s + point.closed;
  s += point.open;
  // Conntrack sections are rare next to the core fields: the generic path is fine here.
  if (e.ct) s += ',"ct":' + JSON.stringify(toJsonCt(e.ct));
  if (opts.stack) {
    const st = e.stack;
    if (st === null || st.length === 0) {
      s += ',"stack":[]';
    } else {
      s += ',"stack":[' + str(st[0]!);
      for (let i = 1; i < st.length; i++) s += ',' + str(st[i]!);
      s += ']';
    }
  }
  return s + '}';
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
