/**
 * What a session does when namespaces and devices come and go (./topology.ts
 * notices): observers attached to what appears, released with what goes,
 * names kept current, each step counted and said.
 */
import { performance } from 'node:perf_hooks';
import type { NetlinkSocket } from '../kernel/netlink.js';
import type { Iface, Netns } from '../kernel/netns.js';
import type { TopologyCounts } from '../output/summary.js';
import type { AttachPlan } from './attachments.js';
import type { NameBook } from './names.js';
import { type NfObservers, nfWhere } from './netfilter.js';
import type { NftTracer } from './nft.js';
import { plural } from './status.js';
import type { TcObservers } from './tc.js';
import type { TopologyListener } from './topology.js';

export const tcWhere = (netns: Netns, iface: Iface) => `tc on ${iface.name} (netns ${netns.name || netns.inode})`;

/** The parts of a session the listener works on. */
export interface FollowContext {
  counts: TopologyCounts;
  names(): NameBook;
  tc(): TcObservers | null;
  nf: NfObservers;
  nft(): NftTracer | null;
  netfilterTemplate(): AttachPlan['template']['netfilter'];
  /** Runs fn; a failure is reported as not observed and returned. */
  attempt(what: string, fn: () => void): Error | null;
  attachTc(netns: Netns, iface: Iface, rtnl: NetlinkSocket | null): void;
  /** Traces the XDP programs of a namespace's devices (--filter-trace-xdp), inside it. */
  programsIn(rtnl: NetlinkSocket): void;
  status(line: string): void;
}

export function followTopology(ctx: FollowContext): TopologyListener {
  return {
    namespaceAdded: (netns, ifaces, rtnl) => {
      const t0 = performance.now();
      ctx.counts.namespacesAdded++;
      ctx.names().setNamespace(netns, ifaces);
      if (ctx.tc()) for (const iface of ifaces) ctx.attempt(tcWhere(netns, iface), () => ctx.attachTc(netns, iface, rtnl));
      ctx.attempt(`XDP programs (netns ${netns.name || netns.inode})`, () => ctx.programsIn(rtnl));
      for (const h of ctx.netfilterTemplate()) ctx.attempt(nfWhere({ ...h, netns }), () => ctx.nf.add({ ...h, netns }));
      if (ctx.nft()) ctx.attempt(`nft tracing (netns ${netns.name || netns.inode})`, () => ctx.nft()!.add(netns));
      ctx.status(`pktpath: netns ${netns.name || netns.inode} appeared: tc on ${ifaces.length} ${plural(ifaces.length, 'device')}, ` +
        `netfilter at ${ctx.nf.hooksIn(netns.inode)} hooks (${(performance.now() - t0).toFixed(0)} ms)`);
    },
    namespaceRemoved: (netns) => {
      ctx.counts.namespacesRemoved++;
      ctx.tc()?.remove(netns.inode);
      ctx.nf.remove(netns.inode);
      ctx.nft()?.remove(netns.inode);
      ctx.status(`pktpath: netns ${netns.name || netns.inode} went away: its observers are released`);
    },
    deviceAdded: (netns, iface, rtnl) => {
      ctx.counts.devicesAdded++;
      ctx.names().setDevice(netns.inode, iface);
      ctx.attempt(`XDP programs (netns ${netns.name || netns.inode})`, () => ctx.programsIn(rtnl));
      if (!ctx.tc()) return;
      const where = tcWhere(netns, iface);
      if (ctx.attempt(where, () => ctx.attachTc(netns, iface, rtnl)) === null) ctx.status(`pktpath: device appeared: ${where}`);
    },
    deviceRemoved: (netns, ifindex) => {
      ctx.counts.devicesRemoved++;
      ctx.tc()?.remove(netns.inode, ifindex);
    },
    deviceRenamed: (netns, iface) => {
      ctx.names().setDevice(netns.inode, iface);
      ctx.tc()?.rename(netns.inode, iface.ifindex, iface.name);
    },
    refresh: (netns, rtnl, legacyChanged) => ctx.tc()?.refresh(netns, rtnl, legacyChanged),
  };
}
