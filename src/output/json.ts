/**
 * JSON lines records (`--output-json`). Field names and order are a contract
 * (see DESIGN.md "JSON lines"): consumers and recorded traces depend on them,
 * so any change bumps JSON_SCHEMA_VERSION. Zero values are written, not omitted.
 */
import type { CtInfo, CtTuple } from '../trace/ct.js';
import type { Tuple } from '../decode/event.js';
import type { LostNotice, ProbeType, TraceEvent } from '../trace/event.js';
import { formatDecimal, formatIface, formatProcess, formatSkb, formatTime, tcpFlagNames } from './format.js';

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

/**
 * `JSON.stringify(toJsonRecord(e, opts))`, built directly: the generic
 * serializer walks a fresh object per event and costs several times more,
 * which matters at a million events a second. Tests check both agree.
 */
export function jsonLine(e: TraceEvent, opts: { stack: boolean }): string {
  let s =
    '{"v":1,"time":"' + formatTime(e.timeNs) +
    '","skb":"' + formatSkb(e.skb) +
    '","cpu":' + e.cpu +
    ',"process":' + str(formatProcess(e.comm, e.pid)) +
    ',"pid":' + e.pid +
    ',"netns":' + formatDecimal(e.netns) +
    ',"netns_name":' + str(e.netnsName) +
    ',"mark":' + formatDecimal(e.mark) +
    ',"iface":' + str(formatIface(e.ifname, e.ifindex)) +
    ',"ifindex":' + e.ifindex +
    ',"proto":' + e.protocol +
    ',"mtu":' + e.mtu +
    ',"len":' + e.len;
  const t = e.tuple;
  if (t === null) {
    s += ',"tuple":null';
  } else {
    const p = jsonProto(t.l4proto);
    s +=
      ',"tuple":{"saddr":' + str(t.saddr) +
      ',"daddr":' + str(t.daddr) +
      ',"sport":' + t.sport +
      ',"dport":' + t.dport +
      ',"proto":' + (typeof p === 'number' ? String(p) : '"' + p + '"') +
      ',"flags":"' + (t.l4proto === 6 ? tcpFlagNames(t.tcpFlags) : '') + '"}';
  }
  // Tuple changes are rare next to the core fields: the generic path is fine here.
  if (e.tupleBefore) s += ',"tuple_before":' + JSON.stringify(jsonTuple(e.tupleBefore));
  s +=
    ',"func":' + str(e.func) +
    ',"probe":{"type":' + str(e.probe.type) + ',"name":' + str(e.probe.name) +
    '},"drop_reason":' + strOrNull(e.dropReason) +
    ',"caller":' + strOrNull(e.caller);
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
