/**
 * Text lines in pwru's column order:
 *   [TIME] SKB CPU PROCESS [NETNS MARK/x IFACE PROTO MTU LEN] [TUPLE] FUNC [CALLER] [ct:…] [reason=…]
 * Columns are padded to fixed widths so lines of different packets line up;
 * values longer than their column push the rest right (only PROCESS is cut).
 */
import { Chalk } from 'chalk';
import type { LostNotice, TraceEvent } from '../trace/event.js';
import {
  formatCt,
  formatDecimal,
  formatEthertype,
  formatHex,
  formatIface,
  formatSkb,
  formatTimestamp,
  formatTuple,
  formatTupleChange,
  timestampWidth,
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

export class TextFormatter {
  private readonly opts: TextOptions;
  private readonly tsWidth: number;
  private readonly paints: readonly Paint[] | null;
  private readonly bold: Paint;
  private readonly red: Paint;
  private readonly yellow: Paint;
  private readonly tupleOpts: { tcpFlags: boolean };

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
    const W = COLUMN_WIDTHS;
    let s = '';
    if (this.tsWidth > 0) s = pad(formatTimestamp(e, o.timestamp), this.tsWidth) + ' ';

    let open = '';
    let close = '';
    if (this.paints !== null) {
      const p = this.paints[skbColorIndex(e.skb, this.paints.length)]!;
      open = p[0];
      close = p[1];
    }

    s +=
      open + formatSkb(e.skb) + close +
      ' ' + pad(String(e.cpu), W.cpu) +
      ' ' + pad(processColumn(e.comm, e.pid), W.process);
    if (o.meta) {
      s +=
        ' ' + pad(formatDecimal(e.netns), W.netns) +
        ' ' + pad(formatHex(e.mark), W.mark) +
        ' ' + pad(formatIface(e.ifname, e.ifindex), W.iface) +
        ' ' + pad(formatEthertype(e.protocol), W.proto) +
        ' ' + pad(String(e.mtu), W.mtu) +
        ' ' + pad(String(e.len), W.len);
    }
    if (o.tuple) s += ' ' + pad(formatTuple(e.tuple, this.tupleOpts), W.tuple);

    s += ' ' + open + e.func + close;
    if (o.caller) {
      const n = W.func - e.func.length;
      if (n > 0) s += PADS[n]!;
      s += ' ' + (e.caller ?? '-');
    }
    if (e.tupleBefore && e.tuple) s += ' ' + formatTupleChange(e.tupleBefore, e.tuple);
    if (o.ct && e.ct) s += ' ' + formatCt(e.ct);
    if (e.dropReason !== null) s += ' ' + this.red[0] + 'reason=' + e.dropReason + this.red[1];

    if (o.stack && e.stack !== null) {
      for (const frame of e.stack) s += '\n' + STACK_INDENT + frame;
    }
    return s;
  }

  /** The lost-records warning, yellow when colour is on. */
  formatLost(n: LostNotice): string {
    return this.yellow[0] + formatLost(n) + this.yellow[1];
  }
}
