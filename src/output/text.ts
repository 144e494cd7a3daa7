/**
 * Text lines in pwru's column order:
 *   [TIME] SKB CPU PROCESS [NETNS MARK/x IFACE PROTO MTU LEN] [TUPLE] FUNC [CALLER] [ct:…] [reason=…]
 * Columns are padded to fixed widths so lines of different packets line up;
 * values longer than their column push the rest right (only PROCESS is cut).
 */
import { Chalk } from 'chalk';
import type { LostNotice, TraceEvent, Tuple } from '../trace/event.js';
import {
  flat,
  formatCt,
  formatDecimal,
  formatEthertype,
  formatHex,
  formatIface,
  formatSkb,
  formatTimestamp,
  formatTuple,
  formatTupleChange,
  nanos9,
  timestampWidth,
  tupleSlot,
  utcFraction,
  utcSecondPrefix,
  type TimestampMode,
} from './format.js';

export interface TextOptions {
  tuple: boolean;
  meta: boolean;
  stack: boolean;
  caller: boolean;
  tcpFlags: boolean;
  /** Append the conntrack state where the point knows it (--output-ct). */
  ct?: boolean;
  timestamp: TimestampMode;
  color: boolean;
  /** Chalk level when `color` is set: 1 = 16 colours, 2 = 256, 3 = truecolor. Default 1. */
  colorLevel?: 1 | 2 | 3;
}

export const COLUMN_WIDTHS = {
  skb: 18,
  cpu: 3,
  process: 16,
  netns: 10,
  /** `0x` and up to 8 hex digits. */
  mark: 10,
  iface: 16,
  proto: 6,
  mtu: 5,
  len: 5,
  tuple: 48,
  /** FUNC is only padded when a CALLER column follows it. */
  func: 24,
} as const;

/** Indent of stack frame lines under their event. */
export const STACK_INDENT = '    ';

const MAX_PAD = 64;
const PADS: readonly string[] = Array.from({ length: MAX_PAD + 1 }, (_, i) => ' '.repeat(i));

/** Pads on the right with precomputed spaces; never truncates. */
function pad(s: string, width: number): string {
  const n = width - s.length;
  return n <= 0 ? s : s + PADS[n > MAX_PAD ? MAX_PAD : n]!;
}

/** `comm:pid`, cut from the left with a leading `~` when over 16 characters, like pwru. */
export function processColumn(comm: string, pid: number): string {
  const s = comm + ':' + pid;
  return s.length > COLUMN_WIDTHS.process ? '~' + s.slice(s.length - COLUMN_WIDTHS.process + 1) : s;
}

/** The lost-records warning line, without colour. */
export function formatLost(n: LostNotice): string {
  const what = n.count === 1 ? 'record' : 'records';
  return `!! lost ${n.count} ${what} (total ${n.total}): ring full; raise --ring-size or narrow the filter`;
}

type Paint = readonly [open: string, close: string];

// Packet colours; red is left out because it marks drops.
const PALETTE = [
  'cyan',
  'green',
  'yellow',
  'blue',
  'magenta',
  'cyanBright',
  'greenBright',
  'yellowBright',
  'blueBright',
  'magentaBright',
] as const;

/** The escape sequences a chalk style wraps text in, taken apart once so each event only concatenates. */
function paintOf(style: (s: string) => string): Paint {
  const [open, close] = style('\u0000').split('\u0000');
  return [open ?? '', close ?? ''];
}

/**
 * Index into the palette for an skb. Only the low 32 bits are used (one BigInt
 * operation per event); they differ between live skbs, and being slab-aligned
 * they are mixed before taking the remainder.
 */
export function skbColorIndex(skb: bigint, paletteSize: number = PALETTE.length): number {
  let h = Number(skb & 0xffffffffn);
  h = Math.imul(h ^ (h >>> 16), 0x45d9f3b);
  h = Math.imul(h ^ (h >>> 16), 0x45d9f3b);
  h ^= h >>> 16;
  return (h >>> 0) % paletteSize;
}

