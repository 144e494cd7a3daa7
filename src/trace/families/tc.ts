/**
 * The tc family: pktpath's observer last in each traced chain of each
 * device (a tcx link, or a cls_bpf filter on a clsact qdisc where the kernel
 * has no tcx: ../clsact.ts), and first too where other programs run there
 * (../tc.ts holds the hooks). Devices and namespaces that appear get theirs;
 * chains that change are read again.
 */
import { progIdOfFd, tcxChainLength } from '../../bpf/loaded.js';
import type { ProgRef } from '../../kernel/datapath.js';
import type { NetlinkSocket } from '../../kernel/netlink.js';
import type { Iface, Netns } from '../../kernel/netns.js';
import { clsactAttacher } from '../clsact.js';
import type { LoadRequest, ProbeInstance } from '../probes.js';
import { TcObservers, attachLastTcx } from '../tc.js';
import type { TopologyListener } from '../topology.js';
import { type AttachFamily, type FamilyContext, type FamilyReport, type Landed, netnsName } from './family.js';

/** `tc on eth0 (netns pod-a)`, `tc ingress on eth0 (netns pod-a)` with a direction. */
export const tcWhere = (netns: Netns, iface: Iface, direction?: string) =>
  `tc${direction ? ` ${direction}` : ''} on ${iface.name} (netns ${netnsName(netns)})`;

export class TcFamily implements AttachFamily {
  private observers: TcObservers | null = null;
  private last: LoadRequest | null = null;
  /** Devices without observers (--tc-devices programs), by namespace inode and ifindex: observed once another tc program runs there. */
  private readonly aside = new Map<number, Map<number, Iface>>();

  /** `foundPrograms`: told the other programs of each hook as they are read (--filter-trace-tc traces them). */
  constructor(private readonly ctx: FamilyContext, private readonly foundPrograms: ((found: ProgRef[]) => void) | null) {
  }

  /** The hooks, once the observer loaded: their other programs, for the verdict stage. */
  get hooks(): TcObservers | null {
    return this.observers;
  }

  plan(): LoadRequest[] {
    if (this.ctx.plan.template.tcDirections.length === 0) return [];
    this.last = this.request('last');
    return [this.last];
  }

  /** The observer instance to load: `last` in every traced chain, `first` where other programs run. */
  private request(position: 'first' | 'last'): LoadRequest {
    const id = this.ctx.addPoint({ type: 'tc', name: 'tc', position });
    return this.ctx.probes.request('tc', { pointId: id }, `tc observer (${position} in the chain)`);
  }

  /** The observer as loaded ahead (`loaded`), else loaded now, with its refusal said; and its program's id. */
  private program(request: LoadRequest, loaded: ProbeInstance[] | null): ProbeInstance['program'] & { id: number } {
    const { program } = (loaded ?? this.ctx.probes.loadRequest(request))[0]!;
    return Object.assign(program, { id: progIdOfFd(program.fd) });
  }

  async attach(landed: Landed): Promise<boolean> {
    const { plan, kernel, status } = this.ctx;
    if (!this.last) return true;
    // Other programs found load probes of kinds not loaded yet: with no quiet load under way, so that a refusal quotes the verifier.
    if (this.foundPrograms) await this.ctx.probes.settled();
    const loaded = await landed[0]!;
    if (!this.ctx.goingOn()) return false;
    this.ctx.attempt('tc', () => {
      const last = this.program(this.last!, loaded);
      const attach = plan.tcMode === 'clsact' ? clsactAttacher(kernel.namespaces.map((n) => n.netns), status) : attachLastTcx;
      this.observers = new TcObservers({ last, first: () => this.program(this.request('first'), null) }, plan.template.tcDirections,
        status, attach, this.foundPrograms ?? undefined);
    });
    const byDevice = new Map<string, { netns: Netns; iface: Iface }>();
    for (const t of plan.tc) byDevice.set(`${t.netns.inode}:${t.iface.ifindex}`, { netns: t.netns, iface: t.iface });
    for (const { netns, iface } of this.observers ? byDevice.values() : []) {
      if (!(await this.ctx.goOn())) return false;
      this.ctx.attempt(tcWhere(netns, iface), () => this.add(netns, iface, null));
    }
    for (const { netns, iface } of plan.tcAside) this.setAside(netns, iface);
    return true;
  }

