/**
 * Observers on kernel functions taking an skb, with the backends the plan
 * orders: kprobe-multi (one program and one link per skb argument position,
 * for every function at once), kprobe (one program per position, a perf
 * event link per function) and fentry (one program per function, a BPF
 * trampoline). A function one backend refuses goes to the next; what none
 * takes is reported, not fatal. Every probe shares the session's filter,
 * sections and event layout: only the attachment and the way the skb
 * argument is fetched differ (probes/kprobe.bpf.c, probes/fentry.bpf.c).
 */
import { type Link, attachKprobe, attachKprobeMulti, attachTracing, closeAllParallel } from '../bpf/link.js';
import type { PointInfo } from '../decode/points.js';
import { vmlinuxBtf } from '../bpf/btf/vmlinux.js';
import { moduleBtf } from '../kernel/functions.js';
import { type FunctionReturn, type ReturnShape, functionReturn } from '../output/sections/retval.js';
import type { FunctionAttachment, FunctionBackend } from './attachments.js';
import type { ProbeSet } from './probes.js';

export interface FunctionObserverContext {
  probes: ProbeSet;
  /** Registers a point and returns its id. */
  addPoint(info: PointInfo): number;
  /** Lets signals in between batches; false once the session is stopping. */
  goOn(): Promise<boolean>;
  /** Attach progress: `done` of `total` functions with `backend` (or their exits). */
  progress(backend: FunctionBackend | 'fexit', done: number, total: number): void;
  /** --filter-kprobe-batch (default KPROBE_BATCH). */
  kprobeBatch?: number;
}

export interface FunctionAttachResult {
  /** Functions observed, by backend. */
  byBackend: Map<FunctionBackend, number>;
  /** Functions no backend could take, with the last refusal of each. */
  refused: Array<{ name: string; why: string }>;
  /** Milliseconds spent per backend (loading and attaching). */
  ms: Map<FunctionBackend, number>;
  /** The functions observed. */
  attached: FunctionAttachment[];
  /** The backend that took each function observed, by name. */
  backendOf: Map<string, FunctionBackend>;
}

/** How a function's return is observed (--output-retval). */
export type ReturnProbe = 'fexit' | 'kretprobe' | 'kretprobe-multi';

/**
 * fexit wherever the plan may use fentry (as before kprobes could); else
 * (--backend kprobe or kprobe-multi, or a kernel that refuses fentry) the
 * return probe of the backend that took the function's entry.
 */
export function returnProbe(entry: FunctionBackend, planned: readonly FunctionBackend[]): ReturnProbe {
  if (planned.includes('fentry') || entry === 'fentry') return 'fexit';
  return entry === 'kprobe-multi' ? 'kretprobe-multi' : 'kretprobe';
}

/** What attachReturns did: functions whose return is observed, by probe; those that return nothing; refusals. */
export interface ReturnAttachResult {
  byProbe: Map<ReturnProbe, number>;
  voids: number;
  refused: Array<{ name: string; why: string }>;
}

/** How many kprobes are made between two looks at the event loop (signals, progress), unless --filter-kprobe-batch says. */
export const KPROBE_BATCH = 64;

export class FunctionObservers {
  private readonly links: Link[] = [];
  /** How each function whose return is observed reads its value (--output-retval), by name. */
  readonly returns = new Map<string, ReturnShape>();

  constructor(private readonly ctx: FunctionObserverContext) {}

  get linkCount(): number {
    return this.links.length;
  }

  async attach(functions: FunctionAttachment[], backends: FunctionBackend[]): Promise<FunctionAttachResult> {
    const result: FunctionAttachResult = { byBackend: new Map(), refused: [], ms: new Map(), attached: [], backendOf: new Map() };
    let pending = functions;
    let why = new Map<string, string>();
    for (const backend of backends) {
      if (pending.length === 0) break;
      const t0 = performance.now();
      const failed = new Map<string, string>();
      const fail = (f: FunctionAttachment, e: unknown) => failed.set(f.name, (e as Error).message.split('\n')[0]!);
      if (backend === 'kprobe-multi') await this.kprobeMulti(pending, fail);
      else if (backend === 'kprobe') await this.kprobes(pending, fail);
      else await this.trampolines('fentry', pending.map((f) => ({ f, arg: f.skbArg })), fail);
      if (!(await this.ctx.goOn())) return result;
      result.byBackend.set(backend, pending.length - failed.size);
      result.ms.set(backend, performance.now() - t0);
      for (const f of pending) if (!failed.has(f.name)) result.backendOf.set(f.name, backend);
      pending = pending.filter((f) => failed.has(f.name));
      why = failed;
    }
    result.refused = pending.map((f) => ({ name: f.name, why: why.get(f.name) ?? 'no backend' }));
    const refused = new Set(pending.map((f) => f.name));
    result.attached = functions.filter((f) => !refused.has(f.name));
    return result;
  }