// Pieces of a line kept between events. A line joined from ~30 short strings
// is a deep rope the writer has to flatten; joined from a handful of cached,
// already flat column groups it costs a fraction. Each cache is direct-mapped:
// a slot holds the last value that hashed there and is checked against the
// event's values before use. Every piece ends with the space before the next column.

/** Small numbers padded to a column, e.g. `pad(String(cpu), 3) + ' '`, by value. */
class NumberColumn {
  // NaN matches no key, so empty slots need no separate check.
  private readonly keys: Float64Array;
  private readonly strs: string[];

  constructor(
    private readonly width: number,
    private readonly slots: number,
  ) {
    this.keys = new Float64Array(slots).fill(NaN);
    this.strs = new Array<string>(slots).fill('');
  }

  get(n: number): string {
    const slot = n & (this.slots - 1);
    if (this.keys[slot] === n) return this.strs[slot]!;
    const s = flat(pad(String(n), this.width) + ' ');
    this.keys[slot] = n;
    this.strs[slot] = s;
    return s;
  }
}

const cpuColumn = new NumberColumn(COLUMN_WIDTHS.cpu, 1024);
const lenColumn = new NumberColumn(COLUMN_WIDTHS.len, 4096);

const PROC_SLOTS = 1024;
const procPids: number[] = new Array<number>(PROC_SLOTS).fill(NaN);
const procComms: string[] = new Array<string>(PROC_SLOTS).fill('');
const procCols: string[] = new Array<string>(PROC_SLOTS).fill('');

/** The padded PROCESS column and its trailing space. */
function processSeg(comm: string, pid: number): string {
  // The comm's end is mixed in: softirq work runs as pid 0 under one swapper/N per CPU.
  const h = pid + Math.imul(comm.length, 131) + (comm.length > 0 ? Math.imul(comm.charCodeAt(comm.length - 1), 31) : 0);
  const slot = (h ^ (h >>> 10)) & (PROC_SLOTS - 1);
  if (procPids[slot] === pid && procComms[slot] === comm) return procCols[slot]!;
  const s = flat(pad(processColumn(comm, pid), COLUMN_WIDTHS.process) + ' ');
  procPids[slot] = pid;
  procComms[slot] = comm;
  procCols[slot] = s;
  return s;
}

interface MetaEntry {
  netns: number;
  mark: number;
  ifindex: number;
  ifname: string;
  protocol: number;
  mtu: number;
  s: string;
}

const META_SLOTS = 512;
const metaCache: (MetaEntry | null)[] = new Array<MetaEntry | null>(META_SLOTS).fill(null);

/**
 * NETNS MARK/x IFACE PROTO MTU, padded, with the space before LEN. LEN varies
 * between the packets of one interface and stays a piece of its own.
 */
function metaSeg(e: TraceEvent): string {
  const netns = e.netns;
  const mark = e.mark;
  const ifindex = e.ifindex;
  const protocol = e.protocol;
  const mtu = e.mtu;
  const h = (netns ^ Math.imul(ifindex, 0x9e3779b1) ^ Math.imul(mark, 31) ^ Math.imul(protocol, 7) ^ mtu) | 0;
  const slot = (h ^ (h >>> 9) ^ (h >>> 18)) & (META_SLOTS - 1);
  const c = metaCache[slot];
  if (
    c != null && c.netns === netns && c.ifindex === ifindex && c.mark === mark &&
    c.protocol === protocol && c.mtu === mtu && c.ifname === e.ifname
  ) {
    return c.s;
  }
  const W = COLUMN_WIDTHS;
  const s = flat(
    pad(formatDecimal(netns), W.netns) + ' ' +
    pad(formatHex(mark), W.mark) + ' ' +
    pad(formatIface(e.ifname, ifindex), W.iface) + ' ' +
    pad(formatEthertype(protocol), W.proto) + ' ' +
    pad(String(mtu), W.mtu) + ' ',
  );
  metaCache[slot] = { netns, mark, ifindex, ifname: e.ifname, protocol, mtu, s };
  return s;
}

interface TupleCol extends Tuple {
  s: string;
}

/** The padded TUPLE column of an event without a tuple. */
const NO_TUPLE = pad('', COLUMN_WIDTHS.tuple) + ' ';

