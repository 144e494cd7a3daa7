/**
 * Gathers events into packets: the events of one skb address, from the first
 * until the skb is freed (kfree_skb, consume_skb), goes idle, or the trace
 * stops. The grouped outputs (--group-by skb, --group-by ct) are built on it.
 */
import { FREEING_POINTS, expectedFree } from '../decode/points.js';
import { escapeText } from './escape.js';
import { formatSkb } from './format.js';
import type { TraceEvent } from './event.js';
import type { Styles } from './paint.js';

export const DEFAULT_IDLE_MS = 1000;
const DEFAULT_MAX_OPEN = 65536;

/** How a packet's events ended: freed, idle (or evicted for room), or the trace stopped. */
export type EndKind = 'end' | 'idle' | 'stopped';

/**
 * How a packet's path ended, in words: `consumed` (freed by consume_skb without
 * a reason), `dropped: REASON` (or `dropped`), `unfinished (idle)` or
 * `unfinished (trace stopped)`; in the style of each, the reason escaped.
 */
export function describeEnding(last: TraceEvent, how: EndKind, styles: Styles): string {
  if (how === 'idle') return styles.warn('unfinished (idle)');
  if (how === 'stopped') return styles.warn('unfinished (trace stopped)');
  if (last.func === 'consume_skb' && last.dropReason === null) return styles.ok('consumed');
  const normal = expectedFree(last.func, last.dropReason, last.caller);
  if (normal !== null) return styles.ok(escapeText(`consumed (${last.dropReason} at ${last.caller?.replace(/\+.*$/, '')}: ${normal})`));
  return styles.drop(last.dropReason !== null ? 'dropped: ' + escapeText(last.dropReason) : 'dropped');
}

export interface CollectorOptions {
  /** A packet with no event for this long is complete. Default 1 s. */
  idleMs?: number;
  /** Packets held at most; past it the oldest is complete. Default 65536. */
  maxOpen?: number;
  /** Milliseconds on a monotonic clock. Default performance.now. */
  clock?: () => number;
  /** Calls `fn` every `everyMs` until the returned function is called. Default: an unref'd setInterval. */
  every?: (fn: () => void, everyMs: number) => () => void;
}

/**
 * What a packet's events are gathered by: its journey where a merged trace
 * gives one (one packet across nodes), else its skb — on its node, where the
 * trace names one (two nodes' skbs may share an address).
 */
export function packetKey(skb: string, node: string | undefined, journey: string | undefined): string {
  return journey ?? (node !== undefined ? `${node}:${skb}` : skb);
}

/**
 * What a freeing point does to a merged trace's journey (merge names a
 * journey after its first skb, `NODE:SKB`, whether or not it crossed nodes):
 * on another node than the one it started on, or as a drop, it ends it; on
 * its first node a consumed skb may have been sent (a device frees what it
 * sent), and the next node's events go on with the journey: it is held —
 * ended by the next event of its key on that node (the address holds another
 * packet), or once idle. Null: not a freeing point.
 */
export function mergedFree(
  e: { func: string; dropReason: string | null; caller: string | null; node?: string | undefined },
  firstNode: string | undefined,
): 'end' | 'hold' | null {
  if (!FREEING_POINTS.has(e.func)) return null;
  const dropped = e.func === 'kfree_skb' && e.dropReason !== null && expectedFree(e.func, e.dropReason, e.caller) === null;
  return dropped || e.node !== firstNode ? 'end' : 'hold';
}

/** Whether an event of a held journey's key is another packet: one on the node the journey was freed on. */
export const heldBy = (node: string | undefined, firstNode: string | undefined) => node === firstNode;

interface Open {
  events: TraceEvent[];
  lastSeen: number;
  /** A merged journey freed on its first node: it ends when it goes idle or its key is taken (mergedFree). */
  held?: boolean;
}

function defaultEvery(fn: () => void, everyMs: number): () => void {
  const t = setInterval(fn, everyMs);
  t.unref();
  return () => clearInterval(t);
}

/**
 * The time of a recording for collectors replaying it (`pktpath show`): the
 * clock reads the last event's time, and sweeps run as that time passes, so
 * packets go idle in recorded time as they did live.
 */
