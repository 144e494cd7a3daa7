/**
 * Small pure formatters shared by every output: numbers in hex, skb
 * addresses, interface and process names, timestamps. They run once per
 * event at up to millions of events per second, so the hot ones keep what
 * they made in the caches of src/decode/cache.ts.
 */
import { AddressText, NumberText, SlotCache, flat } from '../decode/cache.js';
import type { TimestampMode } from './config.js';

const NS_PER_S = 1_000_000_000n;
const HEX_ZEROS = '0000000000000000';

// ---------------------------------------------------------------------------
// Numbers and addresses

// Events of one packet come in runs and interleave with few others: most skb
// addresses are found here rather than converted from BigInt again.
const skbText = new AddressText(4096, (skb) => {
  const h = skb.toString(16);
  return '0x' + (h.length < 16 ? HEX_ZEROS.slice(h.length) + h : h);
});

/** An skb address as `0x` and 16 hex digits, e.g. `0xffff8880045c3e00`. */
export function formatSkb(skb: bigint): string {
  return skbText.get(skb);
}

/** formatSkb's 16 digits as four little-endian words of ASCII, to write over a copied line; null when it has more (not a kernel address). */
export function skbDigitWords(skb: bigint): Uint32Array | null {
  return skbWords.get(skb);
}

const skbWords = new AddressText<Uint32Array | null>(4096, (skb) => {
  const s = formatSkb(skb);
  if (s.length !== 2 + HEX_ZEROS.length) return null;
  const w = new Uint32Array(4);
  for (let i = 0; i < 16; i++) w[i >> 2]! |= s.charCodeAt(2 + i) << ((i & 3) * 8);
  return w;
});

// Marks and namespace inodes take few distinct values, and large numbers are slow to stringify.
const hexText = new NumberText(1024, (n) => '0x' + n.toString(16));
const decimalText = new NumberText(1024, (n) => String(n));

/** `0x` and lower-case hex without padding, e.g. a mark `0x1f`. */
export function formatHex(n: number): string {
  return n === 0 ? '0x0' : hexText.get(n >>> 0);
}

/** Decimal text of a number that repeats across events (e.g. a netns inode). */
export function formatDecimal(n: number): string {
  return n === 0 ? '0' : decimalText.get(n);
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
  // toISOString gives `YYYY-MM-DDTHH:MM:SS.mmmZ` (`+YYYYYY-…` past year 9999); keep up to the dot.
  const iso = new Date(Number(sec) * 1000).toISOString();
  return iso.slice(0, iso.length - 4);
}

function localPrefix(sec: bigint): string {
  const d = new Date(Number(sec) * 1000);
  return pad2(d.getHours()) + ':' + pad2(d.getMinutes()) + ':' + pad2(d.getSeconds()) + '.';
}

/** Moves the cache to the second holding `ns`; returns the nanoseconds into it (0..999999999). */
function fracIn(c: SecondCache, ns: bigint, prefix: (sec: bigint) => string): number {
  if (ns >= c.start && ns < c.end) return Number(ns - c.start);
  // The second at or before `ns` (BigInt division truncates towards zero: times before 1970 go down).
  let sec = ns / NS_PER_S;
  if (sec * NS_PER_S > ns) sec -= 1n;
  // The prefix first: past Date's range it throws, and the cache stays as it was.
  c.prefix = prefix(sec);
  c.start = sec * NS_PER_S;
  c.end = c.start + NS_PER_S;
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
  e: { timeNs: bigint; sinceStartNs: bigint },
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

/** `12.345µs`, `1.234ms` or `2.500s`. */
export function formatDuration(ns: bigint): string {
  const n = Number(ns);
  if (n < 1e6) return (n / 1e3).toFixed(3) + 'µs';
  if (n < 1e9) return (n / 1e6).toFixed(3) + 'ms';
  return (n / 1e9).toFixed(3) + 's';
}

// ---------------------------------------------------------------------------
// Names

/** `comm:pid`, as pwru prints the process. */
export function formatProcess(comm: string, pid: number): string {
  return comm + ':' + pid;
}

// By ifindex, checked against the name since ifindexes repeat across namespaces.
const ifaceText = new SlotCache(4096, () => ({ ifindex: NaN, ifname: '', text: '' }));

/** `name:ifindex`, or just the ifindex when the name is unknown. */
export function formatIface(ifname: string, ifindex: number): string {
  const c = ifaceText.at(ifindex);
  if (c.ifindex === ifindex && c.ifname === ifname) return c.text;
  c.ifindex = ifindex;
  c.ifname = ifname;
  return (c.text = flat(ifname === '' ? String(ifindex) : ifname + ':' + ifindex));
}

/** The namespace as people name it: its pod's NAMESPACE/NAME, else its name under /run/netns, else its inode. */
export function netnsLabel(e: { netns: number; netnsName: string; pod?: { namespace: string; name: string } | null }): string {
  if (e.pod) return e.pod.namespace + '/' + e.pod.name;
  return e.netnsName !== '' ? e.netnsName : formatDecimal(e.netns);
}

/** `addr:port` (`[addr]:port` for IPv6); the address alone without a port. */
export function formatEndpoint(addr: string, port: number | string, withPort: boolean): string {
  const a = addr.includes(':') ? '[' + addr + ']' : addr;
  return withPort ? a + ':' + port : a;
}
