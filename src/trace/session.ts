/**
 * A trace session: attach what the plan says (./observers.ts), read the ring,
 * decode, enrich, fan out to the sinks, and detach on every way out. Links are fd-owned, so a
 * session killed outright still leaves nothing attached.
 */
import { type ClockAnchor, readClockAnchor } from './clock.js';
import { performance } from 'node:perf_hooks';
import { releaseVmlinuxBtf } from '../bpf/btf/vmlinux.js';
import { FdPoller } from '../bpf/poller.js';
import { RingReader } from '../bpf/ringbuf.js';
import { decodeEvent } from '../decode/event.js';
import { SECTION_DECODERS } from '../output/sections/registry.js';
import { EVENT_LAYOUT, TrackStat } from '../decode/layout.js';
import type { ActiveFilter } from '../filter/active.js';
import { dropReasonNames, redirectFlags } from '../kernel/btf.js';
import { kernelSymbols } from '../kernel/kallsyms.js';
import type { KernelView } from '../kernel/view.js';
import type { TraceEvent } from '../output/event.js';
import type { Sink } from '../output/pipeline.js';
import type { TraceSummary } from '../output/summary.js';
import type { AttachPlan } from './attachments.js';
import { EventCounts } from './counts.js';
import { Enricher } from './enrich.js';
import { NameBook } from './names.js';
import type { PodCatalog } from '../kernel/pods.js';
import { TraceInterleave } from './nft.js';
import { type ObserverOptions, Observers } from './observers.js';
import { RecordOrder, halves, nsSince } from './order.js';
import { StackSymbols } from './stacks.js';
import { releaseMemoryAfterAttach } from './memory.js';
import { SettingsFollower } from './settings.js';
import { topologyLine, trackingLine } from './status.js';
import { type TcPosition, VerdictStage } from './verdicts.js';

/**
 * While records flow, the ring is read every POLL_MS (records in batches:
 * the probes ask the kernel for no wake-up per record); once a read finds
 * none and nothing waits, the reader sleeps until the ring is readable.
 */
const POLL_MS = 5;
/**
 * How long a ring record waits for records stamped before it that the ring
 * hands over after it (./order.ts): 1 ms of the kernel's clock. Under a TCP
 * flood from two CPUs they come up to ~0.3 ms late.
 */
export const ORDER_WINDOW_NS = 1_000_000;
const TS_AT = EVENT_LAYOUT.fields.ts_ns;

/** A ring record on its way to the verdict stage, with where its tc hook sits. */
interface Staged {
  e: TraceEvent;
  position: TcPosition | null;
}

/**
 * Records handled in one turn of the event loop, when a turn can end early:
 * between turns the writers' finished writes are reaped and the next ones
 * start. Draining a full 16 MiB ring in one go left its output (~20 MB of
 * JSON lines) queued in memory until the drain was over.
 */
export const RECORDS_PER_TURN = 8192;
const LOST_CHECK_MS = 250;
/** How often namespaces, devices and tc chains are looked at again (a change shows within this, plus attaching). */
const TOPOLOGY_MS = 250;
/** How often the container runtime is asked for its pods besides when namespaces come and go (one list call). */
const PODS_MS = 1000;

/** What a session is asked to do beyond where to attach. */
export interface SessionOptions extends ObserverOptions {
  /** Stop after this many seconds (0: until stop()). */
  duration: number;
  /** Stop after this many events (0: no limit). */
  limit: number;
  /** Note where an skb's tuple changes between points (NAT, encapsulation). */
  tupleChanges: boolean;
  /** Read the traced namespaces' settings and follow their changes (for the sinks that show them). */
  settings?: boolean;
  /** The node's pods, to name namespaces by (asked again as namespaces appear); null: none. */
  pods?: PodCatalog | null;
}

export interface SessionHooks {
  /** Progress and warnings for a person (stderr). */
  status(line: string): void;
  /** Everything the plan asked for that could be attached is (`notObserved`: what could not, and why): traffic may start. */
  attached?(notObserved: string[]): void;
}

