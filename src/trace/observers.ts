/**
 * Everything a session attaches, as the plan says: tracepoints, kernel
 * functions, tc observers, netfilter (links, or nf_hook_slow where the kernel
 * has none), other tc programs' entries and exits (--filter-trace-tc) and nft
 * tracing; and what follows namespaces and devices as they come and go. Each
 * point that fails is reported as not observed; the session reads what the
 * rest send.
 */
import { type Link, type LoadedProgram, NfHook, attachTracing, closeAll } from '../bpf/link.js';
import { progIdOfFd } from '../bpf/objects.js';
import { type ProbeConfig, nfHookMask } from '../decode/config.js';
import { FREEING_POINTS, type PointInfo } from '../decode/points.js';
import type { ActiveFilter } from '../filter/active.js';
import { NETLINK_ROUTE, NetlinkSocket } from '../kernel/netlink.js';
import { type Iface, type Netns, withNetns } from '../kernel/netns.js';
import type { NftCondition } from '../kernel/nftables.js';
import { expressionToNft } from '../filter/nft.js';
import type { KernelView } from '../kernel/view.js';
import type { TopologyCounts } from '../output/summary.js';
import type { AttachPlan, TracepointAttachment } from './attachments.js';
import { clsactAttacher } from './clsact.js';
import type { NameBook } from './names.js';
import { followTopology, tcWhere } from './follow.js';
import { FunctionObservers, functionLines } from './functions.js';
import { NfObservers, nfWhere } from './netfilter.js';
import { NftTracer } from './nft.js';
import { type LoadRequest, type ProbeInstance, ProbeSet, type TracepointLoad } from './probes.js';
import { ProgramObservers } from './progs.js';
import { attachedLine } from './status.js';
import { TcObservers, attachLastTcx } from './tc.js';
import type { CompiledSkbFetch } from '../filter/skb-expr.js';
import { Topology } from './topology.js';

/** The point id of internal programs: they write no record. */
const NO_POINT = 0xffffffff;

/** What a session asks of its observers beyond where to attach (part of SessionOptions). */
export interface ObserverOptions {
  /** Ring buffer size in bytes (power of two). */
  ringSize: number;
  /** Capture kernel stacks where the point allows it. */
  stack: boolean;
  /** Packet bytes to capture per event (0: none). */
  snaplen: number;
  /** The skb metadata section's fields, compiled: what every probe reads into its records; null: none. */
  skbMeta?: CompiledSkbFetch | null;
  /** The optional sections every probe writes (CONFIG.sections: src/output/sections/registry.ts, sectionMask). */
  sections?: number;
  /** --output-skb, --output-skb-shared-info, --output-skb-cb. */
  dump?: { skb: boolean; sharedInfo: boolean; cb: boolean };
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

export interface ObserverContext {
  plan: AttachPlan;
  kernel: Pick<KernelView, 'namespaces'>;
  filter: ActiveFilter;
  opts: ObserverOptions;
  names: NameBook;
  status(line: string): void;
  /** False once the session is stopping: attaching ends at the next step. */
  goingOn(): boolean;
}

/** An instance asked for: its point and its request. */
interface Asked {
  id: number;
  request: LoadRequest;
}

/** One set loading with others: what it becomes (null: refused, to be loaded again on its own). */
interface Ahead extends Asked {
  loaded: Promise<ProbeInstance[] | null>;
}

/** What Observers.loadFirst set loading. */
interface FirstLoads {
  /** The plan's tracepoints, with their points, and what becomes of their objects (one per TP_SLOTS). */
  tracepoints: { loads: TracepointLoad[]; ahead: Promise<Array<ProbeInstance[] | null>> } | null;
  tcLast: Ahead | null;
  beforeNat: Ahead | null;
  afterNat: Ahead | null;
}

export class Observers {
  readonly probes: ProbeSet;
  /** What each point id stands for. */
  readonly points: PointInfo[] = [];
  /** What the plan asked for and could not be attached, and why. */
  readonly notObserved: string[] = [];
  readonly topologyCounts: TopologyCounts = { namespacesAdded: 0, namespacesRemoved: 0, devicesAdded: 0, devicesRemoved: 0 };
  /** Tracepoint links and the nf_hook_slow observer; the rest are kept per device and namespace. */
  private readonly links: Link[] = [];
  private tracepoints = 0;
  /** The plan's internal points (frees watched for --filter-track-skb): links that report nothing. */
  private readonly forgetLinks: Link[] = [];
  private nfHookFunction = false;
  private functions: FunctionObservers | null = null;
  private functionCount = 0;
  tc: TcObservers | null = null;
  private readonly nfPrograms: { beforeNat: LoadedProgram | null; afterNat: LoadedProgram | null } = { beforeNat: null, afterNat: null };
  readonly nf = new NfObservers(this.nfPrograms);
  nft: NftTracer | null = null;
  topology: Topology | null = null;
  private programs: ProgramObservers | null = null;