interface PointEntry {
  func: string;
  caller: string | null;
  dropReason: string | null;
  paint: number;
  /** FUNC and CALLER. */
  head: string;
  /** With the drop reason, when there is one. */
  line: string;
}

const TUPLE_SLOTS = 1024;
const POINT_SLOTS = 512;

export class TextFormatter {
  private readonly opts: TextOptions;
  private readonly tsWidth: number;
  private readonly paints: readonly Paint[] | null;
  private readonly bold: Paint;
  private readonly red: Paint;
  private readonly yellow: Paint;
  private readonly tupleOpts: { tcpFlags: boolean };

  // Per formatter: colours, TCP flags and the CALLER column change these pieces.
  private readonly skbKeys: bigint[] = new Array<bigint>(4096).fill(-1n);
  private readonly skbCols: string[] = new Array<string>(4096).fill('');
  private readonly skbPaints = new Uint8Array(4096);
  /** Palette index of the skb of the event being formatted. */
  private paint = 0;
  private readonly tupleCols: (TupleCol | null)[] = new Array<TupleCol | null>(TUPLE_SLOTS).fill(null);
  private readonly points: (PointEntry | null)[] = new Array<PointEntry | null>(POINT_SLOTS).fill(null);
  private timePrefix = '';

  constructor(opts: TextOptions) {
    this.opts = { ...opts };
    this.tsWidth = timestampWidth(opts.timestamp);
    this.tupleOpts = { tcpFlags: opts.tcpFlags };
    if (opts.color) {
      const c = new Chalk({ level: opts.colorLevel ?? 1 });
      this.paints = PALETTE.map((name) => paintOf(c[name]));
      this.bold = paintOf(c.bold);
      this.red = paintOf(c.red);
      this.yellow = paintOf(c.yellow);
    } else {
      this.paints = null;
      this.bold = this.red = this.yellow = ['', ''];
    }
  }

  /** The column header, one line. */
  header(): string {
    const o = this.opts;
    const W = COLUMN_WIDTHS;
    let s = '';
    if (this.tsWidth > 0) s += pad('TIME', this.tsWidth) + ' ';
    s += pad('SKB', W.skb) + ' ' + pad('CPU', W.cpu) + ' ' + pad('PROCESS', W.process);
    if (o.meta) {
      s +=
        ' ' + pad('NETNS', W.netns) +
        ' ' + pad('MARK/x', W.mark) +
        ' ' + pad('IFACE', W.iface) +
        ' ' + pad('PROTO', W.proto) +
        ' ' + pad('MTU', W.mtu) +
        ' ' + pad('LEN', W.len);
    }
    if (o.tuple) s += ' ' + pad('TUPLE', W.tuple);
    s += o.caller ? ' ' + pad('FUNC', W.func) + ' CALLER' : ' FUNC';
    return this.bold[0] + s + this.bold[1];
  }

  /** One event: its line, then one line per stack frame when stacks are shown. No trailing newline. */
  formatEvent(e: TraceEvent): string {
    const o = this.opts;
    let s = this.timeSeg(e) + this.skbSeg(e.skb) + cpuColumn.get(e.cpu) + processSeg(e.comm, e.pid);
    if (o.meta) s += metaSeg(e) + lenColumn.get(e.len);
    if (o.tuple) s += this.tupleSeg(e.tuple);

    const point = this.pointSeg(e);
    const ct = o.ct === true && e.ct ? e.ct : null;
    if (!e.tupleBefore && ct === null) {
      s += point.line;
    } else {
      // Tuple changes and conntrack go between CALLER and the drop reason.
      s += point.head;
      if (e.tupleBefore && e.tuple) s += ' ' + formatTupleChange(e.tupleBefore, e.tuple);
      if (ct !== null) s += ' ' + formatCt(ct);
      if (e.dropReason !== null) s += ' ' + this.red[0] + 'reason=' + e.dropReason + this.red[1];
    }

    if (o.stack && e.stack !== null) {
      for (const frame of e.stack) s += '\n' + STACK_INDENT + frame;
    }
    return s;
  }

