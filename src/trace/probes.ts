/**
 * pktpath's own probe objects (probes/*.bpf.c), instantiated per observation
 * point. All instances share one ring buffer, one lost counter, one stack map
 * and the skb-tracking maps: made from the first object's definitions before
 * any object loads, and reused by every one, so that objects can load at
 * once (loadTogether).
 */
import fs from 'node:fs';
import path from 'node:path';
import { AttachType, ProgType } from '../bpf/abi.js';
import { BpfError } from '../bpf/errors.js';
import { quiet, quietlyOrAgain } from '../bpf/log.js';
import type { Fd } from '../bpf/fd.js';
import { HashMap, LoadedMap, PerCpuArray, StackTraceMap } from '../bpf/maps.js';
import type { EbpfInsn } from '../bpf/insn.js';
import { BpfObject, type BpfProgram } from '../bpf/object.js';
import { type ProbeConfig, type TracepointSlot, encodeConfig, encodeTracepointSlots } from '../decode/config.js';
import type { CompiledFilter } from '../filter/expression.js';
import { FILTER_MAGIC, findRegion, injectRegion } from '../filter/inject.js';
import { SKB_EXPR_MAGIC, SKB_EXPR_REGION_INSNS, SKB_META_MAGIC, SKB_META_REGION_INSNS } from '../filter/skb-expr.js';
import { TUNNEL_MAGIC, TUNNEL_REGION_INSNS, type TunnelFilter } from '../filter/tunnel.js';
import { type Capability, capability, has } from '../kernel/caps.js';
import { describeRefusal } from '../kernel/mechanisms.js';
import { type AttachTarget, PROBES, type ProbeBuild, type ProbeKind, TARGETED, TP_SLOTS, nextFitting, probesDir } from './builds.js';

/** The maps of probes/include/maps.h every instance shares. */
const SHARED_MAPS = ['events', 'lost', 'stacks', 'tracked_skbs', 'tracked_heads', 'track_stats'] as const;
type SharedMap = (typeof SHARED_MAPS)[number];

/** The shared maps as user space reads them. */
export interface ProbeMaps {
  /** The ring buffer, for the reader to map. */
  events: LoadedMap;
  lost: PerCpuArray;
  stacks: StackTraceMap;
  trackedSkbs: HashMap;
  /** Indexed by TrackStat. */
  trackStats: PerCpuArray;
}

export interface ProbeInstance {
  object: BpfObject;
  program: BpfProgram;
}

/** One program of an object: what it attaches to (BTF-typed kinds) and what names it in errors. */
export interface ProgramLoad {
  label: string;
  target?: AttachTarget;
}

/** One object to load: its kind, configuration, programs, filter and (kinds with slots) slot data. */
export interface LoadRequest {
  kind: ProbeKind;
  config: ProbeConfig;
  programs: readonly ProgramLoad[];
  filter: CompiledFilter | null;
  slotData?: Buffer;
}

/** A tracepoint for loadTracepoints(): its program's slot, name in errors and tracepoint. */
export interface TracepointLoad {
  slot: TracepointSlot;
  label: string;
  target: string;
}

export class ProbeSet {
  private readonly objects: BpfObject[] = [];
  private closed = false;
  /**
   * The shared maps' fds (each object reuses them) and their handles: made
   * from the first object opened, before it loads, so that objects can load
   * at once.
   */
  private shared: { fds: Record<SharedMap, Fd>; maps: ProbeMaps } | null = null;

  /** --filter-skb-expr, compiled: written into every probe with the region. */
  skbExpr: EbpfInsn[] | null = null;
  /** --output-skb-metadata, compiled: written into every probe with the region. */
  skbMeta: EbpfInsn[] | null = null;
  /** --filter-tunnel-pcap-l2/-l3, translated: written into every probe with the tunnel regions. */
  tunnel: TunnelFilter | null = null;

  /** `stacks`: whether any probe will record stacks (without, the stack map is made with one entry, not 16 MiB of them). */
  constructor(readonly ringSize: number, readonly dir = probesDir(), private readonly stacks = true) {}

