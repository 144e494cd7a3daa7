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
 * differs from the hop before: NAT, encapsulation and marking rules show up there.
 * Names are escaped (./escape.ts).
 */
import type { TimestampMode } from './config.js';
import { escapeText } from './escape.js';
import type { LostNotice, TraceEvent } from './event.js';
import { formatDuration, formatHex, formatIface, formatProcess, formatSkb, formatTimestamp, netnsLabel } from './format.js';
import { type CollectorOptions, type EndKind, PacketCollector, describeEnding } from './packets.js';
import { formatNft } from './nft.js';
import { type ColorLevel, type Styles, stylesFor } from './paint.js';
import type { Sink } from './pipeline.js';
import type { BatchedWriter } from './stream.js';
import { stackLines } from './stack.js';
import { COLUMN_WIDTHS, formatLost, nodeColumn } from './text.js';
import { formatTuple } from './tuple.js';
import { formatVerdict } from './verdict.js';
import { type JourneyExplainer, isUntiedDecision, writeExplained } from './explained.js';

export interface JourneyOptions extends CollectorOptions {
  color: boolean;
  /** Chalk level when `color` is set. Default 1. */
  colorLevel?: ColorLevel;
  tcpFlags: boolean;
  stack: boolean;
  timestamp: TimestampMode;
  /** --explain: why each journey that did not arrive did not, after its block. */
  explainer?: JourneyExplainer | null;
  /** Each hop's node (merged traces: a journey's block spans the nodes it crossed). */
  node?: boolean;
}

const PAD_HOP = { delta: 12, func: COLUMN_WIDTHS.func, iface: COLUMN_WIDTHS.iface } as const;

function pad(s: string, width: number): string {
  return s.length >= width ? s : s + ' '.repeat(width - s.length);
}

export class JourneySink implements Sink {
  private readonly packets: PacketCollector;
  private readonly paints: Styles;
  private readonly tupleOpts: { tcpFlags: boolean };
  private closed = false;

  constructor(
    private readonly out: BatchedWriter,
    private readonly opts: JourneyOptions,
  ) {
    this.tupleOpts = { tcpFlags: opts.tcpFlags };
    this.paints = stylesFor(opts.color, opts.colorLevel);
    this.packets = new PacketCollector(opts, (events, how) => {
      if (this.out.closed) return;
      this.out.write(this.formatJourney(events, how));
      if (opts.explainer) writeExplained(this.out, opts.explainer.journey(events, how), false);
    });
  }

  /** Packets being followed. */
  get openCount(): number {
    return this.packets.openCount;
  }

  event(e: TraceEvent): void {
    if (this.closed || this.out.closed) return;
    // A route lookup or neighbour change tied to no skb is no packet's hop:
    // grouped by packet it is left out (explanations cite it; lines and JSON show it).
    if (isUntiedDecision(e)) return;
    this.packets.add(e);
  }

  lost(notice: LostNotice): void {
    if (this.closed || this.out.closed) return;
    this.out.write(this.paints.warn(formatLost(notice)));
  }

  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.packets.stop();
      if (this.opts.explainer && !this.out.closed) writeExplained(this.out, this.opts.explainer.end(), false);
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
    head += formatSkb(first.skb) + ' ' + (formatTuple(first.tuple, this.tupleOpts) || '-') + ' ' + escapeText(formatProcess(first.comm, first.pid));
    const hops = events.length === 1 ? '1 hop' : events.length + ' hops';
    let s = p.header(head) + '  ' + hops + ' in ' + formatDuration(last.timeNs - first.timeNs) + ', ' + describeEnding(last, how, this.paints);
    const nodes = this.opts.node ? [...new Set(events.map((e) => e.node ?? '-'))] : [];
    if (nodes.length > 1) s += ', across ' + escapeText(nodes.join(' → '));

    let prev: TraceEvent | null = null;
    let prevTuple = '';
    for (const e of events) {
      const tuple = e.tuple === null ? '' : formatTuple(e.tuple, { tcpFlags: false });
      if (prev !== null) {
        if (tuple !== '' && prevTuple !== '' && tuple !== prevTuple) s += '\n' + p.warn('    tuple: ' + prevTuple + ' ⇒ ' + tuple);
        if (e.mark !== prev.mark) s += '\n' + p.warn('    mark: ' + formatHex(prev.mark) + ' ⇒ ' + formatHex(e.mark));
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
      '  ' + p.dim(pad('+' + formatDuration(deltaNs), PAD_HOP.delta)) +
      ' ' + (this.opts.node ? nodeColumn(e.node) : '') + pad(escapeText(e.func), PAD_HOP.func) +
      ' ' + pad(escapeText(formatIface(e.ifname, e.ifindex)), PAD_HOP.iface) +
      ' ' + escapeText(netnsLabel(e));
    if (e.verdict) s += '  ' + (e.verdict.action === 'drop' ? p.drop(formatVerdict(e.verdict)) : formatVerdict(e.verdict));
    if (e.nft) s += '  ' + (e.nft.verdict === 'drop' ? p.drop(formatNft(e.nft)) : formatNft(e.nft));
    if (e.dropReason !== null) s += '  ' + p.drop('reason=' + escapeText(e.dropReason));
    if (e.caller !== null) s += '  caller=' + escapeText(e.caller);
    if (this.opts.stack && e.stack !== null) {
      s += stackLines(e.stack, '  ');
    }
    return s;
  }
}