export class TraceSession {
  private readonly observers: Observers;
  private readonly names: NameBook;
  /** The traced namespaces' settings, when asked for. */
  readonly settings: SettingsFollower | null;
  private ring: RingReader | null = null;
  private enricher: Enricher | null = null;
  private stage: VerdictStage | null = null;
  /** Ring records on their way to be decoded, put in time order. */
  private order: RecordOrder | null = null;
  /** The next read while records flow. */
  private pollTimer: NodeJS.Timeout | null = null;
  /** Waits on the ring (and nftables' monitors) while nothing flows. */
  private poller: FdPoller | null = null;
  private reading = false;
  private lostCheckedMs = 0;
  private topologyTimer: NodeJS.Timeout | null = null;
  private lostSeen = 0n;
  private nowMs = 0;
  private readonly counts = new EventCounts();
  private stopReason: string | null = null;
  private wake: (() => void) | null = null;
  /** The kernel's clock and the wall clock read at one instant (./clock.ts): records' times are placed by it. */
  readonly clock: ClockAnchor = readClockAnchor();
  private readonly startMonoNs = this.clock.monoNs;
  /** The start as a record's time is read against it (./order.ts). */
  private readonly start = halves(this.startMonoNs);
  /** Whether a record's namespace is wanted, when the probes cannot tell (filter.only); null: every one is. */
  private keepNetns: ((inode: number) => boolean) | null = null;
  private podsAskedMs = 0;
  private readonly startWallNs = this.clock.wallNs;