  /** Whether builds that read packet bytes in place are worth a try on this kernel. */
  private readonly directLoads = has('direct-packet-loads');

  /** The build each kind loaded with (and whether without the task helpers), once one did. */
  private readonly chosen = new Map<ProbeKind, { build: number; noTask: boolean }>();
  /** What probes do without on this kernel, and why: one line per kind. */
  readonly degraded: string[] = [];

  /**
   * Loads one instance of a probe; `attachTarget` names the tracepoint or
   * function for BTF-typed probes, `filter` is injected into its filter
   * regions. The kind's builds are tried in order until one loads; when none
   * does, the error is the last build's (the one that asks least of the kernel).
   */
  load(kind: ProbeKind, config: ProbeConfig, label: string, attachTarget?: AttachTarget,
    filter: CompiledFilter | null = null): ProbeInstance {
    return this.loadRequest(this.request(kind, config, label, attachTarget, filter))[0]!;
  }

  /** What load() loads, as a request for loadTogether. */
  request(kind: ProbeKind, config: ProbeConfig, label: string, attachTarget?: AttachTarget, filter: CompiledFilter | null = null): LoadRequest {
    // A kind with slots loaded for one point: the point's slot with no optional arguments.
    const slotData = kind === 'tracepoint'
      ? encodeTracepointSlots([{ pointId: config.pointId, frees: false, skbArg: config.skbArg, reasonArg: -1, locationArg: -1, devArg: -1 }], TP_SLOTS)
      : undefined;
    return { kind, config, programs: [{ label, target: attachTarget }], filter, slotData };
  }


  /** The objects loadTracepoints loads for `points` (as few as the slots allow), as requests for loadTogether. */
  tracepointRequests(config: ProbeConfig, points: readonly TracepointLoad[], filter: CompiledFilter | null): LoadRequest[] {
    const out: LoadRequest[] = [];
    for (let at = 0; at < points.length; at += TP_SLOTS) {
      const chunk = points.slice(at, at + TP_SLOTS);
      out.push({
        kind: 'tracepoint', config, programs: chunk.map((p) => ({ label: p.label, target: p.target })), filter,
        slotData: encodeTracepointSlots(chunk.map((p) => p.slot), TP_SLOTS),
      });
    }
    return out;
  }

  /**
   * Loads tracepoint programs in as few objects as the slots allow. Where the
   * kernel refuses an object, each of its tracepoints is loaded in an object
   * of its own, so the refused one is named and the others still load.
   * `ahead`: what loadTogether made of tracepointRequests(), object by object.
   * Returns, per tracepoint, its instance or why it did not load.
   */
  loadTracepoints(config: ProbeConfig, points: readonly TracepointLoad[], filter: CompiledFilter | null,
    ahead: ReadonlyArray<ProbeInstance[] | null> = []): Array<ProbeInstance | Error> {
    const out: Array<ProbeInstance | Error> = [];
    const requests = this.tracepointRequests(config, points, filter);
    requests.forEach((request, i) => {
      const loaded = ahead[i];
      if (loaded) {
        out.push(...loaded);
        return;
      }
      try {
        out.push(...this.loadRequest(request));
      } catch (e) {
        if (request.programs.length === 1) {
          out.push(e as Error);
          return;
        }
        for (const p of points.slice(i * TP_SLOTS, (i + 1) * TP_SLOTS)) {
          try {
            out.push(...this.loadRequest(this.tracepointRequests(config, [p], filter)[0]!));
          } catch (e1) {
            out.push(e1 as Error);
          }
        }
      }
    });
    return out;
  }

  /** Loads of loadTogether still under way. */
  private readonly inFlight = new Set<Promise<unknown>>();

  /**
   * Loads several objects at once, each on a thread of libuv's pool: the
   * kernel verifies a program in the thread that loads it, so the objects
   * verify on as many cores as there are. Each is opened here and starts
   * loading at once, while the next is opened. Each loads quietly with the
   * build its kind is known to load with, else the first; where that fails
   * the answer is null, for the caller's own load to try the other builds
   * and quote the verifier. One promise per request; a null comes once every
   * load has ended and libbpf's messages (process-wide) are on again, so that
   * the load made on it at once has its log.
   */
  loadTogether(requests: readonly LoadRequest[]): Array<Promise<ProbeInstance[] | null>> {
    const loud = quiet();
    const loads = requests.map((r) => this.loadQuietly(r));
    const all = Promise.allSettled(loads).then(loud);
    this.inFlight.add(all);
    void all.then(() => this.inFlight.delete(all));
    return loads.map((load) => load.then((loaded) => loaded ?? all.then(() => null)));
  }