  constructor(private readonly ctx: ObserverContext) {
    this.probes = new ProbeSet(ctx.opts.ringSize, undefined, ctx.opts.stack);
    this.probes.skbExpr = ctx.filter.skbExpr?.code ?? null;
    this.probes.tunnel = ctx.filter.tunnel;
    this.probes.skbMeta = ctx.opts.skbMeta?.code ?? null;
  }

  /** Other programs' entries and exits are traced (their records carry verdicts). */
  get tracesPrograms(): boolean {
    return this.programs !== null;
  }

  linkCount(): number {
    return this.links.length + this.forgetLinks.length + (this.tc ? this.tc.hookCount + this.tc.firstCount : 0) +
      (this.functions?.linkCount ?? 0) + this.nf.linkCount + (this.programs?.linkCount ?? 0);
  }

  attachedLine(ms: number): string {
    return attachedLine({
      links: this.linkCount(), tracepoints: this.tracepoints, forgets: this.forgetLinks.length, functions: this.functionCount,
      tcDevices: this.tc?.deviceCount ?? 0, tcFirst: this.tc?.firstCount ?? 0, nfNamespaces: this.nf.namespaceCount,
      nfHookFunction: this.nfHookFunction, nfMoved: this.nf.moved,
      nftNamespaces: this.nft?.namespaceCount ?? null, programs: this.programs?.count ?? 0,
    }, ms);
  }

  /** Releases everything attached, then the probes. */
  async close(): Promise<void> {
    this.topology?.close();
    this.nft?.close();
    await Promise.all([this.tc?.closeAll(), this.nf.closeAll()]);
    this.programs?.close();
    await this.functions?.close();
    closeAll(this.links);
    closeAll(this.forgetLinks);
    // A stop while attaching: loads may still be under way on other threads.
    await this.probes.settled();
    this.probes.close();
  }

  private addPoint(info: PointInfo): number {
    this.points.push(info);
    return this.points.length - 1;
  }

  private probeConfig(pointId: number, extra: Partial<ProbeConfig> = {}): ProbeConfig {
    const { filter, opts } = this.ctx;
    return {
      pointId, stack: opts.stack, filter: filter.compiled !== null, skbExpr: filter.skbExpr !== null,
      tunnelL2: filter.tunnel?.l2 != null, tunnelL3: filter.tunnel?.l3 != null, sections: opts.sections ?? 0, dump: opts.dump, skbArg: 0,
      netns: filter.netns?.inode ?? 0, ifindex: filter.ifindex, mark: filter.mark, track: filter.trackSkb,
      snaplen: opts.snaplen, ...extra,
    };
  }

  /**
   * The objects the plan's attachments start from — the tracepoints', the
   * last tc observer's, the netfilter observers' — set loading at once
   * (ProbeSet.loadTogether: on two cores, in about the time of the largest),
   * each with its point id and request: where its load fails, it is loaded
   * again on its own, when its turn comes, to report why.
   */
  private loadFirst(): FirstLoads {
    const { plan, filter } = this.ctx;
    const { tracepoints: observed, forgets } = plan;
    const tracepoints = observed.length + forgets.length > 0 ? this.tracepointLoads(observed, forgets) : null;
    const tpRequests = tracepoints ? this.probes.tracepointRequests(this.probeConfig(0), tracepoints, filter.compiled) : [];
    const tcLast = plan.template.tcDirections.length > 0 ? this.tcRequest('last') : null;
    const nf = plan.template.netfilter;
    const beforeNat = nf.some((h) => !h.afterNat) ? this.nfRequest({ type: 'netfilter', name: 'netfilter' }) : null;
    const afterNat = nf.some((h) => h.afterNat) ? this.nfRequest({ type: 'netfilter', name: 'netfilter:nat', suffix: ':nat' }) : null;
    const others = [tcLast, beforeNat, afterNat].filter((a): a is Asked => a !== null);
    const loads = this.probes.loadTogether([...tpRequests, ...others.map((a) => a.request)]);
    const ahead = (a: Asked | null): Ahead | null => (a === null ? null : { ...a, loaded: loads[tpRequests.length + others.indexOf(a)]! });
    return {
      tracepoints: tracepoints && { loads: tracepoints, ahead: Promise.all(loads.slice(0, tpRequests.length)) },
      tcLast: ahead(tcLast), beforeNat: ahead(beforeNat), afterNat: ahead(afterNat),
    };
  }

