/**
 * A trace session: attach what the plan says, read the ring, decode, enrich,
 * fan out to the sinks, and detach on every way out. Links are fd-owned, so a
 * session killed outright still leaves nothing attached.
 */
import { performance } from 'node:perf_hooks';
import { releaseVmlinuxBtf } from '../bpf/btf/btf.js';
import { type Link, type LoadedProgram, attachTracing, closeAll } from '../bpf/link.js';
import { progIdOfFd } from '../bpf/objects.js';
import { RingReader } from '../bpf/ringbuf.js';
import type { ProbeConfig } from '../decode/config.js';
import { decodeEvent } from '../decode/event.js';
import { TrackStat } from '../decode/layout.js';
import { FREEING_POINTS, type PointInfo } from '../decode/points.js';
import type { ActiveFilter } from '../filter/active.js';
import { dropReasonNames } from '../kernel/btf.js';
import { Kallsyms } from '../kernel/kallsyms.js';
import { NETLINK_ROUTE, NetlinkSocket } from '../kernel/netlink.js';
import { type Iface, type Netns, withNetns } from '../kernel/netns.js';
import type { NftCondition } from '../kernel/nftables.js';
import type { KernelView } from '../kernel/view.js';
import type { TraceEvent } from '../output/event.js';
import type { Sink } from '../output/sink.js';
import type { TopologyCounts, TraceSummary } from '../output/summary.js';
import type { AttachPlan } from './attachments.js';
import { EventCounts } from './counts.js';
import { Enricher, type NameBook, nameBook } from './enrich.js';
import { NftTracer, placeTraceEvents } from './nft.js';
import { StackSymbols } from './stacks.js';
import { FunctionObservers, functionLines } from './functions.js';
import { releaseMemoryAfterAttach } from './memory.js';
import { type ProbeInstance, ProbeSet } from './probes.js';
import { NfObservers, nfWhere } from './netfilter.js';
import { attachedLine, topologyLine, trackingLine } from './status.js';
import { clsactAttacher } from './clsact.js';
import { TcObservers, attachLastTcx } from './tc.js';
import { followTopology, tcWhere } from './follow.js';
import { Topology, type TopologyListener } from './topology.js';
import { type TcPosition, VerdictStage } from './verdicts.js';

const POLL_MS = 5;
const LOST_CHECK_MS = 250;
/** How often namespaces, devices and tc chains are looked at again (a change shows within this, plus attaching). */
const TOPOLOGY_MS = 250;

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
  /**
   * --output-nft: nftables' tracing in every traced namespace, for the
   * packets `matches` selects (nft conditions, one per rule; null: all).
   */
  nft: { matches: NftCondition[][] | null } | null;
  /**
   * The namespaces to observe as they come and go (a listing, called each
   * topology tick); null: only those of the plan, as they were at the start.
   */
  scope: (() => Netns[]) | null;
}

export interface SessionHooks {
  /** Progress and warnings for a person (stderr). */
  status(line: string): void;
  /** Everything the plan asked for that could be attached is (`notObserved`: what could not, and why): traffic may start. */
  attached?(notObserved: string[]): void;
}

