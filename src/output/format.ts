/**
 * Small pure formatters shared by the text and JSON sinks. They run once per
 * event at up to millions of events per second, so the hot ones use lookup
 * tables and small caches instead of building every string from scratch.
 */
import { type CtInfo, natChanges } from '../trace/ct.js';
import type { TraceEvent, Tuple } from '../trace/event.js';

export type TimestampMode = 'none' | 'current' | 'relative' | 'absolute';

const NS_PER_S = 1_000_000_000n;

/**
 * Flattens a string built by concatenation (the engine flattens in place on
 * indexed access) and returns it. Cached strings are flattened once, so
 * lines that include them do not walk their concatenation tree again every time.
 */
export function flat(s: string): string {
  s.charCodeAt(0);
  return s;
}

// ---------------------------------------------------------------------------
// Protocols and TCP flags

const PROTO_NAMES: ReadonlyMap<number, string> = new Map([
  [1, 'icmp'],
  [6, 'tcp'],
  [17, 'udp'],
  [58, 'icmp6'],
  [132, 'sctp'],
]);

/** L4 protocol name as pwru prints it; other protocol numbers stay numbers. */
export function protoName(n: number): string | number {
  return PROTO_NAMES.get(n) ?? n;
}

/** Protocols whose tuple carries ports (tcp, udp, sctp, udplite, dccp). */
const PORTED = new Set([6, 17, 132, 136, 33]);

/**
 * Names in bit order, the order pwru prints them in: FIN|SYN|RST|PSH|ACK|URG|ECE|CWR,
 * so a SYN-ACK reads `SYN|ACK` and a FIN-ACK `FIN|ACK`.
 */
const TCP_FLAG_BITS = ['FIN', 'SYN', 'RST', 'PSH', 'ACK', 'URG', 'ECE', 'CWR'] as const;

const TCP_FLAG_TABLE: readonly string[] = (() => {
  const t: string[] = [];
  for (let bits = 0; bits < 256; bits++) {
    const names: string[] = [];
    for (let i = 0; i < 8; i++) if (bits & (1 << i)) names.push(TCP_FLAG_BITS[i]!);
    t.push(names.join('|'));
  }
  return t;
})();

/** `SYN|ACK` style names of the set bits of a TCP flags byte; '' when none. */
export function tcpFlagNames(bits: number): string {
  return TCP_FLAG_TABLE[bits & 0xff]!;
}

// ---------------------------------------------------------------------------
// Tuples

/**
 * pwru-style tuple: `192.0.2.1:43210->192.0.2.2:80(tcp)`,
 * `[2001:db8::1]:80->[2001:db8::2]:5000(udp)`, `192.0.2.1->192.0.2.2(icmp)`.
 * Protocols without ports (icmp, icmp6, unknown numbers) are printed without
 * them. With `tcpFlags`, TCP flags go inside the parentheses: `(tcp:SYN|ACK)`.
 */
export function formatTuple(t: Tuple | null, opts: { tcpFlags: boolean }): string {
  if (t === null) return '';
  const flags = opts.tcpFlags;
  const slot = tupleSlot(t, flags);
  const c = tupleCache[slot];
  if (
    c != null && c.sport === t.sport && c.dport === t.dport && c.l4proto === t.l4proto &&
    c.tcpFlags === t.tcpFlags && c.withFlags === flags && c.l3 === t.l3 &&
    c.saddr === t.saddr && c.daddr === t.daddr
  ) {
    return c.s;
  }
  const s = flat(buildTuple(t, flags));
  tupleCache[slot] = {
    l3: t.l3, saddr: t.saddr, daddr: t.daddr, sport: t.sport, dport: t.dport,
    l4proto: t.l4proto, tcpFlags: t.tcpFlags, withFlags: flags, s,
  };
  return s;
}