export class RecordedTime {
  private nowMs = 0;
  private readonly timers = new Set<{ fn: () => void; everyMs: number; nextMs: number }>();

  readonly clock = (): number => this.nowMs;

  readonly every = (fn: () => void, everyMs: number): (() => void) => {
    const t = { fn, everyMs, nextMs: this.nowMs + everyMs };
    this.timers.add(t);
    return () => this.timers.delete(t);
  };

  /** The recording has reached `ns` (nanoseconds): the sweeps due by then run first. */
  advance(ns: bigint): void {
    const ms = Number(ns / 1000n) / 1000;
    if (this.nowMs === 0) {
      this.nowMs = ms;
      for (const t of this.timers) t.nextMs = ms + t.everyMs;
      return;
    }
    if (ms <= this.nowMs) return;
    this.nowMs = ms;
    for (const t of this.timers) {
      if (ms < t.nextMs) continue;
      t.nextMs = ms + t.everyMs;
      t.fn();
    }
  }
}

export class PacketCollector {
  private readonly open = new Map<bigint | string, Open>();
  private readonly idleMs: number;
  private readonly maxOpen: number;
  readonly clock: () => number;
  private readonly stopTimer: () => void;

  constructor(
    opts: CollectorOptions,
    /** Receives each complete packet's events, in the order they were seen. */
    private readonly complete: (events: TraceEvent[], how: EndKind) => void,
    /** Runs after each sweep, for consumers with timeouts of their own. */
    private readonly afterSweep: (now: number) => void = () => {},
  ) {
    this.idleMs = opts.idleMs ?? DEFAULT_IDLE_MS;
    this.maxOpen = opts.maxOpen ?? DEFAULT_MAX_OPEN;
    this.clock = opts.clock ?? (() => performance.now());
    // Sweeping a few times per idle period bounds how late an idle packet completes.
    this.stopTimer = (opts.every ?? defaultEvery)(() => this.sweep(), Math.max(10, this.idleMs / 4));
  }

  /** Packets being followed. */
  get openCount(): number {
    return this.open.size;
  }

  add(e: TraceEvent): void {
    const now = this.clock();
    // A live trace's events carry no node: the skb is the key, as a bigint (no string made per event).
    const merged = e.node !== undefined || e.journey !== undefined;
    const skbText = merged ? formatSkb(e.skb) : '';
    const key = merged ? packetKey(skbText, e.node, e.journey) : e.skb;
    let p = this.open.get(key);
    if (p?.held === true && heldBy(e.node, p.events[0]!.node)) {
      this.open.delete(key);
      this.complete(p.events, 'end');
      p = undefined;
    }
    if (p === undefined) {
      if (this.open.size >= this.maxOpen) this.evictOldest();
      p = { events: [e], lastSeen: now };
      this.open.set(key, p);
    } else {
      p.events.push(e);
      p.lastSeen = now;
      // Sent on from where it was held: it goes on.
      if (p.held === true && e.node !== p.events[0]!.node) p.held = false;
    }
    const free = merged ? mergedFree(e, p.events[0]!.node) : FREEING_POINTS.has(e.func) ? 'end' : null;
    if (free === 'hold') p.held = true;
    if (free === 'end') {
      // The address is free again: the next event on it is another packet.
      this.open.delete(key);
      this.complete(p.events, 'end');
    }
  }

  /** Completes the packets idle for the idle period or longer. */
  sweep(now: number = this.clock()): void {
    for (const [skb, p] of this.open) {
      if (now - p.lastSeen >= this.idleMs) {
        this.open.delete(skb);
        this.complete(p.events, p.held === true ? 'end' : 'idle');
      }
    }
    this.afterSweep(now);
  }

  /** Completes every packet still open; no more sweeps. */
  stop(): void {
    this.stopTimer();
    for (const p of this.open.values()) this.complete(p.events, p.held === true ? 'end' : 'stopped');
    this.open.clear();
  }

  private evictOldest(): void {
    const first = this.open.entries().next();
    if (first.done === true) return;
    const [skb, p] = first.value;
    this.open.delete(skb);
    this.complete(p.events, p.held === true ? 'end' : 'idle');
  }
}