export class TraceSession {
  /** Tracepoint links; tc and netfilter observers are kept per device and namespace. */
  private readonly links: Link[] = [];
  /** What the plan asked for and could not be attached, and why. */
  private readonly notObserved: string[] = [];
  private tracepoints = 0;
  private functions: FunctionObservers | null = null;
  private functionCount = 0;
  private tc: TcObservers | null = null;
  private readonly nfPrograms: { beforeNat: LoadedProgram | null; afterNat: LoadedProgram | null } = { beforeNat: null, afterNat: null };
  private readonly nf = new NfObservers(this.nfPrograms);
  private nft: NftTracer | null = null;
  private topology: Topology | null = null;
  private readonly topologyCounts: TopologyCounts = { namespacesAdded: 0, namespacesRemoved: 0, devicesAdded: 0, devicesRemoved: 0 };
  private readonly probes: ProbeSet;
  private readonly points: PointInfo[] = [];
  private readonly names: NameBook;
  private ring: RingReader | null = null;
  private enricher: Enricher | null = null;
  private stage: VerdictStage | null = null;
  private pollTimer: NodeJS.Timeout | null = null;
  private lostTimer: NodeJS.Timeout | null = null;
  private topologyTimer: NodeJS.Timeout | null = null;
  private lostSeen = 0n;
  private nowMs = 0;
  private readonly counts = new EventCounts();
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
    this.names = nameBook(kernel.namespaces);
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
      await this.attach();
      attachMs = performance.now() - t0;
      for (const d of this.probes.degraded) this.hooks.status(`pktpath: ${d}`);
      if (this.stopReason === null) {
        this.hooks.status(this.attachedLine(attachMs));
        this.hooks.attached?.(this.notObserved);
      } else {
        this.hooks.status(`pktpath: stopped while attaching (${this.stopReason}): ${this.linkCount()} links made, all released`);
      }
      this.startReading();
      if (this.opts.duration > 0) setTimeout(() => this.stop('duration'), this.opts.duration * 1000).unref();
      if (this.stopReason === null) await new Promise<void>((resolve) => (this.wake = resolve));
      this.pump();
      this.stage?.flush();
      this.checkLost();
      if (this.filter.trackSkb) this.hooks.status(this.trackingLine());
      const t = this.topologyCounts;
      if (t.namespacesAdded + t.namespacesRemoved + t.devicesAdded + t.devicesRemoved > 0) this.hooks.status(topologyLine(t, this.tc?.deviceCount ?? 0, this.nf.namespaceCount));
    } finally {
      this.stopReading();
      this.detach();
      this.ring?.close();
      this.probes.close();
      await Promise.allSettled(this.sinks.map((s) => s.close()));
    }
    return {
      ...this.counts.summary(),
      lost: Number(this.lostSeen),
      attached: this.points.length,
      attachMs,
      durationMs: performance.now() - t0,
      stoppedBy: this.stopReason ?? 'error',
      topology: { ...this.topologyCounts },
    };
  }

  private detach(): void {
    this.topology?.close();
    this.nft?.close();
    this.tc?.closeAll();
    this.nf.closeAll();
    this.functions?.close();
    closeAll(this.links);
  }

  private linkCount(): number {
    let n = this.links.length + (this.tc ? this.tc.hookCount + this.tc.firstCount : 0) + (this.functions?.linkCount ?? 0);
    n += this.nf.linkCount;
    return n;
  }

  private attachedLine(ms: number): string {
    return attachedLine({
      links: this.linkCount(), tracepoints: this.tracepoints, functions: this.functionCount, tcDevices: this.tc?.deviceCount ?? 0, tcFirst: this.tc?.firstCount ?? 0,
      nfNamespaces: this.nf.namespaceCount, nfMoved: this.nf.moved, nftNamespaces: this.nft?.namespaceCount ?? null,
    }, ms);
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

  /** Runs fn; a failure is reported as not observed and returned. */
  private attempt(what: string, fn: () => void): Error | null {
    try {
      fn();
      return null;
    } catch (e) {
      const line = `${what}: ${(e as Error).message.split('\n')[0]}`;
      this.notObserved.push(line);
      this.hooks.status(`pktpath: not observed: ${line}`);
      return e as Error;
    }
  }

  /**
   * Loads and attaches every probe of the plan. A point that fails is
   * reported and skipped; none at all is an error. Between attachments it
   * lets signals in: a stop while attaching ends it at once.
   */
  private async attach(): Promise<void> {
    const failures: Error[] = [];
    const attempt = (what: string, fn: () => void) => {
      const e = this.attempt(what, fn);
      if (e) failures.push(e);
    };
    const goOn = async () => {
      await new Promise<void>((resolve) => setImmediate(resolve));
      return this.stopReason === null;
    };

    for (const tp of this.plan.tracepoints) {
      if (!(await goOn())) return;
      attempt(`tracepoint ${tp.name}`, () => {
        const id = this.addPoint({ type: 'tracepoint', name: tp.name });
        const cfg = this.probeConfig(id, {
          skbArg: tp.skbArg, reasonArg: tp.reasonArg, locationArg: tp.locationArg, devArg: tp.devArg,
          frees: FREEING_POINTS.has(tp.name),
        });
        const inst = this.probes.load('tracepoint', cfg, `tracepoint ${tp.name}`, tp.name, this.filter.compiled);
        this.links.push(attachTracing(inst.program, `tracepoint ${tp.name}`));
        this.tracepoints++;
      });
    }

    if (this.plan.functions.length > 0) {
      if (!(await goOn())) return;
      await this.attachFunctions(goOn);
      if (this.stopReason !== null) return;
    }

    // Followed from the start, so that devices and chains that change while attaching are not missed.
    if (this.opts.scope !== null) {
      this.topology = new Topology(this.opts.scope, this.filter.ifindex === 0, this.topologyListener);
      this.topology.start(this.kernel.namespaces);
    }

    if (this.plan.template.tcDirections.length > 0) {
      attempt('tc', () => {
        const last = this.tcInstance('last');
        const attach = this.plan.tcMode === 'clsact' ? clsactAttacher(this.kernel.namespaces.map((n) => n.netns), this.hooks.status) : attachLastTcx;
        this.tc = new TcObservers({ last, first: () => this.tcInstance('first') }, this.plan.template.tcDirections, this.hooks.status, attach);
      });
      const byDevice = new Map<string, { netns: Netns; iface: Iface }>();
      for (const t of this.plan.tc) byDevice.set(`${t.netns.inode}:${t.iface.ifindex}`, { netns: t.netns, iface: t.iface });
      for (const { netns, iface } of this.tc ? byDevice.values() : []) {
        if (!(await goOn())) return;
        attempt(tcWhere(netns, iface), () => this.attachTc(netns, iface, null));
      }
    }

    // One observer instance before NAT, and where the plan asks for it one after NAT, each linked at its hooks.
    const template = this.plan.template.netfilter;
    if (template.some((h) => !h.afterNat)) {
      attempt('netfilter', () => (this.nfPrograms.beforeNat = this.nfInstance({ type: 'netfilter', name: 'netfilter' }).program));
    }
    if (template.some((h) => h.afterNat)) {
      attempt('netfilter:nat', () => (this.nfPrograms.afterNat = this.nfInstance({ type: 'netfilter', name: 'netfilter:nat', suffix: ':nat' }).program));
    }
    for (const n of this.plan.netfilter) {
      if (!(await goOn())) return;
      attempt(nfWhere(n), () => this.nf.add(n));
    }

    if (this.linkCount() === 0) {
      throw failures[0] ?? new Error('nothing to attach: the filters and --attach leave no observation point');
    }

    if (this.opts.nft) {
      const nft = (this.nft = new NftTracer(this.opts.nft.matches, this.names, this.hooks.status));
      for (const { netns } of this.kernel.namespaces) {
        if (!(await goOn())) return;
        const e = this.attempt(`nft tracing (netns ${netns.name || netns.inode})`, () => nft.add(netns));
        if (e) failures.push(e);
      }
      if (nft.namespaceCount === 0) throw failures[failures.length - 1] ?? new Error('--output-nft: no namespace to trace');
    }
  }

  /** Function observers, backend by backend as the plan orders them; what none takes is reported. */
  private async attachFunctions(goOn: () => Promise<boolean>): Promise<void> {
    const tty = process.stderr.isTTY;
    const fn = (this.functions = new FunctionObservers({
      probes: this.probes,
      filter: this.filter.compiled,
      addPoint: (info) => this.addPoint(info),
      config: (id, extra) => this.probeConfig(id, extra),
      goOn,
      progress: (backend, done, total) => {
        if (tty && total >= 256) process.stderr.write(`\rpktpath: attaching ${backend}: ${done}/${total} functions${done === total ? '\n' : ''}`);
      },
    }));
    const r = await fn.attach(this.plan.functions, this.plan.functionBackends);
    this.functionCount = [...r.byBackend.values()].reduce((a, n) => a + n, 0);
    const { attached, refused } = functionLines(r);
    if (attached) this.hooks.status(`pktpath: ${attached}`);
    if (refused) {
      this.notObserved.push(refused);
      this.hooks.status(`pktpath: not observed: ${refused}`);
    }
  }

  /** A tc observer instance: `last` in every traced chain, `first` where other programs run. */
  private tcInstance(position: 'first' | 'last'): ProbeInstance['program'] & { id: number } {
    const id = this.addPoint({ type: 'tc', name: 'tc', position });
    const inst = this.probes.load('tc', this.probeConfig(id), `tc observer (${position} in the chain)`, undefined, this.filter.compiled);
    return Object.assign(inst.program, { id: progIdOfFd(inst.program.fd) });
  }

  private nfInstance(point: PointInfo): ProbeInstance {
    const id = this.addPoint(point);
    return this.probes.load('netfilter', this.probeConfig(id), `${point.name} observer`, undefined, this.filter.compiled);
  }

  /** tc observers on a device (both directions the plan wants); `rtnl` of its namespace, or one opened for it. */
  private attachTc(netns: Netns, iface: Iface, rtnl: NetlinkSocket | null): void {
    withNetns(netns.path, () => {
      const sock = rtnl ?? this.topology?.rtnlOf(netns.inode) ?? NetlinkSocket.open(NETLINK_ROUTE);
      try {
        this.tc!.add(netns, iface, sock, (d) => `tc ${d} on ${iface.name} (netns ${netns.name || netns.inode})`);
      } finally {
        if (sock !== rtnl && sock !== this.topology?.rtnlOf(netns.inode)) sock.close();
      }
    });
  }

  /** What the session does when namespaces and devices come and go. */
  private readonly topologyListener: TopologyListener = followTopology({
    counts: this.topologyCounts,
    names: () => this.names,
    tc: () => this.tc,
    nf: this.nf,
    nft: () => this.nft,
    netfilterTemplate: () => this.plan.template.netfilter,
    attempt: (what, fn) => this.attempt(what, fn),
    attachTc: (netns, iface, rtnl) => this.attachTc(netns, iface, rtnl),
    status: (line) => this.hooks.status(line),
  });

  private startReading(): void {
    const maps = this.probes.maps!;
    // Symbols are read after attaching, so that our own programs resolve too; drop locations need them always.
    const symbols = Kallsyms.load();
    this.enricher = new Enricher({
      points: this.points,
      names: this.names,
      dropReasons: dropReasonNames(),
      startMonoNs: this.startMonoNs,
      startWallNs: this.startWallNs,
      symbols,
      stacks: this.opts.stack ? new StackSymbols(maps.stacks, symbols) : null,
      tupleChanges: this.opts.tupleChanges,
    });
    const tc = this.tc;
    this.stage = new VerdictStage(tc ? tc.lookup : () => undefined, this.emit);
    this.ring = new RingReader(maps.eventsFd, this.opts.ringSize);
    this.pollTimer = setInterval(() => this.pump(), POLL_MS);
    this.lostTimer = setInterval(() => this.checkLost(), LOST_CHECK_MS);
    if (this.topology !== null) this.topologyTimer = setInterval(() => this.followTopology(), TOPOLOGY_MS);
    // Everything that needs the kernel's BTF has asked it by now: its parsed forms need not stay in memory.
    releaseVmlinuxBtf();
    releaseMemoryAfterAttach();
  }

  private followTopology(): void {
    try {
      this.topology?.tick();
    } catch (e) {
      this.hooks.status(`pktpath: following namespaces and devices: ${(e as Error).message}`);
    }
  }

  private stopReading(): void {
    if (this.pollTimer) clearInterval(this.pollTimer);
    if (this.lostTimer) clearInterval(this.lostTimer);
    if (this.topologyTimer) clearInterval(this.topologyTimer);
    this.pollTimer = this.lostTimer = this.topologyTimer = null;
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
  private batch: Array<{ e: TraceEvent; position: TcPosition | null }> | null = null;

  private readonly onRecord = (view: DataView, bytes: Uint8Array, at: number): void => {
    const limit = this.opts.limit;
    if (limit > 0 && this.counts.events >= limit) return;
    const raw = decodeEvent(view, bytes, at);
    if (!raw) return;
    const e = this.enricher!.enrich(raw);
    const position = this.points[raw.pointId]?.position ?? null;
    if (this.batch !== null) {
      this.nft!.note(e);
      this.batch.push({ e, position });
    } else {
      this.stage!.push(e, position, this.nowMs);
    }
  };

  private pump(): void {
    if (!this.ring) return;
    this.nowMs = performance.now();
    const limit = this.opts.limit;
    const nft = this.nft;
    // nftables' events first: the ring then holds every record of their packets up to their hook.
    const polledAtNs = process.hrtime.bigint() - this.startMonoNs;
    const pending = nft ? nft.poll() : null;
    if (nft) this.batch = [];
    this.ring.drain(this.onRecord, limit > 0 ? Math.max(0, limit - this.counts.events) : Infinity);
    if (nft && pending && this.batch) {
      const nowNs = this.startWallNs + polledAtNs;
      const placed = placeTraceEvents(this.batch, nft.events(pending, polledAtNs, nowNs), (e) => ({ e, position: null }));
      this.batch = null;
      for (const { e, position } of placed) this.stage!.push(e, position, this.nowMs);
    }
    this.stage!.tick(this.nowMs);
    if (this.topology?.pending) this.followTopology();
  }

  private trackingLine(): string {
    const maps = this.probes.maps!;
    return trackingLine(Number(maps.trackStats.sum(TrackStat.added)), Number(maps.trackStats.sum(TrackStat.freed)), maps.trackedSkbs.count());
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

