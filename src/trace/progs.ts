/**
 * Observers of the other programs on the traced devices: tc programs
 * (--filter-trace-tc, found at each hook pktpath's tc observers watch, or on
 * each device where pktpath observes no tc: --attach none) and
 * XDP programs (--filter-trace-xdp, found on each traced device). A
 * trampoline runs at the entry (fentry) and one at the exit (fexit) of each,
 * loaded for it (probes/bpfprog.bpf.c); the exit's record carries what the
 * program returned, so its verdict is told, not inferred. A program loaded
 * without BTF cannot be a trampoline's target: it is reported, not fatal.
 * With --filter-track-bpf-helpers, the kernel functions each program's helper
 * calls land in are traced too, each once for every program (their records
 * are of the packet the calling program runs on: probes/include/prog_run.h).
 */
import { type Link, attachTracing, closeAll } from '../bpf/link.js';
import { traceTarget } from '../bpf/loaded.js';
import type { PointInfo } from '../decode/points.js';
import { type ProgRef, ProgramBook, foreignAt, tcHooks } from '../kernel/datapath.js';
import type { NetlinkSocket } from '../kernel/netlink.js';
import { listDevices } from '../kernel/rtnl.js';
import { vmlinuxBtf } from '../bpf/btf/vmlinux.js';
import { Kallsyms } from '../kernel/kallsyms.js';
import { programHelperCalls } from '../kernel/helpers.js';
import type { ProgramHook } from './attachments.js';
import type { ProbeSet } from './probes.js';


export interface ProgramObserverContext {
  probes: ProbeSet;
  addPoint(info: PointInfo): number;
  /** Runs fn; a failure is reported as not observed. */
  attempt(what: string, fn: () => void): unknown;
  /** --filter-track-bpf-helpers: trace the programs' helper calls too. */
  helpers?: boolean;
}

/** The name of a traced program's points: `bpf:cni_redirect` (entry) and `bpf:cni_redirect:exit`. */
export const programPointName = (p: Pick<ProgRef, 'name' | 'id'>, exit: boolean) => `bpf:${p.name || `prog${p.id}`}${exit ? ':exit' : ''}`;

const PROBE_KIND = {
  tc: { entry: 'prog-entry', exit: 'prog-exit' },
  xdp: { entry: 'prog-xdp-entry', exit: 'prog-xdp-exit' },
} as const;

export class ProgramObservers {
  private readonly links: Link[] = [];
  private readonly traced = new Set<number>();
  /** Programs that could not be traced: said once, not tried again at every look at their hook. */
  private readonly refused = new Set<number>();
  private readonly book = new ProgramBook();
  /** Helper functions traced, or refused (said once): by kernel function. */
  private readonly helpers = new Set<string>();
  private symbols: Kallsyms | null = null;

  constructor(private readonly ctx: ProgramObserverContext, readonly hooks: ReadonlySet<ProgramHook>) {}

  get count(): number {
    return this.traced.size;
  }

  get linkCount(): number {
    return this.links.length;
  }

  /** Traces the programs found at a hook (each once, however many hooks it is at). */
  addAll(found: readonly ProgRef[], hook: ProgramHook): void {
    if (!this.hooks.has(hook)) return;
    for (const p of found) {
      if (p.own || this.traced.has(p.id) || this.refused.has(p.id)) continue;
      if (this.ctx.attempt(`tracing ${hook} program ${p.name || 'prog'}#${p.id}`, () => this.add(p, hook))) this.refused.add(p.id);
    }
  }

  /**
   * The programs of the devices of a namespace (`rtnl`: a route socket of
   * it): XDP, and tc where `tc` (no tc observer of pktpath reads the hooks).
   */
  addDevices(rtnl: NetlinkSocket, tc: boolean): void {
    const devices = listDevices(rtnl);
    if (this.hooks.has('xdp')) this.addAll(devices.flatMap((d) => (d.xdp ? [this.book.ref(d.xdp.progId)] : [])), 'xdp');
    if (!tc || !this.hooks.has('tc')) return;
    for (const d of devices) {
      const hooks = tcHooks(this.book, rtnl, d.ifindex);
      this.addAll([...foreignAt(hooks.ingress), ...foreignAt(hooks.egress)], 'tc');
    }
  }

  /** Traces one program; throws with why it cannot. */
  private add(p: ProgRef, hook: ProgramHook): void {
    const target = traceTarget(p.id);
    if (typeof target === 'string') throw new Error(target);
    const made: Link[] = [];
    try {
      for (const exit of [false, true]) {
        const name = programPointName(p, exit);
        const id = this.ctx.addPoint({ type: exit ? 'fexit' : 'fentry', name, program: exit ? { id: p.id, name: p.name, hook } : undefined });
        const label = `${exit ? 'fexit' : 'fentry'} on ${hook} program ${p.name}#${p.id} (${target.func})`;
        const inst = this.ctx.probes.load(PROBE_KIND[hook][exit ? 'exit' : 'entry'], { pointId: id }, label,
          { progFd: target.fd, func: target.func });
        made.push(attachTracing(inst.program, label));
      }
      this.links.push(...made);
      this.traced.add(p.id);
      if (this.ctx.helpers) this.ctx.attempt(`helper calls of ${hook} program ${p.name || 'prog'}#${p.id}`, () => this.addHelpers(p.id));
    } catch (e) {
      closeAll(made);
      throw e;
    } finally {
      // The trampolines hold the program now.
      target.fd.close();
    }
  }

  /** The helper functions program `id` calls that are not traced yet (each attempt its own: one refused function is said, the others go on). */
  private addHelpers(id: number): void {
    const btf = vmlinuxBtf();
    if (!btf) throw new Error('the kernel has no BTF (/sys/kernel/btf/vmlinux)');
    // Read now: the symbols of the session are read in the background, without an index by name.
    this.symbols ??= Kallsyms.load();
    for (const call of programHelperCalls(id, this.symbols, btf) ?? []) {
      if (this.helpers.has(call.func)) continue;
      this.helpers.add(call.func);
      this.ctx.attempt(`helper function ${call.func}`, () => {
        const exit = call.kind === 'map-lookup' || call.kind === 'htab-lookup';
        const pointId = this.ctx.addPoint({ type: exit ? 'fexit' : 'fentry', name: call.func });
        const label = `${exit ? 'fexit' : 'fentry'} on helper function ${call.func}`;
        const inst = this.ctx.probes.load(call.kind, { pointId }, label, call.func);
        this.links.push(attachTracing(inst.program, label));
      });
    }
  }

  close(): void {
    closeAll(this.links);
    this.traced.clear();
    this.helpers.clear();
  }
}
