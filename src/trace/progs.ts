/**
 * Observers of the other tc programs on the traced devices
 * (--filter-trace-tc): a trampoline at the entry (fentry) and one at the exit
 * (fexit) of each, loaded for it (probes/bpfprog.bpf.c). The exit's record
 * carries what the program returned, so its verdict is told, not inferred.
 * A program loaded without BTF cannot be a trampoline's target: it is
 * reported, not fatal.
 */
import { type Link, attachTracing, closeAll } from '../bpf/link.js';
import { c } from '../bpf/native.js';
import { traceTarget } from '../bpf/objects.js';
import type { ProbeConfig } from '../decode/config.js';
import type { PointInfo } from '../decode/points.js';
import type { CompiledFilter } from '../filter/expression.js';
import type { ProgRef } from '../kernel/datapath.js';
import type { ProbeSet } from './probes.js';

export interface ProgramObserverContext {
  probes: ProbeSet;
  filter: CompiledFilter | null;
  addPoint(info: PointInfo): number;
  config(pointId: number, extra: Partial<ProbeConfig>): ProbeConfig;
  /** Runs fn; a failure is reported as not observed. */
  attempt(what: string, fn: () => void): unknown;
}

/** The name of a traced program's points: `bpf:cni_redirect` (entry) and `bpf:cni_redirect:exit`. */
export const programPointName = (p: Pick<ProgRef, 'name' | 'id'>, exit: boolean) => `bpf:${p.name || `prog${p.id}`}${exit ? ':exit' : ''}`;

export class ProgramObservers {
  private readonly links: Link[] = [];
  private readonly traced = new Set<number>();
  /** Programs that could not be traced: said once, not tried again at every look at their hook. */
  private readonly refused = new Set<number>();

  constructor(private readonly ctx: ProgramObserverContext) {}

  get count(): number {
    return this.traced.size;
  }

  get linkCount(): number {
    return this.links.length;
  }

  /** Traces the programs found at a hook (each once, however many hooks it is at). */
  addAll(found: readonly ProgRef[]): void {
    for (const p of found) {
      if (this.traced.has(p.id) || this.refused.has(p.id)) continue;
      if (this.ctx.attempt(`tracing ${p.name || 'prog'}#${p.id}`, () => this.add(p))) this.refused.add(p.id);
    }
  }

  /** Traces one program; throws with why it cannot. */
  private add(p: ProgRef): void {
    const target = traceTarget(p.id);
    if (typeof target === 'string') throw new Error(target);
    const made: Link[] = [];
    try {
      for (const exit of [false, true]) {
        const name = programPointName(p, exit);
        const id = this.ctx.addPoint({ type: exit ? 'fexit' : 'fentry', name, program: exit ? { id: p.id, name: p.name } : undefined });
        const label = `${exit ? 'fexit' : 'fentry'} on ${p.name}#${p.id} (${target.func})`;
        const inst = this.ctx.probes.load(exit ? 'prog-exit' : 'prog-entry', this.ctx.config(id, {}), label,
          { progFd: target.fd, func: target.func }, this.ctx.filter);
        made.push(attachTracing(inst.program, label));
      }
      this.links.push(...made);
      this.traced.add(p.id);
    } catch (e) {
      closeAll(made);
      throw e;
    } finally {
      // The trampolines hold the program now.
      c.close(target.fd);
    }
  }

  close(): void {
    closeAll(this.links);
    this.traced.clear();
  }
}
