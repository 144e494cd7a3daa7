/**
 * pktpath's own probe objects (probes/*.bpf.c), instantiated per observation
 * point. A set is made with what every instance is loaded with: the
 * session's configuration and the code written into each (./probe-code.ts);
 * each load adds its point's own. Every instance shares the set's maps
 * (./probe-maps.ts), so that objects can load at once (loadTogether).
 */
import fs from 'node:fs';
import path from 'node:path';
import { AttachType, ProgType } from '../bpf/abi.js';
import { BpfError } from '../bpf/errors.js';
import { quiet, quietlyOrAgain, refusesHelper } from '../bpf/log.js';
import { BpfObject, type BpfProgram } from '../bpf/object.js';
import { type ProbeConfig, type TracepointSlot, encodeConfig, encodeTracepointSlots } from '../decode/probe-config.js';
import { type Capability, capability, has } from '../kernel/caps.js';
import { describeRefusal } from '../kernel/mechanisms.js';
import { type AttachTarget, PROBES, type ProbeBuild, type ProbeKind, TARGETED, TP_SLOTS, nextFitting, probesDir } from './builds.js';
import { NO_CODE, type ProbeCode, codeFlags, filterInsns, writeCode } from './probe-code.js';
import { type ProbeMaps, SharedMaps } from './probe-maps.js';
import { retvalSection } from '../output/sections/retval.js';

export type { ProbeMaps };

export interface ProbeInstance {
  object: BpfObject;
  program: BpfProgram;
}

/** What every instance of a set is configured with: the session's settings (the code's switches follow the code). */
export type SessionProbeConfig = Omit<ProbeConfig, 'pointId' | 'skbArg' | 'nfHooks' | 'noTask' | 'directLoads' | keyof ReturnType<typeof codeFlags>>;

/** One instance's own settings: its point, and where its skb is (functions), the hooks it reports (nf_hook_slow). */
export type PointConfig = Pick<ProbeConfig, 'pointId'> & Partial<Pick<ProbeConfig, 'skbArg' | 'nfHooks'>>;

export interface ProbeSetOptions {
  /** Ring buffer size in bytes (power of two). */
  ringSize: number;
  config: SessionProbeConfig;
  code: ProbeCode;
  /** Where the built objects are (default: probes/build). */
  dir?: string;
}

/** One program of an object: what it attaches to (BTF-typed kinds) and what names it in errors. */
export interface ProgramLoad {
  label: string;
  target?: AttachTarget;
}

/** One object to load: its kind, configuration, programs and (kinds with slots) slot data. */
export interface LoadRequest {
  kind: ProbeKind;
  config: ProbeConfig;
  programs: readonly ProgramLoad[];
  slotData?: Buffer;
}

/** A tracepoint for loadTracepoints(): its program's slot, name in errors and tracepoint. */
export interface TracepointLoad {
  slot: TracepointSlot;
  label: string;
  target: string;
}

/** The helpers that read the current task (pid, comm): some kernels refuse them to tc and netfilter programs. */
const TASK_HELPERS = ['bpf_get_current_pid_tgid', 'bpf_get_current_comm'];

/** Kinds whose program type a kernel may refuse the current task's helpers (tc and netfilter on 6.1 and 6.12), and the capability that says. */
const TASK_HELPER_CAPS: Partial<Record<ProbeKind, Capability>> = { tc: 'task-helpers-tc', netfilter: 'task-helpers-netfilter' };

/** What the kernel said when the capability model tried the current task's helpers in this kind's program type; null where it allows them. */
function taskHelpersRefused(kind: ProbeKind): Error | null {
  const cap = TASK_HELPER_CAPS[kind];
  if (cap === undefined || has(cap)) return null;
  const { error, detail } = capability(cap);
  return error ?? new Error(detail);
}