  /** The plan's tracepoints as loads, each with its point; its internal ones (`forgets`) after them, with none. */
  private tracepointLoads(tracepoints: readonly TracepointAttachment[], forgets: readonly TracepointAttachment[]): TracepointLoad[] {
    const load = (tp: TracepointAttachment, silent: boolean): TracepointLoad => ({
      label: silent ? `tracepoint ${tp.name} (frees, for --filter-track-skb)` : `tracepoint ${tp.name}`,
      target: tp.name,
      slot: {
        pointId: silent ? NO_POINT : this.addPoint({ type: 'tracepoint', name: tp.name }), frees: FREEING_POINTS.has(tp.name), silent,
        skbArg: tp.skbArg, reasonArg: tp.reasonArg, locationArg: tp.locationArg, devArg: tp.devArg,
      },
    });
    return [...tracepoints.map((tp) => load(tp, false)), ...forgets.map((tp) => load(tp, true))];
  }

  /** The plan's tracepoints (one object for up to TP_SLOTS of them), each linked on its own; false when the session stopped meanwhile. */
  private async attachTracepoints({ loads, ahead }: NonNullable<FirstLoads['tracepoints']>, attempt: (what: string, fn: () => void) => void): Promise<boolean> {
    const landed = await ahead;
    if (!this.ctx.goingOn()) return false;
    const loaded = this.probes.loadTracepoints(this.probeConfig(0), loads, this.ctx.filter.compiled, landed);
    loads.forEach((load, i) => {
      attempt(load.label, () => {
        const inst = loaded[i]!;
        if (inst instanceof Error) throw inst;
        const link = attachTracing(inst.program, load.label);
        if (load.slot.silent) {
          this.forgetLinks.push(link);
        } else {
          this.links.push(link);
          this.tracepoints++;
        }
      });
    });
    return true;
  }

  /** Runs fn; a failure is reported as not observed and returned. */
  attempt(what: string, fn: () => void): Error | null {
    try {
      fn();
      return null;
    } catch (e) {
      const line = `${what}: ${(e as Error).message.split('\n')[0]}`;
      this.notObserved.push(line);
      this.ctx.status(`pktpath: not observed: ${line}`);
      return e as Error;
    }
  }