  /** The TIME column and its space; '' without one. */
  private timeSeg(e: TraceEvent): string {
    const mode = this.opts.timestamp;
    if (mode === 'none') return '';
    if (mode === 'absolute') {
      // Second prefix (one string per second) and the digits: two pieces, both flat.
      // The column is exactly as wide as the value, so there is no padding.
      const frac = utcFraction(e.timeNs);
      const p = utcSecondPrefix();
      if (p !== this.timePrefix) this.timePrefix = flat(p);
      return this.timePrefix + (nanos9(frac) + 'Z ');
    }
    return pad(formatTimestamp(e, mode), this.tsWidth) + ' ';
  }

  /** The SKB column in its packet's colour, and its space; sets `paint` to that colour. */
  private skbSeg(skb: bigint): string {
    const lo = Number(skb & 0xffffffffn);
    const slot = ((lo >>> 8) ^ (lo >>> 20)) & 4095;
    if (this.skbKeys[slot] === skb) {
      this.paint = this.skbPaints[slot]!;
      return this.skbCols[slot]!;
    }
    let s: string;
    let paint = 0;
    if (this.paints === null) {
      s = flat(formatSkb(skb) + ' ');
    } else {
      paint = skbColorIndex(skb, this.paints.length);
      const p = this.paints[paint]!;
      s = flat(p[0] + formatSkb(skb) + p[1] + ' ');
    }
    this.skbKeys[slot] = skb;
    this.skbCols[slot] = s;
    this.skbPaints[slot] = paint;
    this.paint = paint;
    return s;
  }

  /** The padded TUPLE column and its space. */
  private tupleSeg(t: Tuple | null): string {
    if (t === null) return NO_TUPLE;
    const slot = tupleSlot(t, false);
    const c = this.tupleCols[slot];
    if (
      c != null && c.sport === t.sport && c.dport === t.dport && c.l4proto === t.l4proto &&
      c.tcpFlags === t.tcpFlags && c.l3 === t.l3 && c.saddr === t.saddr && c.daddr === t.daddr
    ) {
      return c.s;
    }
    const s = flat(pad(formatTuple(t, this.tupleOpts), COLUMN_WIDTHS.tuple) + ' ');
    this.tupleCols[slot] = {
      l3: t.l3, saddr: t.saddr, daddr: t.daddr, sport: t.sport, dport: t.dport,
      l4proto: t.l4proto, tcpFlags: t.tcpFlags, s,
    };
    return s;
  }

  /** FUNC in the packet's colour, CALLER and the drop reason. Runs after skbSeg. */
  private pointSeg(e: TraceEvent): PointEntry {
    const func = e.func;
    const caller = this.opts.caller ? e.caller : null;
    const drop = e.dropReason;
    const paint = this.paint;
    const h =
      Math.imul(func.length, 31) + paint +
      (func.length > 0 ? Math.imul(func.charCodeAt(func.length - 1), 131) : 0) +
      (drop === null ? 0 : Math.imul(drop.length, 13)) + (caller === null ? 0 : Math.imul(caller.length, 17));
    const slot = (h ^ (h >>> 9)) & (POINT_SLOTS - 1);
    const c = this.points[slot];
    if (c != null && c.func === func && c.paint === paint && c.caller === caller && c.dropReason === drop) return c;

    let head = func;
    if (this.paints !== null) {
      const p = this.paints[paint]!;
      head = p[0] + func + p[1];
    }
    if (this.opts.caller) {
      const n = COLUMN_WIDTHS.func - func.length;
      if (n > 0) head += PADS[n]!;
      head += ' ' + (caller ?? '-');
    }
    head = flat(head);
    const line = drop === null ? head : flat(head + ' ' + this.red[0] + 'reason=' + drop + this.red[1]);
    const entry: PointEntry = { func, caller, dropReason: drop, paint, head, line };
    this.points[slot] = entry;
    return entry;
  }

  /** The lost-records warning, yellow when colour is on. */
  formatLost(n: LostNotice): string {
    return this.yellow[0] + formatLost(n) + this.yellow[1];
  }
}