/** The verifier refused the current task's helpers to this program type (where the capability model allowed them). */
const refusesTaskHelpers = (e: Error) => e instanceof BpfError && refusesHelper(e.logTail, TASK_HELPERS);

export class ProbeSet {
  private readonly objects: BpfObject[] = [];
  private closed = false;
  /** Made from the first object opened, before it loads, so that objects can load at once. */
  private shared: SharedMaps | null = null;
  private readonly ringSize: number;
  private readonly dir: string;
  private readonly code: ProbeCode;
  /** What every instance is loaded with, but its point's own settings. */
  private readonly base: Omit<ProbeConfig, 'pointId' | 'skbArg'>;

  constructor({ ringSize, config, code, dir = probesDir() }: ProbeSetOptions) {
    this.ringSize = ringSize;
    this.dir = dir;
    this.code = code;
    this.base = { ...config, ...codeFlags(code) };
  }

  /** Whether builds that read packet bytes in place are worth a try on this kernel. */
  private readonly directLoads = has('direct-packet-loads');

  /** The build each kind loaded with (and whether without the task helpers), once one did. */
  private readonly chosen = new Map<ProbeKind, { build: number; noTask: boolean }>();
  /** What probes do without on this kernel, and why: one line per kind. */
  readonly degraded: string[] = [];

  /**
   * Loads one instance of a probe for a point; `attachTarget` names the
   * tracepoint or function for BTF-typed probes. The kind's builds are tried
   * in order until one loads; when none does, the error is the last build's
   * (the one that asks least of the kernel).
   */
  load(kind: ProbeKind, point: PointConfig, label: string, attachTarget?: AttachTarget): ProbeInstance {
    return this.loadRequest(this.request(kind, point, label, attachTarget))[0]!;
  }

  /** What load() loads, as a request for loadTogether. */
  request(kind: ProbeKind, point: PointConfig, label: string, attachTarget?: AttachTarget): LoadRequest {
    const config = this.config(point);
    // A kind with slots loaded for one point: the point's slot with no optional arguments.
    const slotData = kind === 'tracepoint'
      ? encodeTracepointSlots([{ pointId: config.pointId, frees: false, skbArg: config.skbArg, reasonArg: -1, locationArg: -1, devArg: -1 }], TP_SLOTS)
      : undefined;
    return { kind, config, programs: [{ label, target: attachTarget }], slotData };
  }

  /** The configuration of an instance for `point`. */
  private config(point: PointConfig): ProbeConfig {
    return { ...this.base, skbArg: 0, ...point };
  }

