/**
 * The netfilter family: BPF netfilter links at the plan's hooks of each
 * namespace, from one observer program before NAT and, where the plan asks
 * for it (--output-ct), one after (../netfilter.ts holds the links); where
 * the kernel has no netfilter links, one fexit program on nf_hook_slow for
 * every namespace at once, told which hooks to report.
 */
import { type Link, type LoadedProgram, NfHook, attachTracing } from '../../bpf/link.js';
import { nfHookMask } from '../../decode/probe-config.js';
import type { PointInfo } from '../../decode/points.js';
import { type Netns, withNetns } from '../../kernel/netns.js';
import type { AttachPlan, NfAttachment } from '../attachments.js';
import { NfObservers, nfWhere } from '../netfilter.js';
import type { LoadRequest } from '../probes.js';
import type { TopologyListener } from '../topology.js';
import { type AttachFamily, type FamilyContext, type FamilyReport, type Landed } from './family.js';

export class NetfilterFamily implements AttachFamily {
  private readonly programs: { beforeNat: LoadedProgram | null; afterNat: LoadedProgram | null } = { beforeNat: null, afterNat: null };
  /** The links at each namespace's hooks. */
  readonly hooks = new NfObservers(this.programs);
  /** Without netfilter links: the fexit of nf_hook_slow. */
  private hookFunction: Link | null = null;
  private planned: { beforeNat: LoadRequest | null; afterNat: LoadRequest | null } = { beforeNat: null, afterNat: null };

  constructor(private readonly ctx: FamilyContext) {
  }

  plan(): LoadRequest[] {
    const nf = this.ctx.plan.template.netfilter;
    this.planned = {
      beforeNat: nf.some((h) => !h.afterNat) ? this.request({ type: 'netfilter', name: 'netfilter' }) : null,
      afterNat: nf.some((h) => h.afterNat) ? this.request({ type: 'netfilter', name: 'netfilter:nat', suffix: ':nat' }) : null,
    };
    return [this.planned.beforeNat, this.planned.afterNat].filter((r): r is LoadRequest => r !== null);
  }

  private request(point: PointInfo): LoadRequest {
    return this.ctx.probes.request('netfilter', { pointId: this.ctx.addPoint(point) }, `${point.name} observer`);
  }

  async attach(landed: Landed): Promise<boolean> {
    const { plan, probes } = this.ctx;
    // One observer instance before NAT, and where the plan asks for it one after NAT, each linked at its hooks.
    let at = 0;
    for (const [side, what] of [['beforeNat', 'netfilter'], ['afterNat', 'netfilter:nat']] as const) {
      const request = this.planned[side];
      if (!request) continue;
      const loaded = await landed[at++]!;
      if (!this.ctx.goingOn()) return false;
      this.ctx.attempt(what, () => (this.programs[side] = (loaded ?? probes.loadRequest(request))[0]!.program));
    }
    // Each namespace entered once for all its hooks: 1100 links at 110 pods.
    const byNamespace = new Map<number, NfAttachment[]>();
    for (const n of plan.netfilter) byNamespace.set(n.netns.inode, [...(byNamespace.get(n.netns.inode) ?? []), n]);
    for (const hooks of byNamespace.values()) {
      if (!(await this.ctx.goOn())) return false;
      this.addIn(hooks[0]!.netns, hooks);
    }
    if (plan.nfHookFunction) this.ctx.attempt('netfilter (fexit of nf_hook_slow)', () => this.attachHookFunction(plan.nfHookFunction!.hooks));
    return true;
  }

  /** The observers at `hooks`, all in `netns`: each one that fails is said, and a namespace gone fails them all. */
  private addIn(netns: Netns, hooks: NfAttachment[]): void {
    try {
      withNetns(netns.path, () => {
        for (const n of hooks) this.ctx.attempt(nfWhere(n), () => this.hooks.add(n));
      });
    } catch (e) {
      for (const n of hooks) this.ctx.attempt(nfWhere(n), () => { throw e; });
    }
  }

  /** Netfilter without netfilter links: one fexit program on nf_hook_slow for every namespace, told which hooks to report. */
  private attachHookFunction(hooks: NonNullable<AttachPlan['nfHookFunction']>['hooks']): void {
    const id = this.ctx.addPoint({ type: 'netfilter', name: 'netfilter' });
    const nfHooks = nfHookMask(hooks.map((h) => ({ ipv6: h.family === 'ipv6', hook: NfHook[h.hook] })));
    const inst = this.ctx.probes.load('nf-hook', { pointId: id, nfHooks }, 'netfilter observer (fexit of nf_hook_slow)', 'nf_hook_slow');
    this.hookFunction = attachTracing(inst.program, 'fexit of nf_hook_slow');
  }

  readonly follow: Partial<TopologyListener> = {
    namespaceAdded: (netns) => this.addIn(netns, this.ctx.plan.template.netfilter.map((h) => ({ ...h, netns }))),
    namespaceRemoved: (netns) => this.hooks.remove(netns.inode),
  };

  async detach(): Promise<void> {
    this.hookFunction?.close();
    this.hookFunction = null;
    await this.hooks.closeAll();
  }

  report(): FamilyReport {
    return {
      links: this.hooks.linkCount + (this.hookFunction ? 1 : 0),
      line: { nfNamespaces: this.hooks.namespaceCount, nfHookFunction: this.hookFunction !== null, nfMoved: this.hooks.moved }
    };
  }
}
