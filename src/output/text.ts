/**
 * Text lines in pwru's column order:
 *   [TIME] SKB CPU PROCESS [NETNS MARK/x IFACE PROTO MTU LEN] [TUPLE] FUNC [CALLER] [ct:…] [reason=…]
 * Columns are padded to fixed widths so lines of different packets line up;
 * values longer than their column push the rest right (only PROCESS is cut).
 * Names and other strings from the event are escaped (./escape.ts) as they
 * enter a cached piece, once per value rather than once per line.
 */
import { AddressText, NumberText, SlotCache } from '../decode/cache.js';
import { type LineEncoder, NO_BYTES as NO_TEXT, lineText, utf8 } from './line.js';
import { type Tuple, sameTupleFields, tupleHash } from '../decode/tuple.js';
import type { TimestampMode } from './config.js';
import { formatCt } from './ct.js';
import type { LostNotice, TraceEvent } from './event.js';
import {
  formatDecimal, formatEthertype, formatHex, formatIface, formatSkb, formatTimestamp, netnsLabel, timestampWidth,
  utcFraction, utcSecondPrefix,
} from './format.js';
import { escapeText } from './escape.js';
import { type ColorLevel, PACKET_COLORS, type Paint, packetPaints, paintOf, stylesFor } from './paint.js';
import { formatNft } from './nft.js';
import { stackLines } from './stack.js';
import { formatVerdict } from './verdict.js';
import { hasInlineSection, hasSectionLines, sectionLines, sectionText } from './sections/registry.js';
import { formatTuple, formatTupleChange, formatVlan } from './tuple.js';

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
  colorLevel?: ColorLevel;
  /** NETNS shows the namespace's name where it has one (--output-netns-names), else its inode. */
  netnsNames?: boolean;
  /** --netns-names-max-length: names cut to this many characters (0: whole). */
  netnsNamesMax?: number;
  /** A NODE column first: the node each event comes from (merged traces). */
  node?: boolean;
}

/** pwru's floor for --netns-names-max-length: shorter asks get this many. */
export const MIN_NETNS_NAME_CHARS = 10;

/** A name cut to `max` characters (code points, before escaping: an escape is never cut in two); 0 keeps it whole. */
export function cutName(name: string, max: number): string {
  if (max <= 0 || name.length <= max) return name;
  return [...name].slice(0, max).join('');
}

export const COLUMN_WIDTHS = {
  node: 12,
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
  if (n.source === 'nft') {
    const what = n.count === 1 ? 'nft trace event' : 'nft trace events';
    return `!! lost ${n.count} ${what} (total ${n.total}): nftables' trace socket full; narrow the filter (the --filter-* flags limit what nftables traces)`;
  }
  const what = n.count === 1 ? 'record' : 'records';
  return `!! lost ${n.count} ${what} (total ${n.total}): ring full; raise --ring-size or narrow the filter`;
}

/**
 * Index into the palette for an skb. Only the low 32 bits are used (one BigInt
 * operation per event); they differ between live skbs, and being slab-aligned
 * they are mixed before taking the remainder.
 */
export function skbColorIndex(skb: bigint, paletteSize: number = PACKET_COLORS): number {
  let h = Number(skb & 0xffffffffn);
  h = Math.imul(h ^ (h >>> 16), 0x45d9f3b);
  h = Math.imul(h ^ (h >>> 16), 0x45d9f3b);
  h ^= h >>> 16;
  return (h >>> 0) % paletteSize;
}

// Pieces of a line kept between events, as bytes (see line.ts): a line is a
// handful of cached column groups copied one after the other. Every piece
// ends with the space before the next column.


/** Small numbers padded to a column, e.g. `pad(String(cpu), 3) + ' '`, by value. */
function numberColumn(width: number, slots: number): NumberText<Uint8Array> {
  return new NumberText(slots, (n) => utf8(pad(String(n), width) + ' '));
}

const cpuColumn = numberColumn(COLUMN_WIDTHS.cpu, 1024);
const lenColumn = numberColumn(COLUMN_WIDTHS.len, 4096);

const procCols = new SlotCache(1024, () => ({ pid: NaN, comm: '', text: NO_TEXT }));

/** The padded PROCESS column and its trailing space. */
function processSeg(comm: string, pid: number): Uint8Array {
  // The comm's end is mixed in: softirq work runs as pid 0 under one swapper/N per CPU.
  const h = pid + Math.imul(comm.length, 131) + (comm.length > 0 ? Math.imul(comm.charCodeAt(comm.length - 1), 31) : 0);
  const c = procCols.at(h ^ (h >>> 10));
  if (c.pid === pid && c.comm === comm) return c.text;
  c.pid = pid;
  c.comm = comm;
  return (c.text = utf8(pad(processColumn(escapeText(comm), pid), COLUMN_WIDTHS.process) + ' '));
}