  /** The objects loadTracepoints loads for `points` (as few as the slots allow), as requests for loadTogether. */
  tracepointRequests(points: readonly TracepointLoad[]): LoadRequest[] {
    const out: LoadRequest[] = [];
    // The slots carry each program's point.
    const config = this.config({ pointId: 0 });
    for (let at = 0; at < points.length; at += TP_SLOTS) {
      const chunk = points.slice(at, at + TP_SLOTS);
      out.push({
        kind: 'tracepoint', config, programs: chunk.map((p) => ({ label: p.label, target: p.target })),
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
  loadTracepoints(points: readonly TracepointLoad[], ahead: ReadonlyArray<ProbeInstance[] | null> = []): Array<ProbeInstance | Error> {
    const out: Array<ProbeInstance | Error> = [];
    this.tracepointRequests(points).forEach((request, i) => {
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
            out.push(...this.loadRequest(this.tracepointRequests([p])[0]!));
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
      { build: nextFitting(PROBES[r.kind], 0, filterInsns(this.code), this.directLoads), noTask: taskHelpersRefused(r.kind) !== null };
    let opened: ReturnType<ProbeSet['openBuild']>;
    try {
      opened = this.openBuild(r.kind, PROBES[r.kind][build]!, noTask ? { ...r.config, noTask } : r.config, r.programs, r.slotData);
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
  loadRequest({ kind, config, programs, slotData }: LoadRequest): ProbeInstance[] {
    const builds: readonly ProbeBuild[] = PROBES[kind];
    const known = this.chosen.get(kind);
    const insns = filterInsns(this.code);
    const taskRefusal = known ? null : taskHelpersRefused(kind);
    let { build, noTask } = known ?? { build: nextFitting(builds, 0, insns, this.directLoads), noTask: taskRefusal !== null };
    const refusals: Error[] = taskRefusal ? [taskRefusal] : [];
    while (build < builds.length) {
      try {
        const spec = builds[build]!;
        const cfg = noTask ? { ...config, noTask } : config;
        // A refusal is loaded again with libbpf's messages on, for its error to quote them.
        const loaded = quietlyOrAgain(() => this.loadBuild(kind, spec, cfg, programs, slotData));
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
    slotData: Buffer | undefined): ProbeInstance[] {
    const { object, programs: loaded } = this.openBuild(kind, spec, config, programs, slotData);
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
    slotData: Buffer | undefined): { object: BpfObject; programs: BpfProgram[] } {
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
      (this.shared ??= SharedMaps.createFrom(object, this.ringSize, this.base.stack, ((this.base.sections ?? 0) & (1 << retvalSection.kind)) !== 0)).shareWith(object);
      programs.forEach((p, i) => {
        const program = loaded[i]!;
        if (TARGETED.has(kind)) {
          const t = p.target!;
          if (typeof t === 'string') program.setAttachTarget(t);
          else program.setAttachTarget(t.func, t.progFd);
        }
        if (!spec.unfiltered) writeCode(program, this.code, p.label, direct);
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

  /** The shared maps; null until the first instance is loaded. */
  get maps(): ProbeMaps | null {
    return this.shared?.maps ?? null;
  }

  /** Unloads every instance (links must be closed first), and lets go of the shared maps. */
  close(): void {
    this.closed = true;
    for (const object of this.objects.splice(0).reverse()) object.close();
    this.shared?.close();
    this.shared = null;
  }
}

/** A configuration that loads a probe with every optional part off: what `pktpath doctor` tries. */
const PLAIN: ProbeSetOptions = {
  ringSize: 1 << 16, code: NO_CODE, config: { stack: false, netns: 0, ifindex: 0, mark: null, track: false, snaplen: 0 },
};

/** What `pktpath doctor` learns of one probe kind: whether a build loads, and what it does without. */
export interface ProbeLoadResult {
  error: Error | null;
  degraded: string | null;
}

/** Every kind but those loaded for another BPF program (there is none to load them for here). */
const LOADABLE_ALONE = (Object.keys(PROBES) as ProbeKind[]).filter((k) => !k.startsWith('prog-'));

/** Targets for the probes that are loaded for one: a function and a tracepoint every kernel with networking has. */
const DOCTOR_TARGETS: Partial<Record<ProbeKind, string>> = { tracepoint: 'netif_receive_skb', route: 'fib_table_lookup', fentry: 'ip_rcv', fexit: 'ip_rcv', 'nf-hook': 'nf_hook_slow' };

/**
 * Whether each of pktpath's own probes loads on this kernel (the verifier
 * accepts it, its helpers and kfuncs resolve), without attaching anything,
 * and which build did. `kinds`: those the kernel can attach at all.
 */
export function probeLoads(kinds: readonly ProbeKind[] = LOADABLE_ALONE): Record<string, ProbeLoadResult> {
  const out: Record<string, ProbeLoadResult> = {};
  for (const kind of kinds) {
    const set = new ProbeSet(PLAIN);
    try {
      set.load(kind, { pointId: 0 }, `pktpath's ${kind} probe`, DOCTOR_TARGETS[kind]);
      out[kind] = { error: null, degraded: set.degraded[0] ?? null };
    } catch (e) {
      out[kind] = { error: e as Error, degraded: null };
    } finally {
      set.close();
    }
  }
  return out;
}
