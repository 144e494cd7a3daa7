/**
 * A trace session: attach what the plan says, read the ring, decode, enrich,
 * fan out to the sinks, and detach on every way out. Links are fd-owned, so a
 * session killed outright still leaves nothing attached.
 */
import { performance } from 'node:perf_hooks';
import { type Link, attachNetfilter, attachTcx, attachTracing, closeAll } from '../bpf/link.js';
import { RingReader } from '../bpf/ringbuf.js';
import type { ProbeConfig } from '../decode/config.js';
import { decodeEvent } from '../decode/event.js';
import { TrackStat } from '../decode/layout.js';
import { FREEING_POINTS, type PointInfo, nfPointName } from '../decode/points.js';
import type { ActiveFilter } from '../filter/active.js';
import { dropReasonNames } from '../kernel/btf.js';
import { Kallsyms } from '../kernel/kallsyms.js';
import { withNetns } from '../kernel/netns.js';
import type { KernelView } from '../kernel/view.js';
import type { Sink } from '../output/sink.js';
import type { TraceSummary } from '../output/summary.js';
import type { AttachPlan, NfAttachment } from './attachments.js';
import { Enricher, nameBook } from './enrich.js';
import { StackSymbols } from './stacks.js';
import { ProbeSet } from './probes.js';

const POLL_MS = 5;
const LOST_CHECK_MS = 250;

/** What a session is asked to do beyond where to attach. */
export interface SessionOptions {
  /** Ring buffer size in bytes (power of two). */
  ringSize: number;
  /** Stop after this many seconds (0: until stop()). */
  duration: number;
  /** Stop after this many events (0: no limit). */
  limit: number;
  /** Capture kernel stacks where the point allows it. */
  stack: boolean;
  /** Packet bytes to capture per event (0: none). */
  snaplen: number;
  /** Note where an skb's tuple changes between points (NAT, tunnels). */
  tupleChanges: boolean;
}

export interface SessionHooks {
  /** Progress and warnings for a person (stderr). */
  status(line: string): void;
  /** Everything the plan asked for that could be attached is (`notObserved`: what could not, and why): traffic may start. */
  attached?(notObserved: string[]): void;
}

