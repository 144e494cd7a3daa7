/**
 * A trace session: attach per plan, read the ring, decode, enrich, fan out to
 * the sinks, and detach on every way out. Links are fd-owned, so a session
 * killed outright still leaves nothing attached.
 */
import { performance } from 'node:perf_hooks';
import type { Link } from '../bpf/link.js';
import { type NfHookName, attachNetfilter, attachTcx, attachTracing, closeAll } from '../bpf/link.js';
import { countKeys, readStack, sumPerCpuU64 } from '../bpf/maps.js';
import { RingReader } from '../bpf/ringbuf.js';
import type { TraceConfig } from '../cli/config.js';
import { decodeEvent } from '../decode/event.js';
import type { ProbeConfig } from '../decode/config.js';
import type { ActiveFilter } from '../filter/active.js';
import { Kallsyms } from '../kernel/kallsyms.js';
import { withNetns } from '../kernel/netns.js';
import { dropReasonNames } from '../kernel/view.js';
import type { Sink } from '../output/sink.js';
import type { TraceSummary } from '../output/summary.js';
import { FREEING_POINTS, NF_AFTER_NAT, NF_NAT_PRIORITY, NF_PRIORITY, nfPointName } from '../plan/catalog.js';
import type { KernelView, ProbePlan } from '../plan/plan.js';
import { Enricher, type NameBook, type PointInfo } from './enrich.js';
import { ProbeSet } from './probes.js';

const POLL_MS = 5;
/** Indices of the track_stats counters (enum track_stat in event.h). */
const TRACK_ADDED = 0;
const TRACK_FREED = 1;
const LOST_CHECK_MS = 250;

export interface SessionHooks {
  /** Progress and warnings for a person (stderr). */
  status(line: string): void;
}

export type { TraceSummary as Summary } from '../output/summary.js';

export class TraceSession {
  private readonly links: Link[] = [];
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
    private readonly cfg: TraceConfig,
    private readonly plan: ProbePlan,
    private readonly kernel: KernelView,
    private readonly filter: ActiveFilter,
    private readonly sinks: Sink[],
    private readonly hooks: SessionHooks,
  ) {
    this.probes = new ProbeSet(cfg.ringSize);
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
      this.startReading();
      if (this.cfg.duration > 0) setTimeout(() => this.stop('duration'), this.cfg.duration * 1000).unref();
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
      stack: this.cfg.output.stack,
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
      snaplen: this.cfg.output.files.pcap !== null ? this.cfg.output.files.snaplen : 0,
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
        this.hooks.status(`pktpath: not observed: ${what}: ${(e as Error).message.split('\n')[0]}`);
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

    if (this.plan.netfilter.length > 0) {
      this.attachNetfilter(attempt, 'netfilter', () => NF_PRIORITY);
      // Where NAT rewrites the packet, a second look right after it shows the new tuple on the same hook.
      if (this.cfg.output.ct) this.attachNetfilter(attempt, NF_AFTER_NAT, (hook) => NF_NAT_PRIORITY[hook]);
    }

    if (this.links.length === 0) {
      throw failures[0] ?? new Error('nothing to attach: the filters and --attach leave no observation point');
    }
  }

  /** One netfilter observer instance, linked at each planned hook where `priority` gives a priority. */
  private attachNetfilter(attempt: (what: string, fn: () => void) => void, name: string,
    priority: (hook: NfHookName) => number | undefined): void {
    attempt(name, () => {
      const id = this.addPoint({ type: 'netfilter', name });
      const inst = this.probes.load('netfilter', this.probeConfig(id), `${name} observer`, undefined, this.filter.compiled);
      for (const n of this.plan.netfilter) {
        const prio = priority(n.hook);
        if (prio === undefined) continue;
        const where = `${nfPointName(n.family, n.hook)} at priority ${prio} (netns ${n.netns.name || n.netns.inode})`;
        attempt(where, () => withNetns(n.netns.path, () => {
          this.links.push(attachNetfilter(inst.program, n.family, n.hook, prio, where));
          this.attached.nfNamespaces.add(n.netns.inode);
        }));
      }
    });
  }

  private names(): NameBook {
    const netns = new Map<number, string>();
    const ifaces = new Map<string, string>();
    for (const { netns: ns, ifaces: list } of this.kernel.namespaces) {
      if (ns.name) netns.set(ns.inode, ns.name);
      for (const i of list) ifaces.set(`${ns.inode}:${i.ifindex}`, i.name);
    }
    return { netns, ifaces };
  }

  private startReading(): void {
    const out = this.cfg.output;
    // Symbols are read after attaching, so that our own programs resolve too; drop locations need them always.
    const symbols = Kallsyms.load();
    const stacksFd = this.probes.stacksFd;
    this.enricher = new Enricher({
      points: this.points,
      names: this.names(),
      dropReasons: dropReasonNames(),
      startMonoNs: this.startMonoNs,
      startWallNs: this.startWallNs,
      symbols,
      readStack: out.stack ? (id) => readStack(stacksFd, id) : null,
      tupleChanges: out.ct || out.json,
    });
    this.ring = new RingReader(this.probes.eventsFd, this.cfg.ringSize);
    this.pollTimer = setInterval(() => this.pump(), POLL_MS);
    this.lostTimer = setInterval(() => this.checkLost(), LOST_CHECK_MS);
  }

  private stopReading(): void {
    if (this.pollTimer) clearInterval(this.pollTimer);
    if (this.lostTimer) clearInterval(this.lostTimer);
    this.pollTimer = this.lostTimer = null;
  }

  private readonly onRecord = (view: DataView, bytes: Uint8Array, at: number): void => {
    const limit = this.cfg.output.limitLines;
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
    const limit = this.cfg.output.limitLines;
    this.ring.drain(this.onRecord, limit > 0 ? Math.max(0, limit - this.events) : Infinity);
  }

  /** What --filter-track-skb did: followed, forgotten when freed, still followed, evicted for room. */
  private trackingLine(): string {
    const added = Number(sumPerCpuU64(this.probes.trackStatsFd, TRACK_ADDED));
    const freed = Number(sumPerCpuU64(this.probes.trackStatsFd, TRACK_FREED));
    const live = countKeys(this.probes.trackedSkbsFd, 8);
    const evicted = Math.max(0, added - freed - live);
    return `pktpath: --filter-track-skb followed ${added} skbs: ${freed} forgotten when freed, ${live} still followed, ` +
      `${evicted} evicted (skbs freed where no probe saw it, or the map full)`;
  }

  /** Lost records are reported in-band, where they happened in the stream. */
  private checkLost(): void {
    if (!this.probes.loaded) return;
    const total = sumPerCpuU64(this.probes.lostFd);
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
