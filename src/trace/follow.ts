/**
 * What a session does when namespaces and devices come and go (./topology.ts
 * notices): each attach family attaches to what appears and releases what
 * goes (./families/), names are kept current, each step counted and said.
 */
import { performance } from 'node:perf_hooks';
import type { TopologyCounts } from '../output/summary.js';
import { netnsName } from './families/family.js';
import type { NameBook } from './names.js';
import { plural } from './status.js';
import type { TopologyListener } from './topology.js';
import type { Netns } from '../kernel/netns.js';

/** The parts of a session the listener works on. */
export interface FollowContext {
  counts: TopologyCounts;
  names(): NameBook;
  /** What each family does, in order. */
  families: ReadonlyArray<Partial<TopologyListener>>;
  /** The netfilter hooks observed in a namespace (for its line). */
  nfHooksIn(inode: number): number;
  status(line: string): void;
}

export function followTopology(ctx: FollowContext): TopologyListener {
  const { counts, families } = ctx;
  /** A pod's namespace by the pod's name too, when the runtime has named it. */
  const label = (netns: Netns, pod = ctx.names().podOf(netns.inode)): string =>
    pod ? `${netnsName(netns)} (pod ${pod.namespace}/${pod.name})` : String(netnsName(netns));
  return {
    namespaceAdded: (netns, ifaces, rtnl) => {
      const t0 = performance.now();
      counts.namespacesAdded++;
      ctx.names().setNamespace(netns, ifaces);
      for (const f of families) f.namespaceAdded?.(netns, ifaces, rtnl);
      ctx.status(`pktpath: netns ${label(netns)} appeared: tc on ${ifaces.length} ${plural(ifaces.length, 'device')}, ` +
        `netfilter at ${ctx.nfHooksIn(netns.inode)} hooks (${(performance.now() - t0).toFixed(0)} ms)`);
    },
    namespaceRemoved: (netns) => {
      counts.namespacesRemoved++;
      for (const f of families) f.namespaceRemoved?.(netns);
      ctx.status(`pktpath: netns ${label(netns, ctx.names().podLeaving(netns.inode))} went away: its observers are released`);
    },
    deviceAdded: (netns, iface, rtnl) => {
      counts.devicesAdded++;
      ctx.names().setDevice(netns.inode, iface);
      for (const f of families) f.deviceAdded?.(netns, iface, rtnl);
    },
    deviceRemoved: (netns, ifindex) => {
      counts.devicesRemoved++;
      for (const f of families) f.deviceRemoved?.(netns, ifindex);
    },
    deviceRenamed: (netns, iface) => {
      ctx.names().setDevice(netns.inode, iface);
      for (const f of families) f.deviceRenamed?.(netns, iface);
    },
    refresh: (netns, rtnl, legacyChanged) => {
      for (const f of families) f.refresh?.(netns, rtnl, legacyChanged);
    },
  };
}
