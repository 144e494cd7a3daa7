/**
 * The route and neighbour decisions family (--output-route, --output-neigh):
 * the fib and neigh tracepoints the plan names, one program each in one
 * object (probes/route.bpf.c), each told its point and its tracepoint by its slot.
 */
import { type Link, attachTracing, closeAll } from '../../bpf/link.js';
import { encodeRouteSlots } from '../../decode/probe-config.js';
import { ROUTE_SLOTS } from '../builds.js';
import type { LoadRequest } from '../probes.js';
import { type AttachFamily, type FamilyContext, type FamilyReport, type Landed } from './family.js';

export class DecisionFamily implements AttachFamily {
  private readonly links: Link[] = [];
  private request: LoadRequest | null = null;

  constructor(private readonly ctx: FamilyContext) {
  }

  plan(): LoadRequest[] {
    const points = this.ctx.plan.decisions;
    if (points.length === 0) return [];
    const slots = points.map((d) => ({ pointId: this.ctx.addPoint({ type: 'tracepoint', name: d.name, flow: true }), kind: d.kind }));
    this.request = {
      kind: 'route',
      config: this.ctx.probes.request('route', { pointId: 0 }, 'route').config,
      programs: points.map((d) => ({ label: `tracepoint ${d.name}`, target: d.tracepoint })),
      slotData: encodeRouteSlots(slots, ROUTE_SLOTS),
    };
    return [this.request];
  }

  async attach(landed: Landed): Promise<boolean> {
    const request = this.request;
    if (request === null) return true;
    if (!(await this.ctx.goOn())) return false;
    const [ahead] = await Promise.all(landed);
    if (!this.ctx.goingOn()) return false;
    const label = `route and neighbour tracepoints (${request.programs.map((p) => p.label.replace(/^tracepoint /, '')).join(', ')})`;
    this.ctx.attempt(label, () => {
      const loaded = ahead ?? this.ctx.probes.loadRequest(request);
      loaded.forEach((inst, i) => this.links.push(attachTracing(inst.program, request.programs[i]!.label)));
    });
    return true;
  }

  detach(): void {
    closeAll(this.links);
  }

  report(): FamilyReport {
    return { links: this.links.length, line: {} };
  }
}