  /** Once every load of loadTogether has ended (before close()). */
  async settled(): Promise<void> {
    await Promise.all([...this.inFlight]);
  }

  private async loadQuietly(r: LoadRequest): Promise<ProbeInstance[] | null> {
    const { build, noTask } = this.chosen.get(r.kind) ??
      { build: nextFitting(PROBES[r.kind], 0, filterInsns(r.filter), this.directLoads), noTask: taskHelpersRefused(r.kind) !== null };
    let opened: ReturnType<ProbeSet['openBuild']>;
    try {
      opened = this.openBuild(r.kind, PROBES[r.kind][build]!, noTask ? { ...r.config, noTask } : r.config, r.programs, r.filter, r.slotData);
    } catch {
      return null;
    }
    try {
      await opened.object.loadAsync();
    } catch {
      opened.object.close();
      return null;
    }
    // Closed meanwhile (a caller that did not wait for settled()): the object is not the set's to keep.
    if (this.closed) {
      opened.object.close();
      return null;
    }
    if (!this.chosen.has(r.kind)) this.chosen.set(r.kind, { build, noTask });
    return this.adopt(opened.object, opened.programs);
  }

  /**
   * Loads one object with a program per entry of `programs` (more than one
   * only for kinds with slots; `slotData` fills the slot map). The kind's
   * builds are tried in order until one loads; when none does, the error is
   * the last build's (the one that asks least of the kernel).
   */
  loadRequest({ kind, config, programs, filter, slotData }: LoadRequest): ProbeInstance[] {
    const builds: readonly ProbeBuild[] = PROBES[kind];
    const known = this.chosen.get(kind);
    const insns = filterInsns(filter);
    const taskRefusal = known ? null : taskHelpersRefused(kind);
    let { build, noTask } = known ?? { build: nextFitting(builds, 0, insns, this.directLoads), noTask: taskRefusal !== null };
    const refusals: Error[] = taskRefusal ? [taskRefusal] : [];
    while (build < builds.length) {
      try {
        const spec = builds[build]!;
        const cfg = noTask ? { ...config, noTask } : config;
        // A refusal is loaded again with libbpf's messages on, for its error to quote them.
        const loaded = quietlyOrAgain(() => this.loadBuild(kind, spec, cfg, programs, filter, slotData));
        if (!known) {
          this.chosen.set(kind, { build, noTask });
          const lacks = [spec.lacks, noTask ? 'the current task (pid, comm)' : undefined].filter(Boolean);
          if (lacks.length > 0) {
            this.degraded.push(`${kind}: loaded without ${lacks.join(', nor ')}: ${[...new Set(refusals.map(describeRefusal))].join('; ')}`);
          }
        }
        return loaded;
      } catch (e) {
        refusals.push(e as Error);
        // Once a build loaded, a refusal is this instance's (its target, its filter), not the kernel's.
        if (known) break;
        if (!noTask && refusesTaskHelpers(e as Error)) noTask = true;
        else build = nextFitting(builds, build + 1, insns, this.directLoads);
      }
    }
    throw refusals[refusals.length - 1]!;
  }

  private loadBuild(kind: ProbeKind, spec: ProbeBuild, config: ProbeConfig, programs: readonly ProgramLoad[],
    filter: CompiledFilter | null, slotData: Buffer | undefined): ProbeInstance[] {
    const { object, programs: loaded } = this.openBuild(kind, spec, config, programs, filter, slotData);
    try {
      object.load();
    } catch (e) {
      object.close();
      throw e;
    }
    return this.adopt(object, loaded);
  }

