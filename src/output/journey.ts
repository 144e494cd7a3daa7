/**
 * `--group-by skb`: one block per packet instead of one line per event. Events
 * are held per skb address and printed together once the packet's path ends:
 * at `kfree_skb` (dropped) or `consume_skb` (consumed), after it has been idle
 * for a while (default 1 s), or when the trace stops.
 *
 * Block format (one header line, then one line per hop):
 *
 *   0xffff8880045c3e00 192.0.2.1:43210->192.0.2.2:80(tcp) curl:4242  4 hops in 17.212µs, dropped: NETFILTER_DROP
 *     +0.000µs     net_dev_queue            veth-cli:7       4026531840
 *     +4.213µs     tc:ingress               veth-srv:3       srv
 *       tuple: 192.0.2.1:43210->192.0.2.2:80(tcp) ⇒ 192.0.2.1:43210->10.0.0.2:8080(tcp)
 *     +9.148µs     nf:ipv4:pre_routing      veth-srv:3       srv
 *     +3.851µs     kfree_skb                veth-srv:3       srv  reason=NETFILTER_DROP
 *
 * Header: (the first event's timestamp per --timestamp), skb address, tuple of
 * the first hop, process of the first hop, hop count, time from first to last
 * hop, and how the path ended: `consumed`, `dropped: REASON`, `unfinished
 * (idle)` or `unfinished (trace stopped)`.
 * Hop: time since the previous hop, observation point, interface, namespace
 * (its name, or its inode when it has none), then `reason=` on a drop and
 * `caller=` when known; with --output-stack, the frames below it.
 * Marker lines (`tuple:`, `mark:`) sit before the first hop where the value
 * differs from the hop before: NAT, tunnels and marking rules show up there.
 */
import { Chalk } from 'chalk';
import type { LostNotice, TraceEvent } from '../trace/event.js';
import {
  formatHex,
  formatIface,
  formatProcess,
  formatSkb,
  formatTimestamp,
  formatTuple,
  type TimestampMode,
} from './format.js';
import { type CollectorOptions, type EndKind, PacketCollector } from './packets.js';
import type { Sink } from './sink.js';
import type { BatchedWriter } from './stream.js';
import { COLUMN_WIDTHS, STACK_INDENT, formatLost } from './text.js';

export { END_POINTS, DEFAULT_IDLE_MS } from './packets.js';

export interface JourneyOptions extends CollectorOptions {
  color: boolean;
  /** Chalk level when `color` is set. Default 1. */
  colorLevel?: 1 | 2 | 3;
  tcpFlags: boolean;
  stack: boolean;
  timestamp: TimestampMode;
}

type Paint = (s: string) => string;
const plain: Paint = (s) => s;

interface Paints {
  header: Paint;
  delta: Paint;
  drop: Paint;
  ok: Paint;
  change: Paint;
}

const PAD_HOP = { delta: 12, func: COLUMN_WIDTHS.func, iface: COLUMN_WIDTHS.iface } as const;

function pad(s: string, width: number): string {
  return s.length >= width ? s : s + ' '.repeat(width - s.length);
}

/** `12.345µs`, `1.234ms` or `2.500s`. */
export function formatDuration(ns: bigint): string {
  const n = Number(ns);
  if (n < 1e6) return (n / 1e3).toFixed(3) + 'µs';
  if (n < 1e9) return (n / 1e6).toFixed(3) + 'ms';
  return (n / 1e9).toFixed(3) + 's';
}

function netnsLabel(e: TraceEvent): string {
  return e.netnsName !== '' ? e.netnsName : String(e.netns);
}

export class JourneySink implements Sink {
  private readonly packets: PacketCollector;
  private readonly paints: Paints;
  private readonly tupleOpts: { tcpFlags: boolean };
  private closed = false;

  constructor(
    private readonly out: BatchedWriter,
    private readonly opts: JourneyOptions,
  ) {
    this.tupleOpts = { tcpFlags: opts.tcpFlags };
    if (opts.color) {
      const c = new Chalk({ level: opts.colorLevel ?? 1 });
      this.paints = { header: c.bold, delta: c.dim, drop: c.red, ok: c.green, change: c.yellow };
    } else {
      this.paints = { header: plain, delta: plain, drop: plain, ok: plain, change: plain };
    }
    this.packets = new PacketCollector(opts, (events, how) => {
      if (!this.out.closed) this.out.write(this.formatJourney(events, how));
    });
  }

  /** Packets being followed. */
  get openCount(): number {
    return this.packets.openCount;
  }

  event(e: TraceEvent): void {
    if (this.closed || this.out.closed) return;
    this.packets.add(e);
  }

  lost(notice: LostNotice): void {
    if (this.closed || this.out.closed) return;
    this.out.write(this.paints.change(formatLost(notice)));
  }

  /** Prints the packets idle for the idle period or longer. */
  sweep(now?: number): void {
    this.packets.sweep(now);
  }

  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.packets.stop();
    }
    return this.out.close();
  }

  /** One packet's block, without a trailing newline. */
  formatJourney(events: readonly TraceEvent[], how: EndKind): string {
    const p = this.paints;
    const first = events[0]!;
    const last = events[events.length - 1]!;

    let head = '';
    if (this.opts.timestamp !== 'none') head = formatTimestamp(first, this.opts.timestamp) + ' ';
    head += formatSkb(first.skb) + ' ' + (formatTuple(first.tuple, this.tupleOpts) || '-') + ' ' + formatProcess(first.comm, first.pid);
    const hops = events.length === 1 ? '1 hop' : events.length + ' hops';
    let s = p.header(head) + '  ' + hops + ' in ' + formatDuration(last.timeNs - first.timeNs) + ', ' + this.ending(last, how);

    let prev: TraceEvent | null = null;
    let prevTuple = '';
    for (const e of events) {
      const tuple = e.tuple === null ? '' : formatTuple(e.tuple, { tcpFlags: false });
      if (prev !== null) {
        if (tuple !== '' && prevTuple !== '' && tuple !== prevTuple) s += '\n' + p.change('    tuple: ' + prevTuple + ' ⇒ ' + tuple);
        if (e.mark !== prev.mark) s += '\n' + p.change('    mark: ' + formatHex(prev.mark) + ' ⇒ ' + formatHex(e.mark));
      }
      if (tuple !== '') prevTuple = tuple;
      s += '\n' + this.hop(e, prev === null ? 0n : e.timeNs - prev.timeNs);
      prev = e;
    }
    return s;
  }

  private hop(e: TraceEvent, deltaNs: bigint): string {
    const p = this.paints;
    let s =
      '  ' + p.delta(pad('+' + formatDuration(deltaNs), PAD_HOP.delta)) +
      ' ' + pad(e.func, PAD_HOP.func) +
      ' ' + pad(formatIface(e.ifname, e.ifindex), PAD_HOP.iface) +
      ' ' + netnsLabel(e);
    if (e.dropReason !== null) s += '  ' + p.drop('reason=' + e.dropReason);
    if (e.caller !== null) s += '  caller=' + e.caller;
    if (this.opts.stack && e.stack !== null) {
      for (const frame of e.stack) s += '\n  ' + STACK_INDENT + frame;
    }
    return s;
  }

  private ending(last: TraceEvent, how: EndKind): string {
    const p = this.paints;
    if (how === 'idle') return p.change('unfinished (idle)');
    if (how === 'stopped') return p.change('unfinished (trace stopped)');
    if (last.func === 'consume_skb' && last.dropReason === null) return p.ok('consumed');
    return p.drop(last.dropReason !== null ? 'dropped: ' + last.dropReason : 'dropped');
  }
}