  constructor(
    private readonly opts: SessionOptions,
    plan: AttachPlan,
    /** Where the plan's namespaces and devices get their names from. */
    private readonly kernel: Pick<KernelView, 'namespaces'>,
    private readonly filter: ActiveFilter,
    private readonly sinks: Sink[],
    private readonly hooks: SessionHooks,
  ) {
    this.names = NameBook.of(kernel.namespaces);
    this.settings = opts.settings ? new SettingsFollower(() => this.startWallNs + this.sinceStartNs(),
      (n) => {
        for (const s of sinks) s.settings?.(n);
      }, hooks.status) : null;
    this.observers = new Observers({
      plan, kernel, filter, opts, names: this.names, status: hooks.status, goingOn: () => this.stopReason === null,
      follow: this.settings?.follow,
    });
    const pods = opts.pods;
    if (pods) {
      this.names.setPods(pods.pods);
      // A pod the runtime named since: its name from now on, and (--filter-pod) its namespace followed at the next tick.
      pods.onChange(() => {
        this.names.setPods(pods.pods);
        this.observers.topology?.touch();
      });
    }
    // Several namespaces or pods: the probes keep any namespace, user space keeps those followed.
    if (filter.only !== null) this.keepNetns = (inode) => this.observers.topology?.watches(inode) ?? false;
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
      const o = this.observers;
      // Read before anything is attached: they apply from before the first event.
      for (const { netns } of this.kernel.namespaces) this.settings?.add(netns);
      await o.attach();
      attachMs = performance.now() - t0;
      for (const d of o.probes.degraded) this.hooks.status(`pktpath: ${d}`);
      if (this.stopReason === null) {
        this.hooks.status(o.attachedLine(attachMs));
        this.hooks.attached?.(o.notObserved);
        // After the header the attached hook writes.
        this.settings?.release();
        this.settings?.start();
      } else {
        this.hooks.status(`pktpath: stopped while attaching (${this.stopReason}): ${o.linkCount()} links made, all released`);
      }
      this.startReading();
      if (this.opts.duration > 0) setTimeout(() => this.stop('duration'), this.opts.duration * 1000).unref();
      if (this.stopReason === null) await new Promise<void>((resolve) => (this.wake = resolve));
      while (this.pump()) {
        // Everything the ring holds, before the sinks close.
      }
      this.flushTraceEvents();
      this.order?.flush();
      this.stage?.flush();
      if (this.order !== null && this.order.late > 0) {
        this.hooks.status(`pktpath: ${this.order.late} records were read over ${ORDER_WINDOW_NS / 1e6} ms after records stamped later: out of time order in the output`);
      }
      this.checkLost();
      if (this.filter.trackSkb) this.hooks.status(this.trackingLine());
      const t = this.observers.topologyCounts;
      if (t.namespacesAdded + t.namespacesRemoved + t.devicesAdded + t.devicesRemoved > 0) {
        this.hooks.status(topologyLine(t, this.observers.tc?.deviceCount ?? 0, this.observers.nf.namespaceCount));
      }
    } finally {
      this.stopReading();
      this.settings?.close();
      this.ring?.close();
      await this.observers.close();
      await Promise.allSettled(this.sinks.map((s) => s.close()));
    }
    return {
      ...this.counts.summary(),
      lost: Number(this.lostSeen),
      attached: this.observers.points.length,
      attachMs,
      durationMs: performance.now() - t0,
      stoppedBy: this.stopReason ?? 'error',
      topology: { ...this.observers.topologyCounts },
      ...(this.observers.nft ? { nft: { read: this.observers.nft.read, lost: this.observers.nft.lost() } } : {}),
    };
  }

  private startReading(): void {
    const maps = this.observers.probes.maps!;
    // Read ahead since the trace began (prepareTrace).
    const symbols = kernelSymbols();
    this.enricher = new Enricher({
      points: this.observers.points,
      names: this.names,
      dropReasons: dropReasonNames(),
      startMonoNs: this.startMonoNs,
      startWallNs: this.startWallNs,
      symbols,
      stacks: this.opts.stack ? new StackSymbols(maps.stacks, symbols) : null,
      tupleChanges: this.opts.tupleChanges,
      skbMeta: this.opts.skbMeta ?? null,
      xdpMeta: this.opts.xdpMeta ?? null,
      redirectFlags: this.observers.tracesPrograms ? redirectFlags() : null,
      returns: (func) => this.observers.functionReturns.get(func) ?? null,
    });
    const tc = this.observers.tc;
    this.stage = new VerdictStage(tc ? tc.lookup : () => undefined, this.emit);
    this.order = new RecordOrder(ORDER_WINDOW_NS, this.onOrdered);
    this.ring = new RingReader(maps.events, this.opts.ringSize);
    this.poller = new FdPoller();
    this.reading = true;
    this.pollTimer = setTimeout(this.nextPump, POLL_MS);
    if (this.observers.topology !== null) this.topologyTimer = setInterval(() => this.followTopology(), TOPOLOGY_MS);
    // Everything that needs the kernel's BTF has asked it by now: its parsed forms need not stay in memory.
    releaseVmlinuxBtf();
    releaseMemoryAfterAttach();
  }

  /** What the reader sleeps on: the ring, and nftables' monitors (a namespace's trace events may come alone). */
  private pollFds(): number[] {
    return [this.observers.probes.maps!.events.fd.raw, ...(this.observers.nft?.pollFds() ?? [])];
  }

  private followTopology(): void {
    try {
      const appeared = this.observers.topology?.pending === true;
      this.observers.topology?.tick();
      // A namespace named or gone under /run/netns: a pod's, perhaps; the runtime says whose. Its
      // sandbox is ready a moment after its namespace is named: the runtime is asked again now and then.
      const now = performance.now();
      if (appeared || now - this.podsAskedMs >= PODS_MS) {
        this.podsAskedMs = now;
        void this.opts.pods?.refresh();
      }
      // A namespace added or gone while the reader sleeps: its monitor too.
      if (this.poller?.sleeping) this.poller.watch(this.pollFds());
    } catch (e) {
      this.hooks.status(`pktpath: following namespaces and devices: ${(e as Error).message}`);
    }
  }

  private stopReading(): void {
    this.reading = false;
    if (this.pollTimer) clearTimeout(this.pollTimer);
    if (this.more) clearImmediate(this.more);
    this.more = null;
    this.poller?.close();
    this.poller = null;
    if (this.topologyTimer) clearInterval(this.topologyTimer);
    this.pollTimer = this.topologyTimer = null;
  }

  private readonly nextPump = (): void => {
    this.pollTimer = null;
    this.pump();
  };

  /**
   * After a pump: the next one at once where it left records in the ring, in
   * POLL_MS while records flow or wait (in the order, for a verdict, for
   * nftables' events), else none until the ring or a monitor is readable.
   */
  private next(remain: boolean, busy: boolean): void {
    if (!this.reading || this.more !== null || this.pollTimer !== null) return;
    if (remain) {
      this.more = setImmediate(() => {
        this.more = null;
        this.pump();
      });
    } else if (busy) {
      // POLL_MS from this pump's start, not its end: a flood's pumps take milliseconds of their own.
      this.pollTimer = setTimeout(this.nextPump, Math.max(0, POLL_MS - (performance.now() - this.nowMs)));
    } else if (!this.poller!.sleeping) {
      // What was lost while records flowed is told before the quiet.
      this.checkLost();
      this.poller!.watch(this.pollFds());
      this.poller!.wait(this.nextPump);
    }
  }

  /** An event leaves the session: counted, and handed to every sink. */
  private readonly emit = (e: TraceEvent): void => {
    const limit = this.opts.limit;
    if (limit > 0 && this.counts.events >= limit) return;
    this.counts.count(e);
    for (const s of this.sinks) s.event(e);
    if (limit > 0 && this.counts.events >= limit) this.stop('limit');
  };

  /** With --output-nft, a pump's ring records wait here for the trace events that go between them. */
  private batch: Staged[] | null = null;
  /** With --output-nft, records wait a pump longer for trace events polled after them. */
  private readonly interleave = new TraceInterleave<Staged>((e) => ({ e, position: null }));

  /** A record as the ring hands it over: into the order, by its time since the start. */
  private readonly onRecord = (view: DataView, bytes: Uint8Array, at: number, len: number): void => {
    const limit = this.opts.limit;
    if (limit > 0 && this.counts.events >= limit) return;
    this.order!.push(view, bytes, at, len, nsSince(view, at + TS_AT, this.start));
  };

  /** A record in time order: decoded, named, and on to the verdict stage (with --output-nft, to the pump's batch first). */
  private readonly onOrdered = (view: DataView, bytes: Uint8Array, at: number): void => {
    const limit = this.opts.limit;
    if (limit > 0 && this.counts.events >= limit) return;
    const raw = decodeEvent(view, bytes, at, SECTION_DECODERS);
    if (!raw) return;
    if (this.keepNetns !== null && !this.keepNetns(raw.netns)) return;
    const e = this.enricher!.enrich(raw);
    const position = this.observers.points[raw.pointId]?.position ?? null;
    if (this.batch !== null) {
      this.observers.nft!.note(e);
      this.batch.push({ e, position });
    } else {
      this.stage!.push(e, position, this.nowMs);
    }
  };

  /** The next turn's pump when this one left records in the ring. */
  private more: NodeJS.Immediate | null = null;

  /** The trace's clock: monotonic nanoseconds since its start, as the records' sinceStartNs. */
  private readonly sinceStartNs = (): bigint => process.hrtime.bigint() - this.startMonoNs;

  /** Reads the ring; true when it stopped early and records remain. `last`: no record or trace event waits. */
  private pump(last = false): boolean {
    if (!this.ring) return false;
    this.nowMs = performance.now();
    const limit = this.opts.limit;
    const nft = this.observers.nft;
    // nftables' events first: the ring then holds every record of their packets up to their hook.
    const pending = nft ? nft.poll(this.sinceStartNs) : null;
    const drainNs = this.sinceStartNs();
    if (nft) this.batch = [];
    // With nftables' events the ring is read to its end: the records of their packets are all in it.
    const turn = nft ? Infinity : RECORDS_PER_TURN;
    const left = limit > 0 ? Math.max(0, limit - this.counts.events) : Infinity;
    const most = Math.min(turn, left);
    const read = this.ring.drain(this.onRecord, most, (n) => {
      // At the end nothing waits. Else, read to its end, the ring holds no record stamped before this
      // drain began that is not still being committed: those stamped a window before go on. With
      // nftables' events, all stamped before: the trace events read just before go among them.
      if (last) this.order!.flush();
      else if (n < most) this.order!.releaseUpTo(Number(drainNs) - (nft ? 0 : ORDER_WINDOW_NS));
      // What waits on is copied out of the ring.
      this.order!.settle();
    });
    const remain = read === turn && turn < left;
    if (nft && pending && this.batch) {
      const placed = this.interleave.next(this.batch, nft.events(pending, this.startWallNs, last));
      this.batch = null;
      for (const { e, position } of placed) this.stage!.push(e, position, this.nowMs);
      if (last) for (const { e, position } of this.interleave.flush([])) this.stage!.push(e, position, this.nowMs);
    }
    this.stage!.tick(this.nowMs);
    if (this.observers.topology?.pending) this.followTopology();
    if (this.nowMs - this.lostCheckedMs >= LOST_CHECK_MS) this.checkLost();
    const busy = read > 0 || (pending !== null && pending.length > 0) || this.ring.pending() > 0 || this.order!.size > 0 ||
      this.stage!.holding || this.interleave.holding || this.observers.topology?.pending === true;
    this.next(remain, busy);
    return remain;
  }

  /** The records held back for trace events, with the trace events that came last. */
  private flushTraceEvents(): void {
    if (this.observers.nft) this.pump(true);
  }

  private trackingLine(): string {
    const maps = this.observers.probes.maps!;
    const stat = (i: number) => Number(maps.trackStats.sum(i));
    return trackingLine({
      added: stat(TrackStat.added), freed: stat(TrackStat.freed), stale: stat(TrackStat.stale), moved: stat(TrackStat.moved),
      byStack: stat(TrackStat.byStack), copied: stat(TrackStat.copied), live: maps.trackedSkbs.count(),
    });
  }

  /** Lost records are reported in-band, where they happened in the stream: the ring's, then nftables' trace events. */
  private checkLost(): void {
    this.lostCheckedMs = performance.now();
    const maps = this.observers.probes.maps;
    if (!maps) return;
    const timeNs = BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));
    const total = maps.lost.sum();
    if (total > this.lostSeen) {
      const notice = { timeNs, count: Number(total - this.lostSeen), total: Number(total) };
      this.lostSeen = total;
      for (const s of this.sinks) s.lost(notice);
    }
    const nft = this.observers.nft?.newlyLost();
    if (nft && nft.count > 0) for (const s of this.sinks) s.lost({ timeNs, ...nft, source: 'nft' });
  }
}

