/**
 * The kernel-functions family: the plan's functions taking an skb, backend
 * by backend in the plan's order (kprobe-multi, kprobe, fentry where the
 * kernel has them: ../functions.ts); a function one backend refuses goes to
 * the next, and what none takes is reported, not fatal.
 */
import { FunctionObservers, functionLines } from '../functions.js';
import type { LoadRequest } from '../probes.js';
import type { FunctionAttachment } from '../attachments.js';
import { type ReturnShape, retvalSection } from '../../output/sections/retval.js';

const NO_RETURNS: ReadonlyMap<string, ReturnShape> = new Map();
import { type AttachFamily, type FamilyContext, type FamilyReport } from './family.js';

/** From how many functions a terminal is shown the progress of each backend. */
const PROGRESS_FROM = 256;

export class FunctionFamily implements AttachFamily {
  private observers: FunctionObservers | null = null;
  private functions = 0;
  /** The functions observed (with fentry when the plan's window asks for it). */
  attached: readonly FunctionAttachment[] = [];

  constructor(private readonly ctx: FamilyContext) {
  }

  /** Each program is loaded for its backend and skb position as its turn comes. */
  plan(): LoadRequest[] {
    return [];
  }

  async attach(): Promise<boolean> {
    const { plan, probes } = this.ctx;
    if (plan.functions.length === 0) return true;
    // Their loads quote the verifier when refused: with no quiet load under way.
    await probes.settled();
    if (!(await this.ctx.goOn())) return false;
    const tty = process.stderr.isTTY;
    const fn = (this.observers = new FunctionObservers({
      probes,
      addPoint: (info) => this.ctx.addPoint(info),
      goOn: () => this.ctx.goOn(),
      kprobeBatch: plan.kprobeBatch,
      progress: (backend, done, total) => {
        if (tty && total >= PROGRESS_FROM) process.stderr.write(`\rpktpath: attaching ${backend}: ${done}/${total} functions${done === total ? '\n' : ''}`);
      },
    }));
    const r = await fn.attach(plan.functions, plan.functionBackends);
    this.functions = [...r.byBackend.values()].reduce((a, n) => a + n, 0);
    this.attached = r.attached;
    const { attached, refused } = functionLines(r);
    if (attached) this.ctx.status(`pktpath: ${attached}`);
    if (refused) this.ctx.notObserved(refused);
    if ((this.ctx.opts.sections ?? 0) & (1 << retvalSection.kind)) {
      const t0 = performance.now();
      const ret = await fn.attachReturns(r, plan.functionBackends);
      const used = [...ret.byProbe].filter(([, n]) => n > 0).map(([p, n]) => `${n} functions with ${p}`);
      this.ctx.status(`pktpath: return values: ${used.join(', ') || 'no function'} (${(performance.now() - t0).toFixed(0)} ms)` +
        (ret.voids > 0 ? `, ${ret.voids} return nothing (void)` : ''));
      if (ret.refused.length > 0) {
        this.ctx.notObserved(`return values: ${ret.refused.length} functions refused a return probe (${ret.refused.slice(0, 5).map((f) => f.name).join(', ')}` +
          `${ret.refused.length > 5 ? ', …' : ''}): ${ret.refused[0]!.why}`);
      }
    }
    return this.ctx.goingOn();
  }

  async detach(): Promise<void> {
    await this.observers?.close();
  }

  /** How each function whose return is observed reads its value, by name. */
  get returns(): ReadonlyMap<string, ReturnShape> {
    return this.observers?.returns ?? NO_RETURNS;
  }

  report(): FamilyReport {
    return { links: this.observers?.linkCount ?? 0, line: { functions: this.functions } };
  }
}