  /**
   * Loads and attaches every probe of the plan. A point that fails is
   * reported and skipped; none at all is an error. Between attachments it
   * lets signals in: a stop while attaching ends it at once.
   */
  async attach(): Promise<void> {
    const { plan, filter, kernel } = this.ctx;
    const failures: Error[] = [];
    const attempt = (what: string, fn: () => void) => {
      const e = this.attempt(what, fn);
      if (e) failures.push(e);
    };
    const goOn = async () => {
      await new Promise<void>((resolve) => setImmediate(resolve));
      return this.ctx.goingOn();
    };

    if (!(await goOn())) return;
    const first = this.loadFirst();

    // Followed from the start, so that devices and chains that change while attaching are not missed.
    if (this.ctx.opts.scope !== null) {
      this.topology = new Topology(this.ctx.opts.scope, filter.ifindex === 0, this.topologyListener);
      this.topology.start(kernel.namespaces);
    }

    if (plan.tracePrograms.length > 0) {
      this.programs = new ProgramObservers({
        probes: this.probes, filter: filter.compiled, addPoint: (info) => this.addPoint(info),
        config: (id, extra) => this.probeConfig(id, extra), attempt: (what, fn) => this.attempt(what, fn),
      }, new Set(plan.tracePrograms));
      // Other programs found (tc, XDP) load probes of kinds not loaded yet: with no quiet load under way, so that a refusal quotes the verifier.
      await this.probes.settled();
    }

    const attachTc = async (): Promise<boolean> => {
      if (!first.tcLast) return true;
      const loaded = await first.tcLast.loaded;
      if (!this.ctx.goingOn()) return false;
      attempt('tc', () => {
        const last = this.tcProgram(this.instance(first.tcLast!, loaded));
        const attach = plan.tcMode === 'clsact' ? clsactAttacher(kernel.namespaces.map((n) => n.netns), this.ctx.status) : attachLastTcx;
        this.tc = new TcObservers({ last, first: () => this.tcProgram(this.instance(this.tcRequest('first'), null)) }, plan.template.tcDirections, this.ctx.status, attach,
          this.programs ? (found) => this.programs!.addAll(found, 'tc') : undefined);
      });
      const byDevice = new Map<string, { netns: Netns; iface: Iface }>();
      for (const t of plan.tc) byDevice.set(`${t.netns.inode}:${t.iface.ifindex}`, { netns: t.netns, iface: t.iface });
      for (const { netns, iface } of this.tc ? byDevice.values() : []) {
        if (!(await goOn())) return false;
        attempt(tcWhere(netns, iface), () => this.attachTc(netns, iface, null));
      }
      return true;
    };
    const attachTracepoints = async (): Promise<boolean> => {
      if (!first.tracepoints) return true;
      if (!(await goOn())) return false;
      return this.attachTracepoints(first.tracepoints, attempt);
    };
    // tc first: its object loads soonest, and each tcx link waits for an RCU grace period while the
    // tracepoints' object still verifies. With --filter-track-skb the tracepoints first: only the points
    // that free an skb (observed, or watched only) forget what tc starts following.
    for (const step of filter.trackSkb ? [attachTracepoints, attachTc] : [attachTc, attachTracepoints]) {
      if (!(await step())) return;
    }

    if (plan.functions.length > 0) {
      // Their loads quote the verifier when refused: with no quiet load under way.
      await this.probes.settled();
      if (!(await goOn())) return;
      await this.attachFunctions(goOn);
      if (!this.ctx.goingOn()) return;
    }

    if (this.programs?.hooks.has('xdp')) {
      for (const { netns } of kernel.namespaces) {
        if (!(await goOn())) return;
        attempt(`XDP programs (netns ${netns.name || netns.inode})`, () => this.inNamespace(netns, (rtnl) => this.programs!.addXdp(rtnl)));
      }
    }

    // One observer instance before NAT, and where the plan asks for it one after NAT, each linked at its hooks.
    const { beforeNat, afterNat } = first;
    if (beforeNat) {
      const loaded = await beforeNat.loaded;
      if (!this.ctx.goingOn()) return;
      attempt('netfilter', () => (this.nfPrograms.beforeNat = this.instance(beforeNat, loaded).program));
    }
    if (afterNat) {
      const loaded = await afterNat.loaded;
      if (!this.ctx.goingOn()) return;
      attempt('netfilter:nat', () => (this.nfPrograms.afterNat = this.instance(afterNat, loaded).program));
    }
    for (const n of plan.netfilter) {
      if (!(await goOn())) return;
      attempt(nfWhere(n), () => this.nf.add(n));
    }
    if (plan.nfHookFunction) attempt('netfilter (fexit of nf_hook_slow)', () => this.attachNfHookFunction(plan.nfHookFunction!.hooks));

    if (this.linkCount() === this.forgetLinks.length) {
      throw failures[0] ?? new Error('nothing to attach: the filters and --attach leave no observation point');
    }

    if (this.ctx.opts.nft) {
      // A tcpdump expression (no flag rules) goes into the table as it is, where nftables takes it.
      const { compiled, mark } = this.ctx.filter;
      const matches = this.ctx.opts.nft.matches ?? (compiled ? expressionToNft(compiled, mark) : null);
      const nft = (this.nft = new NftTracer(matches, this.ctx.names, this.ctx.status));
      for (const { netns } of kernel.namespaces) {
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
      filter: this.ctx.filter.compiled,
      addPoint: (info) => this.addPoint(info),
      config: (id, extra) => this.probeConfig(id, extra),
      goOn,
      progress: (backend, done, total) => {
        if (tty && total >= 256) process.stderr.write(`\rpktpath: attaching ${backend}: ${done}/${total} functions${done === total ? '\n' : ''}`);
      },
    }));
    const r = await fn.attach(this.ctx.plan.functions, this.ctx.plan.functionBackends);
    this.functionCount = [...r.byBackend.values()].reduce((a, n) => a + n, 0);
    const { attached, refused } = functionLines(r);
    if (attached) this.ctx.status(`pktpath: ${attached}`);
    if (refused) {
      this.notObserved.push(refused);
      this.ctx.status(`pktpath: not observed: ${refused}`);
    }
  }