function buildTuple(t: Tuple, tcpFlags: boolean): string {
  const p = t.l4proto;
  let l4 = PROTO_NAMES.get(p) ?? String(p);
  if (tcpFlags && p === 6 && t.tcpFlags !== 0) l4 += ':' + TCP_FLAG_TABLE[t.tcpFlags & 0xff]!;
  const v6 = t.l3 === 6;
  const s = v6 ? '[' + t.saddr + ']' : t.saddr;
  const d = v6 ? '[' + t.daddr + ']' : t.daddr;
  if (PORTED.has(p)) return s + ':' + t.sport + '->' + d + ':' + t.dport + '(' + l4 + ')';
  return s + '->' + d + '(' + l4 + ')';
}

// The packets of a flow repeat their tuple at every point they pass, so
// formatted tuples are kept in a small direct-mapped cache keyed by content.
interface TupleEntry extends Tuple {
  withFlags: boolean;
  s: string;
}

const TUPLE_SLOTS = 1024;
const tupleCache: (TupleEntry | null)[] = new Array<TupleEntry | null>(TUPLE_SLOTS).fill(null);

/** A cache slot from the tuple's numbers and the last characters of its addresses. */
export function tupleSlot(t: Tuple, salt: boolean): number {
  const sa = t.saddr;
  const da = t.daddr;
  const h =
    Math.imul(t.sport, 31) + Math.imul(t.dport, 17) + t.l4proto + Math.imul(t.tcpFlags, 7) +
    Math.imul(sa.length, 131) + Math.imul(da.length, 71) +
    Math.imul(sa.length > 0 ? sa.charCodeAt(sa.length - 1) : 0, 3) +
    (da.length > 0 ? da.charCodeAt(da.length - 1) : 0) + (salt ? 512 : 0);
  return (h ^ (h >>> 10)) & (TUPLE_SLOTS - 1);
}

// ---------------------------------------------------------------------------
// Numbers in hex

const HEX_ZEROS = '0000000000000000';

// Events of one packet come in runs and interleave with few others, so a small
// direct-mapped cache (slot from the address bits above slab alignment) saves
// most BigInt-to-hex conversions and never needs clearing.
const SKB_SLOTS = 4096;
const skbKeys: bigint[] = new Array<bigint>(SKB_SLOTS).fill(-1n);
const skbStrs: string[] = new Array<string>(SKB_SLOTS).fill('');

/** An skb address as `0x` and 16 hex digits, e.g. `0xffff8880045c3e00`. */
export function formatSkb(skb: bigint): string {
  const lo = Number(skb & 0xffffffffn);
  const slot = ((lo >>> 8) ^ (lo >>> 20)) & (SKB_SLOTS - 1);
  if (skbKeys[slot] === skb) return skbStrs[slot]!;
  const h = skb.toString(16);
  const s = flat('0x' + (h.length < 16 ? HEX_ZEROS.slice(h.length) + h : h));
  skbKeys[slot] = skb;
  skbStrs[slot] = s;
  return s;
}

/**
 * Memo for values that repeat across events (marks, namespace inodes): they
 * take few distinct values, and large numbers are slow to stringify.
 */
class StringMemo {
  private readonly map = new Map<number, string>();
  private lastN = NaN;
  private lastS = '';

  constructor(
    private readonly make: (n: number) => string,
    private readonly max = 1024,
  ) {}

  get(n: number): string {
    // Runs of events from one namespace are common; skip the map for them.
    if (n === this.lastN) return this.lastS;
    let s = this.map.get(n);
    if (s === undefined) {
      s = this.make(n);
      if (this.map.size >= this.max) this.map.clear();
      this.map.set(n, s);
    }
    this.lastN = n;
    this.lastS = s;
    return s;
  }
}

const hexMemo = new StringMemo((n) => '0x' + n.toString(16));
const decimalMemo = new StringMemo((n) => String(n));

/** `0x` and lower-case hex without padding, e.g. a mark `0x1f`. */
export function formatHex(n: number): string {
  return n === 0 ? '0x0' : hexMemo.get(n >>> 0);
}

/** Decimal text of a number that repeats across events (e.g. a netns inode). */
export function formatDecimal(n: number): string {
  return n === 0 ? '0' : decimalMemo.get(n);
}

const ETHERTYPES: string[] = [];