export class TraceSession {
  private readonly links: Link[] = [];
  /** What the plan asked for and could not be attached, and why. */
  private readonly notObserved: string[] = [];
  /** What really got attached, for the status line. */
  private readonly attached = { tracepoints: 0, tcDevices: new Set<string>(), nfNamespaces: new Set<number>() };
  private readonly probes: ProbeSet;
  private readonly points: PointInfo[] = [];
  private ring: RingReader | null = null;
  private enricher: Enricher | null = null;
  private pollTimer: NodeJS.Timeout | null = null;
  private lostTimer: NodeJS.Timeout | null = null;
  private lostSeen = 0n;
  private events = 0;
  private readonly perPoint = new Map<string, number>();
  private readonly drops = new Map<string, number>();
  private readonly dropSites = new Map<string, number>();
  private stopReason: string | null = null;
  private wake: (() => void) | null = null;
  private readonly startMonoNs = process.hrtime.bigint();
  private readonly startWallNs = BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));

  constructor(
    private readonly opts: SessionOptions,
    private readonly plan: AttachPlan,
    /** Where the plan's namespaces and devices get their names from. */
    private readonly kernel: Pick<KernelView, 'namespaces'>,
    private readonly filter: ActiveFilter,
    private readonly sinks: Sink[],
    private readonly hooks: SessionHooks,
  ) {
    this.probes = new ProbeSet(opts.ringSize);
  }

  /** Ends the session; safe to call any number of times, from signal handlers too. */
  stop(reason: string): void {
    if (this.stopReason !== null) return;
    this.stopReason = reason;
    this.wake?.();
  }

  async run(): Promise<TraceSummary> {
    const t0 = performance.now();
    let attachMs = 0;
    try {
      this.attach();
      attachMs = performance.now() - t0;
      this.hooks.status(this.attachedLine(attachMs));
      this.hooks.attached?.(this.notObserved);
      this.startReading();
      if (this.opts.duration > 0) setTimeout(() => this.stop('duration'), this.opts.duration * 1000).unref();
      if (this.stopReason === null) await new Promise<void>((resolve) => (this.wake = resolve));
      this.pump();
      this.checkLost();
      if (this.filter.trackSkb) this.hooks.status(this.trackingLine());
    } finally {
      this.stopReading();
      closeAll(this.links);
      this.ring?.close();
      this.probes.close();
      await Promise.allSettled(this.sinks.map((s) => s.close()));
    }
    return {
      events: this.events,
      lost: Number(this.lostSeen),
      attached: this.points.length,
      attachMs,
      durationMs: performance.now() - t0,
      stoppedBy: this.stopReason ?? 'error',
      perPoint: this.perPoint,
      drops: this.drops,
      dropSites: this.dropSites,
    };
  }

  private attachedLine(ms: number): string {
    const a = this.attached;
    return `pktpath: attached ${this.links.length} links: ${a.tracepoints} tracepoints, tc on ${a.tcDevices.size} devices, ` +
      `netfilter in ${a.nfNamespaces.size} namespaces (${ms.toFixed(0)} ms); Ctrl-C to stop`;
  }

  private addPoint(info: PointInfo): number {
    this.points.push(info);
    return this.points.length - 1;
  }

  private probeConfig(pointId: number, extra: Partial<ProbeConfig> = {}): ProbeConfig {
    return {
      pointId,
      stack: this.opts.stack,
      filter: this.filter.compiled !== null,
      skbArg: 0,
      reasonArg: -1,
      locationArg: -1,
      devArg: -1,
      netns: this.filter.netns?.inode ?? 0,
      ifindex: this.filter.ifindex,
      mark: this.filter.mark,
      track: this.filter.trackSkb,
      frees: false,
      snaplen: this.opts.snaplen,
      ...extra,
    };
  }

  /** Loads and attaches every probe of the plan. A point that fails is reported and skipped; none at all is an error. */
  private attach(): void {
    const failures: Error[] = [];
    const attempt = (what: string, fn: () => void) => {
      try {
        fn();
      } catch (e) {
        failures.push(e as Error);
        const line = `${what}: ${(e as Error).message.split('\n')[0]}`;
        this.notObserved.push(line);
        this.hooks.status(`pktpath: not observed: ${line}`);
      }
    };

    for (const tp of this.plan.tracepoints) {
      attempt(`tracepoint ${tp.name}`, () => {
        const id = this.addPoint({ type: 'tracepoint', name: tp.name });
        const cfg = this.probeConfig(id, {
          skbArg: tp.skbArg, reasonArg: tp.reasonArg, locationArg: tp.locationArg, devArg: tp.devArg,
          frees: FREEING_POINTS.has(tp.name),
        });
        const inst = this.probes.load('tracepoint', cfg, `tracepoint ${tp.name}`, tp.name, this.filter.compiled);
        this.links.push(attachTracing(inst.program, `tracepoint ${tp.name}`));
        this.attached.tracepoints++;
      });
    }

    if (this.plan.tc.length > 0) {
      attempt('tc', () => {
        const id = this.addPoint({ type: 'tc', name: 'tc' });
        const inst = this.probes.load('tc', this.probeConfig(id), 'tc observer', undefined, this.filter.compiled);
        for (const t of this.plan.tc) {
          const where = `tc ${t.direction} on ${t.iface.name} (netns ${t.netns.name || t.netns.inode})`;
          attempt(where, () => withNetns(t.netns.path, () => {
            this.links.push(attachTcx(inst.program, t.iface.ifindex, t.direction, where));
            this.attached.tcDevices.add(`${t.netns.inode}:${t.iface.ifindex}`);
          }));
        }
      });
    }

    // One observer instance before NAT, and where the plan asks for it one after NAT, each linked at its hooks.
    const beforeNat = this.plan.netfilter.filter((n) => !n.afterNat);
    const afterNat = this.plan.netfilter.filter((n) => n.afterNat);
    if (beforeNat.length > 0) this.attachNetfilter(attempt, { type: 'netfilter', name: 'netfilter' }, beforeNat);
    if (afterNat.length > 0) this.attachNetfilter(attempt, { type: 'netfilter', name: 'netfilter:nat', suffix: ':nat' }, afterNat);

    if (this.links.length === 0) {
      throw failures[0] ?? new Error('nothing to attach: the filters and --attach leave no observation point');
    }
  }

  /** One netfilter observer instance, linked at each of `hooks`. */
  private attachNetfilter(attempt: (what: string, fn: () => void) => void, point: PointInfo, hooks: NfAttachment[]): void {
    attempt(point.name, () => {
      const id = this.addPoint(point);
      const inst = this.probes.load('netfilter', this.probeConfig(id), `${point.name} observer`, undefined, this.filter.compiled);
      for (const n of hooks) {
        const where = `${nfPointName(n.family, n.hook)} at priority ${n.priority} (netns ${n.netns.name || n.netns.inode})`;
        attempt(where, () => withNetns(n.netns.path, () => {
          this.links.push(attachNetfilter(inst.program, n.family, n.hook, n.priority, where));
          this.attached.nfNamespaces.add(n.netns.inode);
        }));
      }
    });
  }

  private startReading(): void {
    const maps = this.probes.maps!;
    // Symbols are read after attaching, so that our own programs resolve too; drop locations need them always.
    const symbols = Kallsyms.load();
    this.enricher = new Enricher({
      points: this.points,
      names: nameBook(this.kernel.namespaces),
      dropReasons: dropReasonNames(),
      startMonoNs: this.startMonoNs,
      startWallNs: this.startWallNs,
      symbols,
      stacks: this.opts.stack ? new StackSymbols(maps.stacks, symbols) : null,
      tupleChanges: this.opts.tupleChanges,
    });
    this.ring = new RingReader(maps.eventsFd, this.opts.ringSize);
    this.pollTimer = setInterval(() => this.pump(), POLL_MS);
    this.lostTimer = setInterval(() => this.checkLost(), LOST_CHECK_MS);
  }

  private stopReading(): void {
    if (this.pollTimer) clearInterval(this.pollTimer);
    if (this.lostTimer) clearInterval(this.lostTimer);
    this.pollTimer = this.lostTimer = null;
  }

  private readonly onRecord = (view: DataView, bytes: Uint8Array, at: number): void => {
    const limit = this.opts.limit;
    if (limit > 0 && this.events >= limit) return;
    const raw = decodeEvent(view, bytes, at);
    if (!raw) return;
    const e = this.enricher!.enrich(raw);
    this.events++;
    this.perPoint.set(e.func, (this.perPoint.get(e.func) ?? 0) + 1);
    if (e.dropReason !== null && e.func === 'kfree_skb') {
      this.drops.set(e.dropReason, (this.drops.get(e.dropReason) ?? 0) + 1);
      const site = `${e.dropReason}\t${e.caller ?? '?'}`;
      this.dropSites.set(site, (this.dropSites.get(site) ?? 0) + 1);
    }
    for (const s of this.sinks) s.event(e);
    if (limit > 0 && this.events >= limit) this.stop('limit');
  };

  private pump(): void {
    if (!this.ring) return;
    const limit = this.opts.limit;
    this.ring.drain(this.onRecord, limit > 0 ? Math.max(0, limit - this.events) : Infinity);
  }

  /** What --filter-track-skb did: followed, forgotten when freed, still followed, evicted for room. */
  private trackingLine(): string {
    const maps = this.probes.maps!;
    const added = Number(maps.trackStats.sum(TrackStat.added));
    const freed = Number(maps.trackStats.sum(TrackStat.freed));
    const live = maps.trackedSkbs.count();
    const evicted = Math.max(0, added - freed - live);
    return `pktpath: --filter-track-skb followed ${added} skbs: ${freed} forgotten when freed, ${live} still followed, ` +
      `${evicted} evicted (skbs freed where no probe saw it, or the map full)`;
  }

  /** Lost records are reported in-band, where they happened in the stream. */
  private checkLost(): void {
    const maps = this.probes.maps;
    if (!maps) return;
    const total = maps.lost.sum();
    if (total <= this.lostSeen) return;
    const count = Number(total - this.lostSeen);
    this.lostSeen = total;
    const notice = {
      timeNs: BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6)),
      count,
      total: Number(total),
    };
    for (const s of this.sinks) s.lost(notice);
  }
}
