/**
 * The tracepoints family: the plan's tracepoints, up to TP_SLOTS of them in
 * one object (each program told its point and arguments by its slot), each
 * linked on its own; with --filter-track-skb, also the tracepoints that free
 * skbs and that the plan does not observe (its `forgets`), linked only to
 * forget what is freed there: they report nothing.
 */
import { type Link, attachTracing, closeAll } from '../../bpf/link.js';
import { FREEING_POINTS } from '../../decode/points.js';
import type { TracepointAttachment } from '../attachments.js';
import type { LoadRequest, TracepointLoad } from '../probes.js';
import { type AttachFamily, type FamilyContext, type FamilyReport, type Landed } from './family.js';

/** The point id of internal programs: they write no record. */
const NO_POINT = 0xffffffff;

export class TracepointFamily implements AttachFamily {
  private readonly links: Link[] = [];
  /** The frees watched for --filter-track-skb: links that report nothing. */
  private readonly forgetLinks: Link[] = [];
  private loads: TracepointLoad[] = [];

  constructor(private readonly ctx: FamilyContext) {
  }

  plan(): LoadRequest[] {
    const { tracepoints, forgets } = this.ctx.plan;
    this.loads = [...tracepoints.map((tp) => this.load(tp, false)), ...forgets.map((tp) => this.load(tp, true))];
    return this.loads.length > 0 ? this.ctx.probes.tracepointRequests(this.loads) : [];
  }

  /** A tracepoint as a load, with its point; an internal one (`silent`) with none. */
  private load(tp: TracepointAttachment, silent: boolean): TracepointLoad {
    return {
      label: silent ? `tracepoint ${tp.name} (frees, for --filter-track-skb)` : `tracepoint ${tp.name}`,
      target: tp.name,
      slot: {
        pointId: silent ? NO_POINT : this.ctx.addPoint({ type: 'tracepoint', name: tp.name }), frees: FREEING_POINTS.has(tp.name), silent,
        skbArg: tp.skbArg, reasonArg: tp.reasonArg, locationArg: tp.locationArg, devArg: tp.devArg,
      },
    };
  }

  async attach(landed: Landed): Promise<boolean> {
    if (this.loads.length === 0) return true;
    if (!(await this.ctx.goOn())) return false;
    const ahead = await Promise.all(landed);
    if (!this.ctx.goingOn()) return false;
    const loaded = this.ctx.probes.loadTracepoints(this.loads, ahead);
    this.loads.forEach((load, i) => {
      this.ctx.attempt(load.label, () => {
        const inst = loaded[i]!;
        if (inst instanceof Error) throw inst;
        (load.slot.silent ? this.forgetLinks : this.links).push(attachTracing(inst.program, load.label));
      });
    });
    return true;
  }

  detach(): void {
    closeAll(this.links);
    closeAll(this.forgetLinks);
  }

  report(): FamilyReport {
    return {
      links: this.links.length + this.forgetLinks.length,
      line: { tracepoints: this.links.length, forgets: this.forgetLinks.length }
    };
  }
}