/** An ethertype as `0x` and 4 hex digits, e.g. `0x0800`. */
export function formatEthertype(proto: number): string {
  const p = proto & 0xffff;
  let s = ETHERTYPES[p];
  if (s === undefined) {
    const h = p.toString(16);
    s = ETHERTYPES[p] = '0x' + HEX_ZEROS.slice(0, 4 - h.length) + h;
  }
  return s;
}

// ---------------------------------------------------------------------------
// Time

function pad2(n: number): string {
  return n < 10 ? '0' + n : String(n);
}

/** '000'..'999': fractions are built from three-digit groups, cheaper than number-to-string and padding. */
const DIGITS3: readonly string[] = Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, '0'));

/** Nanoseconds of a second (0..999999999) as 9 digits. */
export function nanos9(frac: number): string {
  const a = Math.floor(frac / 1_000_000);
  const r = frac - a * 1_000_000;
  const b = Math.floor(r / 1000);
  return DIGITS3[a]! + DIGITS3[b]! + DIGITS3[r - b * 1000]!;
}

/** Microseconds of a second (from 0..999999999 ns) as 6 digits. */
function micros6(frac: number): string {
  const a = Math.floor(frac / 1_000_000);
  const r = frac - a * 1_000_000;
  return DIGITS3[a]! + DIGITS3[Math.floor(r / 1000)]!;
}

/**
 * One second's worth of a clock: while timestamps stay inside [start, end) the
 * date part is reused and only one BigInt subtraction is needed per event.
 */
interface SecondCache {
  start: bigint;
  end: bigint;
  prefix: string;
}

const utc: SecondCache = { start: 0n, end: 0n, prefix: '' };
const local: SecondCache = { start: 0n, end: 0n, prefix: '' };

function utcPrefix(sec: bigint): string {
  // toISOString gives `YYYY-MM-DDTHH:MM:SS.mmmZ`; keep up to the dot.
  return new Date(Number(sec) * 1000).toISOString().slice(0, 20);
}

function localPrefix(sec: bigint): string {
  const d = new Date(Number(sec) * 1000);
  return pad2(d.getHours()) + ':' + pad2(d.getMinutes()) + ':' + pad2(d.getSeconds()) + '.';
}

/** Moves the cache to the second holding `ns`; returns the nanoseconds into it. */
function fracIn(c: SecondCache, ns: bigint, prefix: (sec: bigint) => string): number {
  if (ns >= c.start && ns < c.end) return Number(ns - c.start);
  const sec = ns / NS_PER_S;
  c.start = sec * NS_PER_S;
  c.end = c.start + NS_PER_S;
  c.prefix = prefix(sec);
  return Number(ns - c.start);
}

/**
 * Nanoseconds into the second of `ns`; afterwards utcSecondPrefix() is that
 * second's `YYYY-MM-DDTHH:MM:SS.` (the same string object for the whole second).
 */
export function utcFraction(ns: bigint): number {
  return fracIn(utc, ns, utcPrefix);
}

export function utcSecondPrefix(): string {
  return utc.prefix;
}

/** RFC 3339 in UTC with nanoseconds: `2026-11-27T05:30:00.123456789Z`. */
export function formatTime(ns: bigint): string {
  const frac = fracIn(utc, ns, utcPrefix);
  // The digits and 'Z' join into one short flat string: one piece less in the line.
  return utc.prefix + (nanos9(frac) + 'Z');
}

/** Local wall clock with microseconds: `HH:MM:SS.uuuuuu`. */
function formatLocalClock(ns: bigint): string {
  const frac = fracIn(local, ns, localPrefix);
  return local.prefix + micros6(frac);
}

/** Seconds since the trace started with microseconds: `+1.234567`. */
function formatRelative(ns: bigint): string {
  let sign = '+';
  if (ns < 0n) {
    sign = '-';
    ns = -ns;
  }
  const sec = ns / NS_PER_S;
  return sign + sec + '.' + micros6(Number(ns - sec * NS_PER_S));
}

/**
 * The timestamp column for `--timestamp`: '' for none, `HH:MM:SS.uuuuuu` local
 * time for current, RFC 3339 UTC with nanoseconds for absolute, `+S.uuuuuu`
 * since the trace started for relative.
 */