/** The padded NODE column and its space; `-` for an event of no node. */
export function nodeColumn(node: string | undefined): string {
  return pad(node === undefined ? '-' : escapeText(node), COLUMN_WIDTHS.node) + ' ';
}

interface MetaEntry {
  netns: number;
  /** The name shown in place of the inode; '' for the inode. */
  netnsName: string;
  mark: number;
  ifindex: number;
  ifname: string;
  protocol: number;
  mtu: number;
  text: Uint8Array;
}

const metaCols = new SlotCache<MetaEntry>(512, () => ({ netns: NaN, netnsName: '', mark: 0, ifindex: 0, ifname: '', protocol: 0, mtu: 0, text: NO_TEXT }));

/**
 * NETNS MARK/x IFACE PROTO MTU, padded, with the space before LEN. LEN varies
 * between the packets of one interface and stays a piece of its own.
 */
function metaSeg(e: TraceEvent, names: boolean, max: number): Uint8Array {
  const { netns, mark, ifindex, protocol, mtu } = e;
  const netnsName = !names ? '' : cutName(e.pod ? netnsLabel(e) : e.netnsName, max);
  const h = netns ^ Math.imul(ifindex, 0x9e3779b1) ^ Math.imul(mark, 31) ^ Math.imul(protocol, 7) ^ mtu;
  const c = metaCols.at(h ^ (h >>> 9) ^ (h >>> 18));
  if (
    c.netns === netns && c.ifindex === ifindex && c.mark === mark &&
    c.protocol === protocol && c.mtu === mtu && c.ifname === e.ifname && c.netnsName === netnsName
  ) {
    return c.text;
  }
  const W = COLUMN_WIDTHS;
  const text = utf8(
    pad(netnsName !== '' ? escapeText(netnsName) : formatDecimal(netns), W.netns) + ' ' +
    pad(formatHex(mark), W.mark) + ' ' +
    pad(escapeText(formatIface(e.ifname, ifindex)), W.iface) + ' ' +
    pad(formatEthertype(protocol), W.proto) + ' ' +
    pad(String(mtu), W.mtu) + ' ',
  );
  c.netns = netns;
  c.netnsName = netnsName;
  c.mark = mark;
  c.ifindex = ifindex;
  c.ifname = e.ifname;
  c.protocol = protocol;
  c.mtu = mtu;
  return (c.text = text);
}

/** The padded TUPLE column of an event without a tuple. */
const NO_TUPLE = utf8(pad('', COLUMN_WIDTHS.tuple) + ' ');

interface PointEntry {
  func: string;
  caller: string | null;
  dropReason: string | null;
  paint: number;
  /** FUNC and CALLER. */
  head: Uint8Array;
  /** With the drop reason, when there is one. */
  line: Uint8Array;
}

export class TextFormatter {
  private readonly opts: TextOptions;
  private readonly tsWidth: number;
  private readonly paints: readonly Paint[] | null;
  private readonly bold: Paint;
  private readonly red: Paint;
  private readonly yellow: Paint;
  private readonly tupleOpts: { tcpFlags: boolean };

  // Per formatter: colours, TCP flags and the CALLER column change these pieces.
  private readonly skbCols: AddressText<Uint8Array>;
  /** Palette index of the skb of the event being formatted. */
  private paint = 0;
  private readonly tupleCols = new SlotCache(1024, (): { tuple: Tuple | null; text: Uint8Array } => ({ tuple: null, text: NO_TEXT }));
  private readonly points = new SlotCache<PointEntry>(512, () => ({ func: '', caller: null, dropReason: null, paint: -1, head: NO_TEXT, line: NO_TEXT }));
  /** The second the absolute TIME column's prefix was made for, and its bytes. */
  private timePrefix = '';
  private timePrefixBytes = NO_TEXT;

  constructor(opts: TextOptions) {
    this.opts = { ...opts };
    this.tsWidth = timestampWidth(opts.timestamp);
    this.tupleOpts = { tcpFlags: opts.tcpFlags };
    const styles = stylesFor(opts.color, opts.colorLevel);
    const paints = (this.paints = packetPaints(opts.color, opts.colorLevel));
    this.skbCols = paints === null
      ? new AddressText(4096, (skb) => utf8(formatSkb(skb) + ' '))
      : new AddressText(4096, (skb, paint) => utf8(paints[paint]![0] + formatSkb(skb) + paints[paint]![1] + ' '),
        (skb) => skbColorIndex(skb, paints.length));
    this.bold = paintOf(styles.header);
    this.red = paintOf(styles.drop);
    this.yellow = paintOf(styles.warn);
  }

  /** The column header, one line. */
  header(): string {
    const o = this.opts;
    const W = COLUMN_WIDTHS;
    let s = '';
    if (this.tsWidth > 0) s += pad('TIME', this.tsWidth) + ' ';
    if (o.node) s += pad('NODE', W.node) + ' ';
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
    return lineText((enc) => this.encodeEvent(e, enc));
  }