  /** Opens a build and configures it for `programs`, ready to load. */
  private openBuild(kind: ProbeKind, spec: ProbeBuild, config: ProbeConfig, programs: readonly ProgramLoad[],
    filter: CompiledFilter | null, slotData: Buffer | undefined): { object: BpfObject; programs: BpfProgram[] } {
    const file = path.join(this.dir, spec.file);
    if (!fs.existsSync(file)) {
      throw new BpfError(`opening probe ${file}`, -2, [], 'run `npm run build` to build the probes');
    }
    const label = programs.length === 1 ? programs[0]!.label : `${programs.length} ${kind}s (${programs.map((p) => p.label).join(', ')})`;
    const object = BpfObject.open(file, label);
    try {
      const names = spec.slots
        ? Array.from({ length: spec.slots.count }, (_, i) => spec.program + i)
        : [spec.program];
      if (programs.length > names.length) throw new RangeError(`${programs.length} programs for ${names.length} in ${spec.file}`);
      const loaded = programs.map((_, i) => object.program(names[i]!));
      for (const unused of [...names.slice(programs.length), ...(spec.others ?? [])]) object.program(unused).setAutoload(false);
      const direct = spec.packetLoads === 'direct';
      object.rodata().setInitialValue(encodeConfig(direct ? { ...config, directLoads: true } : config));
      if (spec.slots && slotData) object.map(spec.slots.slotMap).setInitialValue(slotData);
      const shared = this.shared ?? (this.shared = this.createShared(object));
      for (const name of SHARED_MAPS) object.map(name).reuseFd(shared.fds[name]);
      programs.forEach((p, i) => {
        const program = loaded[i]!;
        if (TARGETED.has(kind)) {
          const t = p.target!;
          if (typeof t === 'string') program.setAttachTarget(t);
          else program.setAttachTarget(t.func, t.progFd);
        }
        if (filter || this.skbExpr || this.tunnel || this.skbMeta) {
          let insns = program.insns();
          if (filter) {
            insns = injectRegion(insns, FILTER_MAGIC.l2, direct ? filter.l2.direct : filter.l2.ebpf, `${p.label}: L2 filter`);
            insns = injectRegion(insns, FILTER_MAGIC.l3, direct ? filter.l3.direct : filter.l3.ebpf, `${p.label}: L3 filter`);
          }
          // Programs without an skb (XDP) have no region: they match nothing while the expression is set.
          if (this.skbExpr && findRegion(insns, SKB_EXPR_MAGIC) >= 0) {
            insns = injectRegion(insns, SKB_EXPR_MAGIC, this.skbExpr, `${p.label}: --filter-skb-expr`, SKB_EXPR_REGION_INSNS);
          }
          if (this.skbMeta && findRegion(insns, SKB_META_MAGIC) >= 0) {
            insns = injectRegion(insns, SKB_META_MAGIC, this.skbMeta, `${p.label}: --output-skb-metadata`, SKB_META_REGION_INSNS);
          }
          for (const side of ['l2', 'l3'] as const) {
            const code = this.tunnel?.[side];
            if (code && findRegion(insns, TUNNEL_MAGIC[side]) >= 0) {
              insns = injectRegion(insns, TUNNEL_MAGIC[side], code.ebpf, `${p.label}: --filter-tunnel-pcap-${side}`, TUNNEL_REGION_INSNS);
            }
          }
          program.setInsns(insns);
        }
        // libbpf 1.1 does not know the "netfilter" section: say what it is.
        if (kind === 'netfilter') program.setType(ProgType.NETFILTER, AttachType.NETFILTER);
      });
      return { object, programs: loaded };
    } catch (e) {
      object.close();
      throw e;
    }
  }

  /** A loaded object joins the set: its programs as instances. */
  private adopt(object: BpfObject, programs: BpfProgram[]): ProbeInstance[] {
    this.objects.push(object);
    return programs.map((program) => ({ object, program }));
  }

