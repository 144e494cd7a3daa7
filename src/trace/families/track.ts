/**
 * Trampolines that widen what is followed, where the kernel allows fentry
 * and fexit (probes/track.bpf.c): the exits of the functions that make
 * clones and copies (--filter-track-skb follows what they made from a
 * followed skb), the functions without an skb (--filter-non-skb-funcs), and
 * the exits of the skb functions observed with fentry, which close their
 * CPU's window. Each refusal is said; none stops the trace.
 */
import { type Link, attachTracing, closeAllParallel } from '../../bpf/link.js';
import { vmlinuxBtf } from '../../bpf/btf/vmlinux.js';
import { functionReturn } from '../../output/sections/retval.js';
import type { FunctionAttachment } from '../attachments.js';
import type { ProbeKind } from '../builds.js';
import type { LoadRequest } from '../probes.js';
import type { AttachFamily, FamilyContext, FamilyReport } from './family.js';

export class TrackFamily implements AttachFamily {
  private readonly links: Link[] = [];
  private readonly refused: Array<{ what: string; why: string }> = [];

  /** `windowed`: the skb functions observed with fentry, once the functions family attached them. */
  constructor(private readonly ctx: FamilyContext, private readonly windowed: () => readonly FunctionAttachment[]) {}

  plan(): LoadRequest[] {
    return [];
  }

  async attach(): Promise<boolean> {
    const copies = this.ctx.plan.copies ?? [];
    const nonSkb = this.ctx.plan.nonSkbFuncs ?? [];
    if (copies.length === 0 && nonSkb.length === 0) return true;
    await this.ctx.probes.settled();
    const btf = vmlinuxBtf();
    // The exit's CONFIG.skb_arg is where the return value is: after the arguments.
    const made = copies.filter((name) => {
      const ret = btf ? functionReturn(btf, name) : null;
      return ret !== null && this.trampoline('copy-exit', name, ret.nargs, 0);
    });
    if (made.length > 0) this.ctx.status(`pktpath: --filter-track-skb: clones and copies followed at the exit of ${made.join(', ')}`);
    if (nonSkb.length > 0) {
      const functions = this.windowed();
      let closed = 0;
      for (const f of functions) {
        if (this.trampoline('window-exit', f.name, f.skbArg, 0)) closed++;
        if (closed % 16 === 0 && !(await this.ctx.goOn())) return false;
      }
      const under = nonSkb.filter((name) => this.trampoline('under', name, 0, this.ctx.addPoint({ type: 'fentry', name })));
      this.ctx.status(`pktpath: --filter-non-skb-funcs: ${under.length} functions without an skb (${under.join(', ')}), ` +
        `reported in the window of ${closed} skb functions`);
    }
    if (this.refused.length > 0) {
      const r = this.refused;
      this.ctx.notObserved(`${r.length} trampolines refused (${r.slice(0, 5).map((x) => x.what).join(', ')}${r.length > 5 ? ', …' : ''}): ${r[0]!.why}`);
    }
    return this.ctx.goingOn();
  }

  /** One program for `name`, attached; false (and said at the end) when refused. */
  private trampoline(kind: ProbeKind, name: string, skbArg: number, pointId: number): boolean {
    const what = `${kind} on ${name}`;
    try {
      const inst = this.ctx.probes.load(kind, { pointId, skbArg }, what, name);
      this.links.push(attachTracing(inst.program, what));
      return true;
    } catch (e) {
      this.refused.push({ what, why: (e as Error).message.split('\n')[0]! });
      return false;
    }
  }

  async detach(): Promise<void> {
    await closeAllParallel(this.links);
  }

  report(): FamilyReport {
    return { links: this.links.length, line: {} };
  }
}
