/**
 * Everything a session attaches, as the plan says, family by family
 * (./families/): tracepoints, kernel functions, tc observers, netfilter,
 * other programs' entries and exits, and nft tracing; and what follows
 * namespaces and devices as they come and go. Each point that fails is
 * reported as not observed; the session reads what the rest send.
 */
import type { PointInfo } from '../decode/points.js';
import type { ActiveFilter } from '../filter/active.js';
import { NETLINK_ROUTE, NetlinkSocket } from '../kernel/netlink.js';
import { type Netns, withNetns } from '../kernel/netns.js';
import type { KernelView } from '../kernel/view.js';
import type { TopologyCounts } from '../output/summary.js';
import type { AttachPlan } from './attachments.js';
import { type AttachFamily, type FamilyContext, type ObserverOptions, combineReports, refusalLine } from './families/family.js';
import { FunctionFamily } from './families/functions.js';
import type { ReturnShape } from '../output/sections/retval.js';
import { NetfilterFamily } from './families/netfilter.js';
import { NftFamily } from './families/nft.js';
import { ProgramFamily } from './families/programs.js';
import { TcFamily } from './families/tc.js';
import { DecisionFamily } from './families/decisions.js';
import { TracepointFamily } from './families/tracepoints.js';
import { TrackFamily } from './families/track.js';
import { followTopology } from './follow.js';
import type { NameBook } from './names.js';
import { ProbeSet } from './probes.js';
import { type AttachedState, attachedLine } from './status.js';
import { Topology, type TopologyListener } from './topology.js';

export type { ObserverOptions };

export interface ObserverContext {
  plan: AttachPlan;
  kernel: Pick<KernelView, 'namespaces'>;
  filter: ActiveFilter;
  opts: ObserverOptions;
  names: NameBook;
  status(line: string): void;
  /** False once the session is stopping: attaching ends at the next step. */
  goingOn(): boolean;
  /** What else follows the namespaces that come and go (the settings), after the families. */
  follow?: Partial<TopologyListener>;
}

export class Observers {
  readonly probes: ProbeSet;
  /** What each point id stands for. */
  readonly points: PointInfo[] = [];
  /** What the plan asked for and could not be attached, and why, in the order said. */
  readonly notObserved: string[] = [];
  readonly topologyCounts: TopologyCounts = { namespacesAdded: 0, namespacesRemoved: 0, devicesAdded: 0, devicesRemoved: 0 };
  private topologyWatch: Topology | null = null;
  /** Refusals while attaching that may be the reason nothing could be attached. */
  private readonly failures: Error[] = [];

  private readonly tracepoints: TracepointFamily;
  private readonly decisions: DecisionFamily;
  private readonly functions: FunctionFamily;
  private readonly tcFamily: TcFamily;
  private readonly netfilter: NetfilterFamily;
  private readonly programs: ProgramFamily;
  private readonly nftFamily: NftFamily;
  private readonly track: TrackFamily;
  /** Every family, in the order their first objects are asked for (so their point ids). */
  private readonly families: readonly AttachFamily[];

  /** How each function whose return is observed reads its value (--output-retval), by name. */
  get functionReturns(): ReadonlyMap<string, ReturnShape> {
    return this.functions.returns;
  }

  constructor(private readonly ctx: ObserverContext) {
    const { filter, opts } = ctx;
    this.probes = new ProbeSet({
      ringSize: opts.ringSize,
      config: {
        stack: opts.stack, dump: opts.dump, netns: filter.netns?.inode ?? 0, ifindex: filter.ifindex, mark: filter.mark,
        track: filter.trackSkb, snaplen: opts.snaplen, sections: opts.sections ?? 0, neighAll: opts.neighAll ?? false,
        progRun: ctx.plan.trackBpfHelpers === true, xdpMetaBytes: opts.xdpMeta?.bytes ?? 0,
        skbMetaBytes: opts.skbMeta?.bytes ?? 0, trackStack: filter.trackStack ?? false, window: (ctx.plan.nonSkbFuncs?.length ?? 0) > 0,
      },
      code: { filter: filter.compiled, skbExpr: filter.skbExpr?.code ?? null, xdpExpr: filter.xdpExpr?.code ?? null, skbMeta: opts.skbMeta?.code ?? null,
        xdpMeta: opts.xdpMeta?.code ?? null, inner: filter.inner },
    });
    const family: FamilyContext = {
      ...ctx,
      probes: this.probes,
      addPoint: (info) => this.points.push(info) - 1,
      attempt: (what, fn, aside) => this.attempt(what, fn, aside),
      notObserved: (line) => this.refused(line),
      goOn: async () => {
        await new Promise<void>((resolve) => setImmediate(resolve));
        return ctx.goingOn();
      },
      inNamespace: (netns, fn, rtnl) => this.inNamespace(netns, fn, rtnl ?? null),
    };
    this.tracepoints = new TracepointFamily(family);
    this.programs = new ProgramFamily(family);
    this.tcFamily = new TcFamily(family, this.programs.found);
    this.netfilter = new NetfilterFamily(family);
    this.functions = new FunctionFamily(family);
    this.nftFamily = new NftFamily(family);
    this.decisions = new DecisionFamily(family);
    this.track = new TrackFamily(family, () => this.functions.attached);
    this.families = [this.tracepoints, this.decisions, this.tcFamily, this.netfilter, this.functions, this.track, this.programs, this.nftFamily];
  }