  /** The shared maps, made from `object`'s definitions (every probe has them: probes/include/maps.h). */
  private createShared(object: BpfObject): NonNullable<ProbeSet['shared']> {
    object.map('events').setMaxEntries(this.ringSize);
    if (!this.stacks) object.map('stacks').setMaxEntries(1);
    const fds: Partial<Record<SharedMap, Fd>> = {};
    try {
      for (const name of SHARED_MAPS) fds[name] = object.map(name).createLike();
    } catch (e) {
      for (const fd of Object.values(fds)) fd.close();
      throw e;
    }
    const all = fds as Record<SharedMap, Fd>;
    return {
      fds: all,
      maps: {
        events: new LoadedMap(all.events),
        lost: new PerCpuArray(all.lost),
        stacks: new StackTraceMap(all.stacks),
        trackedSkbs: new HashMap(all.tracked_skbs, 8),
        trackStats: new PerCpuArray(all.track_stats),
      },
    };
  }

  /** The shared maps; null until the first instance is loaded. */
  get maps(): ProbeMaps | null {
    return this.shared?.maps ?? null;
  }

  /** Unloads every instance (links must be closed first), and lets go of the shared maps. */
  close(): void {
    this.closed = true;
    for (const object of this.objects.splice(0).reverse()) object.close();
    for (const fd of Object.values(this.shared?.fds ?? {})) fd.close();
    this.shared = null;
  }
}

/** A configuration that loads a probe with every optional part off: what `pktpath doctor` tries. */
const PLAIN: ProbeConfig = {
  pointId: 0, stack: false, filter: false, skbArg: 0, netns: 0, ifindex: 0, mark: null, track: false, snaplen: 0,
};

/** The instructions a filter needs in a region: the larger of its two. */
const filterInsns = (filter: CompiledFilter | null) => (filter ? Math.max(filter.l2.ebpf.length, filter.l3.ebpf.length) : 0);

/** Kinds whose program type a kernel may refuse the current task's helpers (tc and netfilter on 6.12), and the capability that says. */
const TASK_HELPERS: Partial<Record<ProbeKind, Capability>> = { tc: 'task-helpers-tc', netfilter: 'task-helpers-netfilter' };

/** What the kernel said when the capability model tried the current task's helpers in this kind's program type; null where it allows them. */
function taskHelpersRefused(kind: ProbeKind): Error | null {
  const cap = TASK_HELPERS[kind];
  if (cap === undefined || has(cap)) return null;
  const { error, detail } = capability(cap);
  return error ?? new Error(detail);
}

/** The verifier refused the current task's helpers to this program type (where the capability model allowed them). */
function refusesTaskHelpers(e: Error): boolean {
  return e instanceof BpfError && e.logTail.some((l) => /(cannot use helper|unknown func) bpf_get_current_(comm|pid_tgid)/.test(l));
}

/** What `pktpath doctor` learns of one probe kind: whether a build loads, and what it does without. */
export interface ProbeLoadResult {
  error: Error | null;
  degraded: string | null;
}

/** Every kind but those loaded for another BPF program (there is none to load them for here). */
const LOADABLE_ALONE = (Object.keys(PROBES) as ProbeKind[]).filter((k) => !k.startsWith('prog-'));

/** Targets for the probes that are loaded for one: a function and a tracepoint every kernel with networking has. */
const DOCTOR_TARGETS: Partial<Record<ProbeKind, string>> = { tracepoint: 'netif_receive_skb', fentry: 'ip_rcv', 'nf-hook': 'nf_hook_slow' };

/**
 * Whether each of pktpath's own probes loads on this kernel (the verifier
 * accepts it, its helpers and kfuncs resolve), without attaching anything,
 * and which build did. `kinds`: those the kernel can attach at all.
 */
export function probeLoads(kinds: readonly ProbeKind[] = LOADABLE_ALONE): Record<string, ProbeLoadResult> {
  const out: Record<string, ProbeLoadResult> = {};
  for (const kind of kinds) {
    const set = new ProbeSet(1 << 16, undefined, false);
    try {
      set.load(kind, PLAIN, `pktpath's ${kind} probe`, DOCTOR_TARGETS[kind]);
      out[kind] = { error: null, degraded: set.degraded[0] ?? null };
    } catch (e) {
      out[kind] = { error: e as Error, degraded: null };
    } finally {
      set.close();
    }
  }
  return out;
}