  /** What formatEvent returns, written as bytes. */
  encodeEvent(e: TraceEvent, enc: LineEncoder): void {
    const o = this.opts;
    this.timeSeg(e, enc);
    if (o.node) enc.text(nodeColumn(e.node));
    enc.bytes(this.skbSeg(e.skb));
    enc.bytes(cpuColumn.get(e.cpu));
    enc.bytes(processSeg(e.comm, e.pid));
    if (o.meta) {
      enc.bytes(metaSeg(e, o.netnsNames === true, o.netnsNamesMax ?? 0));
      enc.bytes(lenColumn.get(e.len));
    }
    if (o.tuple) enc.bytes(this.tupleSeg(e.tuple));

    const point = this.pointSeg(e);
    const ct = o.ct === true && e.ct ? e.ct : null;
    const vlan = (o.tuple || o.meta) && e.vlan ? e.vlan : null;
    if (!e.tupleBefore && ct === null && vlan === null && !e.verdict && !e.nft && !hasInlineSection(e)) {
      enc.bytes(point.line);
    } else {
      // Tuple changes and conntrack go between CALLER and the drop reason.
      enc.bytes(point.head);
      let s = '';
      if (vlan !== null) s += ' ' + formatVlan(vlan);
      if (e.tupleBefore && e.tuple) s += ' ' + formatTupleChange(e.tupleBefore, e.tuple);
      s += sectionText(e);
      if (ct !== null) s += ' ' + formatCt(ct);
      if (e.verdict) s += ' ' + this.marked(formatVerdict(e.verdict), e.verdict.action === 'drop');
      if (e.nft) s += ' ' + this.marked(formatNft(e.nft), e.nft.verdict === 'drop');
      if (e.dropReason !== null) s += ' ' + this.red[0] + 'reason=' + escapeText(e.dropReason) + this.red[1];
      enc.text(s);
    }

    if (hasSectionLines(e)) enc.text(sectionLines(e));
    if (o.stack && e.stack !== null) enc.text(stackLines(e.stack));
  }

  /** The TIME column and its space; nothing without one. */
  private timeSeg(e: TraceEvent, enc: LineEncoder): void {
    const mode = this.opts.timestamp;
    if (mode === 'none') return;
    if (mode === 'absolute') {
      // The second's prefix (made once a second) and the digits.
      // The column is exactly as wide as the value, so there is no padding.
      const frac = utcFraction(e.timeNs);
      const p = utcSecondPrefix();
      if (p !== this.timePrefix) {
        this.timePrefix = p;
        this.timePrefixBytes = utf8(p);
      }
      enc.bytes(this.timePrefixBytes);
      enc.nanos9(frac);
      enc.byte(0x5a); // Z
      enc.byte(0x20);
      return;
    }
    enc.text(pad(formatTimestamp(e, mode), this.tsWidth) + ' ');
  }

  /** The SKB column in its packet's colour, and its space; sets `paint` to that colour. */
  private skbSeg(skb: bigint): Uint8Array {
    const text = this.skbCols.get(skb);
    this.paint = this.skbCols.note;
    return text;
  }

  /** The padded TUPLE column and its space. */
  private tupleSeg(t: Tuple | null): Uint8Array {
    if (t === null) return NO_TUPLE;
    const c = this.tupleCols.at(tupleHash(t));
    if (c.tuple !== null && sameTupleFields(c.tuple, t)) return c.text;
    c.tuple = t;
    return (c.text = utf8(pad(formatTuple(t, this.tupleOpts), COLUMN_WIDTHS.tuple) + ' '));
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
    const c = this.points.at(h ^ (h >>> 9));
    if (c.func === func && c.paint === paint && c.caller === caller && c.dropReason === drop) return c;

    const funcText = escapeText(func);
    let head = funcText;
    if (this.paints !== null) {
      const p = this.paints[paint]!;
      head = p[0] + funcText + p[1];
    }
    if (this.opts.caller) {
      const n = COLUMN_WIDTHS.func - funcText.length;
      if (n > 0) head += PADS[n]!;
      head += ' ' + (caller === null ? '-' : escapeText(caller));
    }
    const line = drop === null ? head : head + ' ' + this.red[0] + 'reason=' + escapeText(drop) + this.red[1];
    c.func = func;
    c.caller = caller;
    c.dropReason = drop;
    c.paint = paint;
    c.head = utf8(head);
    c.line = drop === null ? c.head : utf8(line);
    return c;
  }

  /** A verdict: bold, red when it drops. */
  private marked(text: string, drop: boolean): string {
    const p = drop ? this.red : this.bold;
    return p[0] + text + p[1];
  }

  /** The lost-records warning, yellow when colour is on. */
  formatLost(n: LostNotice): string {
    return this.yellow[0] + formatLost(n) + this.yellow[1];
  }
}