  /** Observers on a device (both directions the plan wants). */
  private add(netns: Netns, iface: Iface, rtnl: NetlinkSocket | null): void {
    this.ctx.inNamespace(netns, (sock) => this.observers!.add(netns, iface, sock, (d) => tcWhere(netns, iface, d)), rtnl);
  }

  private setAside(netns: Netns, iface: Iface): void {
    let devices = this.aside.get(netns.inode);
    if (!devices) this.aside.set(netns.inode, (devices = new Map()));
    devices.set(iface.ifindex, iface);
  }

  /** A device that appeared: observed, or (--tc-devices programs) set aside while no other tc program runs there. */
  private place(netns: Netns, iface: Iface, rtnl: NetlinkSocket): 'observed' | 'aside' {
    if (this.ctx.plan.template.tcDevices === 'programs') {
      let busy = false;
      this.ctx.inNamespace(netns, (sock) => (busy = this.observers!.othersRunAt(sock, iface.ifindex)), rtnl);
      if (!busy) {
        this.setAside(netns, iface);
        return 'aside';
      }
    }
    this.add(netns, iface, rtnl);
    return 'observed';
  }

  /** Devices set aside where another program now runs get their observers (calling thread in `netns`). */
  private observeNewlyBusy(netns: Netns, rtnl: NetlinkSocket, legacyChanged: ReadonlySet<number>): void {
    for (const iface of this.aside.get(netns.inode)?.values() ?? []) {
      const legacy = legacyChanged.has(iface.ifindex);
      // Each tick, for every device set aside: a count-only query first, the chain's programs read only where it has some.
      if (!legacy && tcxChainLength(iface.ifindex, 'ingress') + tcxChainLength(iface.ifindex, 'egress') === 0) continue;
      if (!this.observers!.othersRunAt(legacy ? rtnl : null, iface.ifindex)) continue;
      this.aside.get(netns.inode)!.delete(iface.ifindex);
      const where = tcWhere(netns, iface);
      if (this.ctx.attempt(where, () => this.add(netns, iface, rtnl)) === null) this.ctx.status(`pktpath: tc programs appeared: ${where}`);
    }
  }

  readonly follow: Partial<TopologyListener> = {
    namespaceAdded: (netns, ifaces, rtnl) => {
      if (this.observers) for (const iface of ifaces) this.ctx.attempt(tcWhere(netns, iface), () => this.place(netns, iface, rtnl));
    },
    namespaceRemoved: (netns) => {
      this.aside.delete(netns.inode);
      void this.observers?.remove(netns.inode);
    },
    deviceAdded: (netns, iface, rtnl) => {
      if (!this.observers) return;
      const where = tcWhere(netns, iface);
      const placed = { at: 'aside' as 'observed' | 'aside' };
      if (this.ctx.attempt(where, () => (placed.at = this.place(netns, iface, rtnl))) !== null) return;
      this.ctx.status(`pktpath: device appeared: ${placed.at === 'observed' ? where
        : `${iface.name} (netns ${netnsName(netns)}), no tc program there: seen at the device tracepoints`}`);
    },
    deviceRemoved: (netns, ifindex) => {
      this.aside.get(netns.inode)?.delete(ifindex);
      void this.observers?.remove(netns.inode, ifindex);
    },
    deviceRenamed: (netns, iface) => {
      const set = this.aside.get(netns.inode);
      if (set?.has(iface.ifindex)) set.set(iface.ifindex, iface);
      this.observers?.rename(netns.inode, iface.ifindex, iface.name);
    },
    refresh: (netns, rtnl, legacyChanged) => {
      if (!this.observers) return;
      this.observers.refresh(netns, rtnl, legacyChanged);
      this.observeNewlyBusy(netns, rtnl, legacyChanged);
    },
  };

  async detach(): Promise<void> {
    await this.observers?.closeAll();
  }

  report(): FamilyReport {
    const o = this.observers;
    return {
      links: o ? o.hookCount + o.firstCount : 0,
      line: { tcDevices: o?.deviceCount ?? 0, tcFirst: o?.firstCount ?? 0, tcAside: [...this.aside.values()].reduce((n, d) => n + d.size, 0) },
    };
  }
}
