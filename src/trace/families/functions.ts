/**
 * The kernel-functions family: the plan's functions taking an skb, backend
 * by backend in the plan's order (kprobe-multi, kprobe, fentry where the
 * kernel has them: ../functions.ts); a function one backend refuses goes to
 * the next, and what none takes is reported, not fatal.
 */
import { FunctionObservers, functionLines } from '../functions.js';
import type { LoadRequest } from '../probes.js';
import { type AttachFamily, type FamilyContext, type FamilyReport } from './family.js';

/** From how many functions a terminal is shown the progress of each backend. */
const PROGRESS_FROM = 256;

export class FunctionFamily implements AttachFamily {
  private observers: FunctionObservers | null = null;
  private functions = 0;

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
    const { attached, refused } = functionLines(r);
    if (attached) this.ctx.status(`pktpath: ${attached}`);
    if (refused) this.ctx.notObserved(refused);
    return this.ctx.goingOn();
  }

  async detach(): Promise<void> {
    await this.observers?.close();
  }

  report(): FamilyReport {
    return { links: this.observers?.linkCount ?? 0, line: { functions: this.functions } };
  }
}