  /**
   * --output-retval: a return probe on each function (returnProbe: fexit,
   * kretprobe or kprobe-multi's), which sends the entry's record again with
   * the return value (probes/include/sections/retval.h). Functions that
   * return nothing (void) have none.
   */
  async attachReturns(r: Pick<FunctionAttachResult, 'attached' | 'backendOf'>, planned: readonly FunctionBackend[]): Promise<ReturnAttachResult> {
    const out: ReturnAttachResult = { byProbe: new Map(), voids: 0, refused: [] };
    const byProbe = new Map<ReturnProbe, Array<{ f: FunctionAttachment; ret: FunctionReturn }>>();
    for (const f of r.attached) {
      const btf = f.module ? moduleBtf(f.module) : vmlinuxBtf();
      const ret = btf ? functionReturn(btf, f.name) : null;
      if (ret === null) {
        out.voids++;
        continue;
      }
      const probe = returnProbe(r.backendOf.get(f.name) ?? 'fentry', planned);
      let list = byProbe.get(probe);
      if (!list) byProbe.set(probe, (list = []));
      list.push({ f, ret });
    }
    for (const [probe, list] of byProbe) {
      const failed = new Map<string, string>();
      const fail = (f: FunctionAttachment, e: unknown) => failed.set(f.name, (e as Error).message.split('\n')[0]!);
      if (probe === 'fexit') await this.trampolines('fexit', list.map(({ f, ret }) => ({ f, arg: ret.nargs })), fail);
      else await this.kretprobes(probe, list.map((x) => x.f), fail);
      for (const { f, ret } of list) if (!failed.has(f.name)) this.returns.set(f.name, ret.shape);
      out.byProbe.set(probe, list.length - failed.size);
      out.refused.push(...[...failed].map(([name, why]) => ({ name, why })));
      if (!(await this.ctx.goOn())) break;
    }
    return out;
  }

  /** One program for every function: its records name their function by the entry's address. */
  private async kretprobes(probe: 'kretprobe' | 'kretprobe-multi', functions: FunctionAttachment[], fail: (f: FunctionAttachment, e: unknown) => void): Promise<void> {
    let prog;
    try {
      const id = this.ctx.addPoint({ type: 'kretprobe', name: 'kretprobe', byAddress: true });
      prog = this.ctx.probes.load(probe, { pointId: id }, `${probe} observer (return values)`).program;
    } catch (e) {
      for (const f of functions) fail(f, e);
      return;
    }
    if (probe === 'kretprobe-multi') {
      this.attachHalving(functions, (set) => attachKprobeMulti(prog, set.map((f) => f.name), `kprobe-multi on the returns of ${set.length} functions`, true), fail);
      return;
    }
    let done = 0;
    for (const f of functions) {
      try {
        this.links.push(attachKprobe(prog, f.name, `kretprobe on ${f.name}`, true));
      } catch (e) {
        fail(f, e);
      }
      if (++done % (this.ctx.kprobeBatch ?? KPROBE_BATCH) === 0 && !(await this.ctx.goOn())) return;
    }
  }

  /**
   * One kprobe-multi link for a set. A link fails whole when one function
   * cannot be probed: the set is halved until the culprits are alone, so one
   * bad function costs a few tries, not the set.
   */
  private attachHalving(set: FunctionAttachment[], attach: (set: FunctionAttachment[]) => Link, fail: (f: FunctionAttachment, e: unknown) => void): void {
    try {
      this.links.push(attach(set));
    } catch (e) {
      if (set.length === 1) {
        fail(set[0]!, e);
        return;
      }
      const half = set.length >> 1;
      this.attachHalving(set.slice(0, half), attach, fail);
      this.attachHalving(set.slice(half), attach, fail);
    }
  }