  /** The tc hooks (their other programs, for verdicts); null without tc observers. */
  get tc() {
    return this.tcFamily.hooks;
  }

  /** The netfilter links of each namespace. */
  get nf() {
    return this.netfilter.hooks;
  }

  /** nftables' tracing (--output-nft), once attached. */
  get nft() {
    return this.nftFamily.tracer;
  }

  /** Namespaces and devices followed as they come and go; null when the plan's are all there is. */
  get topology(): Topology | null {
    return this.topologyWatch;
  }

  /** Other programs' entries and exits are traced (their records carry verdicts). */
  get tracesPrograms(): boolean {
    return this.programs.active;
  }

  /** What every family holds, as the attached line counts it. */
  private state(): AttachedState {
    return combineReports(this.families.map((f) => f.report()));
  }

  linkCount(): number {
    return this.state().links;
  }

  attachedLine(ms: number): string {
    return attachedLine(this.state(), ms);
  }

  /** Releases everything attached, then the probes. */
  async close(): Promise<void> {
    this.topologyWatch?.close();
    await Promise.all(this.families.map((f) => f.detach()));
    // A stop while attaching: loads may still be under way on other threads.
    await this.probes.settled();
    this.probes.close();
  }

  /** Runs fn; a failure is reported as not observed and returned. */
  private attempt(what: string, fn: () => void, aside = false): Error | null {
    try {
      fn();
      return null;
    } catch (e) {
      this.refused(refusalLine(what, e as Error));
      if (!aside) this.failures.push(e as Error);
      return e as Error;
    }
  }

  private refused(line: string): void {
    this.notObserved.push(line);
    this.ctx.status(`pktpath: not observed: ${line}`);
  }

  /**
   * Loads and attaches every family of the plan. A point that fails is
   * reported and skipped; none at all is an error. Between attachments it
   * lets signals in: a stop while attaching ends it at once.
   */
  async attach(): Promise<void> {
    const { filter, kernel, opts } = this.ctx;
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (!this.ctx.goingOn()) return;
    // Every family's first objects set loading at once: where one fails, it is loaded again on its own, when its turn comes, to report why.
    const planned = this.families.map((f) => f.plan());
    const loads = this.probes.loadTogether(planned.flat());
    let at = 0;
    const landed = new Map(this.families.map((f, i) => [f, loads.slice(at, (at += planned[i]!.length))]));

    // Followed from the start, so that devices and chains that change while attaching are not missed.
    if (opts.scope !== null) {
      this.topologyWatch = new Topology(opts.scope, filter.ifindex === 0, followTopology({
        counts: this.topologyCounts, names: () => this.ctx.names, nfHooksIn: (inode) => this.nf.hooksIn(inode), status: this.ctx.status,
        families: [...[this.tcFamily, this.programs, this.netfilter, this.nftFamily].map((f) => f.follow ?? {}), this.ctx.follow ?? {}],
      }));
      this.topologyWatch.start(kernel.namespaces);
    }

    // tc first: its object loads soonest, and each tcx link waits for an RCU grace period while the
    // tracepoints' object still verifies. With --filter-track-skb the tracepoints first: only the points
    // that free an skb (observed, or watched only) forget what tc starts following.
    const first = filter.trackSkb ? [this.tracepoints, this.tcFamily] : [this.tcFamily, this.tracepoints];
    for (const f of [...first, this.decisions, this.functions, this.track, this.programs, this.netfilter]) {
      if (!(await f.attach(landed.get(f)!))) return;
    }
    const state = this.state();
    if (state.links === state.forgets) {
      throw this.failures[0] ?? new Error('nothing to attach: the filters and --attach leave no observation point');
    }
    await this.nftFamily.attach();
  }

  /** Runs fn inside `netns` with a route socket of it: `rtnl`, the topology's, or one opened for the call. */
  private inNamespace(netns: Netns, fn: (rtnl: NetlinkSocket) => void, rtnl: NetlinkSocket | null): void {
    withNetns(netns.path, () => {
      const topology = this.topologyWatch?.rtnlOf(netns.inode);
      const sock = rtnl ?? topology ?? NetlinkSocket.open(NETLINK_ROUTE);
      try {
        fn(sock);
      } finally {
        if (sock !== rtnl && sock !== topology) sock.close();
      }
    });
  }
}