  /** Netfilter without netfilter links: one fexit program on nf_hook_slow for every namespace, told which hooks to report. */
  private attachNfHookFunction(hooks: NonNullable<AttachPlan['nfHookFunction']>['hooks']): void {
    const id = this.addPoint({ type: 'netfilter', name: 'netfilter' });
    const nfHooks = nfHookMask(hooks.map((h) => ({ ipv6: h.family === 'ipv6', hook: NfHook[h.hook] })));
    const inst = this.probes.load('nf-hook', this.probeConfig(id, { nfHooks }), 'netfilter observer (fexit of nf_hook_slow)',
      'nf_hook_slow', this.ctx.filter.compiled);
    this.links.push(attachTracing(inst.program, 'fexit of nf_hook_slow'));
    this.nfHookFunction = true;
  }

  /** A tc observer instance to load: `last` in every traced chain, `first` where other programs run. */
  private tcRequest(position: 'first' | 'last'): Asked {
    const id = this.addPoint({ type: 'tc', name: 'tc', position });
    return { id, request: this.probes.request('tc', this.probeConfig(id), `tc observer (${position} in the chain)`, undefined, this.ctx.filter.compiled) };
  }

  private nfRequest(point: PointInfo): Asked {
    const id = this.addPoint(point);
    return { id, request: this.probes.request('netfilter', this.probeConfig(id), `${point.name} observer`, undefined, this.ctx.filter.compiled) };
  }

  private tcProgram(inst: ProbeInstance): ProbeInstance['program'] & { id: number } {
    return Object.assign(inst.program, { id: progIdOfFd(inst.program.fd) });
  }

  /** The instance asked for: as loaded together with others (`loaded`), else loaded now, and its refusal said. */
  private instance(a: Asked, loaded: ProbeInstance[] | null): ProbeInstance {
    return (loaded ?? this.probes.loadRequest(a.request))[0]!;
  }

  /** Runs fn inside `netns` with a route socket of it: `rtnl`, the topology's, or one opened for the call. */
  private inNamespace(netns: Netns, fn: (rtnl: NetlinkSocket) => void, rtnl: NetlinkSocket | null = null): void {
    withNetns(netns.path, () => {
      const sock = rtnl ?? this.topology?.rtnlOf(netns.inode) ?? NetlinkSocket.open(NETLINK_ROUTE);
      try {
        fn(sock);
      } finally {
        if (sock !== rtnl && sock !== this.topology?.rtnlOf(netns.inode)) sock.close();
      }
    });
  }

  /** tc observers on a device (both directions the plan wants). */
  private attachTc(netns: Netns, iface: Iface, rtnl: NetlinkSocket | null): void {
    this.inNamespace(netns, (sock) => this.tc!.add(netns, iface, sock, (d) => `tc ${d} on ${iface.name} (netns ${netns.name || netns.inode})`), rtnl);
  }

  /** What the observers do when namespaces and devices come and go. */
  private readonly topologyListener = followTopology({
    counts: this.topologyCounts,
    names: () => this.ctx.names,
    tc: () => this.tc,
    nf: this.nf,
    nft: () => this.nft,
    netfilterTemplate: () => this.ctx.plan.template.netfilter,
    attempt: (what, fn) => this.attempt(what, fn),
    attachTc: (netns, iface, rtnl) => this.attachTc(netns, iface, rtnl),
    programsIn: (rtnl) => this.programs?.addXdp(rtnl),
    status: (line) => this.ctx.status(line),
  });
}