  /** Detaching a kprobe waits for an RCU grace period: a thousand of them, one after another, take tens of seconds. */
  async close(): Promise<void> {
    await closeAllParallel(this.links);
  }

  private program(kind: 'kprobe' | 'kprobe-multi', skbArg: number) {
    const id = this.ctx.addPoint({ type: 'kprobe', name: 'kprobe', byAddress: true });
    const label = `${kind} observer (skb in argument ${skbArg + 1})`;
    return this.ctx.probes.load(kind, { pointId: id, skbArg }, label).program;
  }

  /** One link per skb position (attachHalving). */
  private async kprobeMulti(functions: FunctionAttachment[], fail: (f: FunctionAttachment, e: unknown) => void): Promise<void> {
    let done = 0;
    for (const [skbArg, group] of bySkbArg(functions)) {
      let prog;
      try {
        prog = this.program('kprobe-multi', skbArg);
      } catch (e) {
        for (const f of group) fail(f, e);
        continue;
      }
      this.attachHalving(group, (set) => attachKprobeMulti(prog, set.map((f) => f.name), `kprobe-multi on ${set.length} functions (skb in argument ${skbArg + 1})`), fail);
      done += group.length;
      this.ctx.progress('kprobe-multi', done, functions.length);
      if (!(await this.ctx.goOn())) return;
    }
  }

  private async kprobes(functions: FunctionAttachment[], fail: (f: FunctionAttachment, e: unknown) => void): Promise<void> {
    const programs = new Map<number, ReturnType<FunctionObservers['program']> | Error>();
    let done = 0;
    for (const f of functions) {
      let prog = programs.get(f.skbArg);
      if (prog === undefined) {
        try {
          prog = this.program('kprobe', f.skbArg);
        } catch (e) {
          prog = e as Error;
        }
        programs.set(f.skbArg, prog);
      }
      if (prog instanceof Error) {
        fail(f, prog);
      } else {
        try {
          this.links.push(attachKprobe(prog, f.name, `kprobe on ${f.name}`));
        } catch (e) {
          fail(f, e);
        }
      }
      if (++done % (this.ctx.kprobeBatch ?? KPROBE_BATCH) === 0) {
        this.ctx.progress('kprobe', done, functions.length);
        if (!(await this.ctx.goOn())) return;
      }
    }
    this.ctx.progress('kprobe', done, functions.length);
  }

  /**
   * A trampoline program per function, each loaded (verified) for its
   * target: told where its skb is (fentry) or its return value, after the
   * arguments (fexit).
   */
  private async trampolines(kind: 'fentry' | 'fexit', list: Array<{ f: FunctionAttachment; arg: number }>,
    fail: (f: FunctionAttachment, e: unknown) => void): Promise<void> {
    let done = 0;
    for (const { f, arg } of list) {
      try {
        const id = this.ctx.addPoint({ type: kind, name: f.name });
        const inst = this.ctx.probes.load(kind, { pointId: id, skbArg: arg }, `${kind} on ${f.name}`, f.name);
        this.links.push(attachTracing(inst.program, `${kind} on ${f.name}`));
      } catch (e) {
        fail(f, e);
      }
      if (++done % 16 === 0) {
        this.ctx.progress(kind, done, list.length);
        if (!(await this.ctx.goOn())) return;
      }
    }
    this.ctx.progress(kind, done, list.length);
  }
}

/** The status lines of an attach: what each backend took, and what none would. */
export function functionLines(r: FunctionAttachResult): { attached: string | null; refused: string | null } {
  const used = [...r.byBackend].filter(([, n]) => n > 0);
  const attached = used.length > 0 ? `functions: ${used.map(([b, n]) => `${n} with ${b} (${r.ms.get(b)!.toFixed(0)} ms)`).join(', ')}` : null;
  const n = r.refused.length;
  const refused = n > 0
    ? `${n} ${n === 1 ? 'function' : 'functions'} no backend would take (${r.refused.slice(0, 5).map((f) => f.name).join(', ')}` +
      `${n > 5 ? ', …' : ''}): ${r.refused[0]!.why}`
    : null;
  return { attached, refused };
}

function bySkbArg(functions: FunctionAttachment[]): Map<number, FunctionAttachment[]> {
  const out = new Map<number, FunctionAttachment[]>();
  for (const f of functions) {
    let list = out.get(f.skbArg);
    if (!list) out.set(f.skbArg, (list = []));
    list.push(f);
  }
  return out;
}
