/**
 * The BPF-program tracing family (--filter-trace-tc, --filter-trace-xdp):
 * the entry and exit of every other program at the traced hooks, each
 * traced once (../progs.ts). tc programs are found as the tc family reads
 * its hooks (found()), or, where it observes no tc (--attach none: BPF
 * programs only), on the devices of each traced namespace when the trace
 * starts and as devices appear, as XDP programs are.
 */
import type { ProgRef } from '../../kernel/datapath.js';
import type { NetlinkSocket } from '../../kernel/netlink.js';
import type { Netns } from '../../kernel/netns.js';
import type { LoadRequest } from '../probes.js';
import { ProgramObservers } from '../progs.js';
import type { TopologyListener } from '../topology.js';
import { type AttachFamily, type FamilyContext, type FamilyReport, netnsName } from './family.js';

export class ProgramFamily implements AttachFamily {
  private readonly observers: ProgramObservers | null;
  /** tc programs are found here, not by the tc family: it observes no tc hook. */
  private readonly ownTc: boolean;

  constructor(private readonly ctx: FamilyContext) {
    const hooks = ctx.plan.tracePrograms;
    this.observers = hooks.length === 0 ? null : new ProgramObservers({
      probes: ctx.probes, addPoint: (info) => ctx.addPoint(info),
      // One program refused among others: said, and never the reason nothing could be attached.
      attempt: (what, fn) => this.ctx.attempt(what, fn, true),
      helpers: ctx.plan.trackBpfHelpers === true,
    }, new Set(hooks));
    this.ownTc = hooks.includes('tc') && ctx.plan.template.tcDirections.length === 0;
  }

  /** Other programs' entries and exits are traced (their records carry verdicts). */
  get active(): boolean {
    return this.observers !== null;
  }

  /** For the tc family: the other programs of a hook, as it reads them; null when none are traced. */
  get found(): ((found: ProgRef[]) => void) | null {
    const o = this.observers;
    return o && !this.ownTc ? (found) => o.addAll(found, 'tc') : null;
  }

  /** Each traced program gets its trampolines when found. */
  plan(): LoadRequest[] {
    return [];
  }

  async attach(): Promise<boolean> {
    if (!this.observers?.hooks.has('xdp') && !this.ownTc) return true;
    // Programs found load probes of kinds not loaded yet: with no quiet load under way, so that a refusal quotes the verifier.
    await this.ctx.probes.settled();
    for (const { netns } of this.ctx.kernel.namespaces) {
      if (!(await this.ctx.goOn())) return false;
      this.ctx.attempt(`programs (netns ${netnsName(netns)})`, () => this.ctx.inNamespace(netns, (rtnl) => this.observers!.addDevices(rtnl, this.ownTc)));
    }
    return true;
  }

  readonly follow: Partial<TopologyListener> = {
    namespaceAdded: (netns, _ifaces, rtnl) => this.followDevices(netns, rtnl),
    deviceAdded: (netns, _iface, rtnl) => this.followDevices(netns, rtnl),
  };

  /** The programs of a namespace's devices (calling thread inside it). */
  private followDevices(netns: Netns, rtnl: NetlinkSocket): void {
    if (this.observers) this.ctx.attempt(`programs (netns ${netnsName(netns)})`, () => this.observers!.addDevices(rtnl, this.ownTc));
  }

  detach(): void {
    this.observers?.close();
  }

  report(): FamilyReport {
    return { links: this.observers?.linkCount ?? 0, line: { programs: this.observers?.count ?? 0 } };
  }
}