export function formatTimestamp(
  e: Pick<TraceEvent, 'timeNs' | 'sinceStartNs'>,
  mode: TimestampMode,
): string {
  switch (mode) {
    case 'none':
      return '';
    case 'current':
      return formatLocalClock(e.timeNs);
    case 'absolute':
      return formatTime(e.timeNs);
    case 'relative':
      return formatRelative(e.sinceStartNs);
  }
}

/** Width of the timestamp column for a mode (relative values may exceed it). */
export function timestampWidth(mode: TimestampMode): number {
  switch (mode) {
    case 'none':
      return 0;
    case 'current':
      return 15;
    case 'absolute':
      return 30;
    case 'relative':
      return 11;
  }
}

// ---------------------------------------------------------------------------
// Names

/** `comm:pid`, as pwru prints the process. */
export function formatProcess(comm: string, pid: number): string {
  return comm + ':' + pid;
}

// Interface names per ifindex, checked against the name since ifindexes repeat across namespaces.
const ifaceNames = new Map<number, string>();
const ifaceStrs = new Map<number, string>();

/** `name:ifindex`, or just the ifindex when the name is unknown. */
export function formatIface(ifname: string, ifindex: number): string {
  if (ifaceNames.get(ifindex) === ifname) return ifaceStrs.get(ifindex)!;
  const s = ifname === '' ? String(ifindex) : ifname + ':' + ifindex;
  if (ifaceNames.size >= 4096) {
    ifaceNames.clear();
    ifaceStrs.clear();
  }
  ifaceNames.set(ifindex, ifname);
  ifaceStrs.set(ifindex, s);
  return s;
}

function endpoint(addr: string, port: number, withPort: boolean): string {
  const a = addr.includes(':') ? '[' + addr + ']' : addr;
  return withPort ? a + ':' + port : a;
}

/**
 * The conntrack column: `ct:ESTABLISHED/REPLY status=SEEN_REPLY|ASSURED|CONFIRMED`,
 * then the translations the entry records (`DNAT 203.0.113.1:80 → 198.51.100.2:8080`).
 * `ct:untracked` for notrack'ed packets, `ct:none` when a lookup found no entry.
 */
export function formatCt(ct: CtInfo): string {
  if (ct.state === 'UNTRACKED') return 'ct:untracked';
  if (!ct.found) return 'ct:none';
  let s = 'ct:' + ct.state + (ct.dir === 'reply' ? '/REPLY' : '');
  if (ct.status.length > 0) s += ' status=' + ct.status.join('|');
  if (ct.mark !== 0) s += ' ctmark=' + formatHex(ct.mark);
  if (ct.zone !== 0) s += ' zone=' + ct.zone;
  const ported = ct.orig !== null && PORTED.has(ct.orig.l4proto);
  for (const n of natChanges(ct)) {
    s += ' ' + n.kind + ' ' + endpoint(n.from.addr, n.from.port, ported) + ' \u2192 ' + endpoint(n.to.addr, n.to.port, ported);
  }
  return s;
}

/**
 * What changed in a packet's tuple since the point before it: `DNAT 192.0.2.2:80 → 198.51.100.2:8080`
 * when only the destination moved, `SNAT …` when only the source did, both when both did, and the
 * whole tuples (`tuple A → B`) when the packet became another one (encapsulation, decapsulation).
 */
export function formatTupleChange(before: Tuple, after: Tuple): string {
  const ported = PORTED.has(after.l4proto);
  if (before.l4proto !== after.l4proto || before.l3 !== after.l3) {
    return 'tuple ' + formatTuple(before, { tcpFlags: false }) + ' \u2192 ' + formatTuple(after, { tcpFlags: false });
  }
  const parts: string[] = [];
  if (before.daddr !== after.daddr || before.dport !== after.dport) {
    parts.push('DNAT ' + endpoint(before.daddr, before.dport, ported) + ' \u2192 ' + endpoint(after.daddr, after.dport, ported));
  }
  if (before.saddr !== after.saddr || before.sport !== after.sport) {
    parts.push('SNAT ' + endpoint(before.saddr, before.sport, ported) + ' \u2192 ' + endpoint(after.saddr, after.sport, ported));
  }
  return parts.join(' ');
}
