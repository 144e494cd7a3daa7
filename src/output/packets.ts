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

/** Points of a node a packet has left that still come after it left: its transmit's end, the free of what was sent. */
const AFTER_LEAVING: ReadonlySet<string> = new Set(['net_dev_xmit', ...FREEING_POINTS]);

/**
 * Where a merged trace's journey has been, to tell its packet from a later
 * one of the same name. merge names a journey after its first skb on its
 * first node, `NODE:SKB`, and follows an skb on a node until a freeing point
 * shows; where none shows (TCP frees its skbs unseen), the next packet on the
 * address takes the name on. So a record of the name is another packet on a
 * node the journey has left (but for the transmit's end and the free of what
 * was sent there), and on its one node once it was freed there: a packet
 * freed where it started is held, for it may have been sent on (a device
 * frees what it sent) — the next node's records go on with it — and ends
 * when the name is taken there again or it goes idle.
 */
export class NodePath {
  private readonly nodes: Array<string | undefined>;
  /** Freed on its one node so far. */
  held = false;

  constructor(first: string | undefined) {
    this.nodes = [first];
  }

  private get here(): string | undefined {
    return this.nodes[this.nodes.length - 1];
  }

  /** Whether a record of the journey's name on `node` at `func` is another packet. */
  another(node: string | undefined, func: string): boolean {
    if (node === this.here) return this.held;
    return this.nodes.includes(node) && !AFTER_LEAVING.has(func);
  }

  /** Notes a record of the journey; what its free does: end it, hold it (above), or nothing (not a free, or on a node it left). */
  note(e: { func: string; dropReason: string | null; caller: string | null; node?: string | undefined }): 'end' | 'hold' | null {
    if (!this.nodes.includes(e.node)) {
      this.nodes.push(e.node);
      this.held = false;
    }
    if (!FREEING_POINTS.has(e.func) || e.node !== this.here) return null;
    const dropped = e.func === 'kfree_skb' && e.dropReason !== null && expectedFree(e.func, e.dropReason, e.caller) === null;
    if (dropped || this.nodes.length > 1) return 'end';
    this.held = true;
    return 'hold';
  }
}

interface Open {
  events: TraceEvent[];
  lastSeen: number;
  /** A merged trace's journey: where it has been (NodePath). */
  path?: NodePath;
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
    if (p?.path?.another(e.node, e.func) === true) {
      // The name was taken by another packet: the journey ended before it.
      this.open.delete(key);
      this.complete(p.events, p.path.held ? 'end' : 'idle');
      p = undefined;
    }
    if (p === undefined) {
      if (this.open.size >= this.maxOpen) this.evictOldest();
      p = { events: [e], lastSeen: now };
      if (merged) p.path = new NodePath(e.node);
      this.open.set(key, p);
    } else {
      p.events.push(e);
      p.lastSeen = now;
    }
    const free = p.path ? p.path.note(e) : FREEING_POINTS.has(e.func) ? 'end' : null;
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
        this.complete(p.events, p.path?.held === true ? 'end' : 'idle');
      }
    }
    this.afterSweep(now);
  }

  /** Completes every packet still open; no more sweeps. */
  stop(): void {
    this.stopTimer();
    for (const p of this.open.values()) this.complete(p.events, p.path?.held === true ? 'end' : 'stopped');
    this.open.clear();
  }

  private evictOldest(): void {
    const first = this.open.entries().next();
    if (first.done === true) return;
    const [skb, p] = first.value;
    this.open.delete(skb);
    this.complete(p.events, p.path?.held === true ? 'end' : 'idle');
  }
}
