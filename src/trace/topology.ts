/**
 * The namespaces and devices a session observes, followed while it runs: a
 * namespace named under /run/netns after the start (a pod), a device added,
 * renamed or removed (a veth), legacy tc filters changed. Each tick lists
 * what is there and reports the differences; a watch on /run/netns and
 * rtnetlink's tc group make changes show within a tick.
 */
import fs from 'node:fs';
import { NETLINK_ROUTE, NetlinkSocket } from '../kernel/netlink.js';
import { type Iface, NETNS_RUN_DIR, type Netns, listIfaces, withNetns } from '../kernel/netns.js';

const RTNLGRP_LINK = 1;
const RTNLGRP_TC = 4;
const RTM_NEWLINK = 16;
const RTM_DELLINK = 17;
const RTM_NEWTFILTER = 44;
const RTM_DELTFILTER = 45;
/** Devices are listed again when the link group says something changed, and every this many ticks all the same (a queue that overflowed). */
const RELIST_TICKS = 8;

export interface TopologyListener {
  namespaceAdded(netns: Netns, ifaces: Iface[], rtnl: NetlinkSocket): void;
  namespaceRemoved(netns: Netns): void;
  deviceAdded(netns: Netns, iface: Iface, rtnl: NetlinkSocket): void;
  deviceRemoved(netns: Netns, ifindex: number): void;
  deviceRenamed(netns: Netns, iface: Iface): void;
  /** Once per namespace per tick, inside it: `legacyChanged` names devices whose tc filters changed. */
  refresh(netns: Netns, rtnl: NetlinkSocket, legacyChanged: ReadonlySet<number>): void;
}

interface Watched {
  netns: Netns;
  devices: Map<number, string>;
  /** Requests (legacy tc dumps), and the link and tc groups' notifications of this namespace. */
  rtnl: NetlinkSocket;
  events: NetlinkSocket;
  /** Ticks since its devices were last listed. */
  sinceListed: number;
}

export class Topology {
  private readonly watched = new Map<number, Watched>();
  private watcher: fs.FSWatcher | null = null;
  private dirty = false;

  /**
   * `scope`: the namespaces to observe now (pktpath's own and those named in
   * /run/netns, or the one of --filter-netns); `devices`: whether new devices
   * are followed (not with --filter-ifname).
   */
  constructor(
    private readonly scope: () => Netns[],
    private readonly followDevices: boolean,
    private readonly listener: TopologyListener,
  ) {}

  /** Starts watching `initial` (already attached by the caller) and /run/netns. */
  start(initial: ReadonlyArray<{ netns: Netns; ifaces: Iface[] }>): void {
    for (const { netns, ifaces } of initial) this.watch(netns, ifaces);
    try {
      this.watcher = fs.watch(NETNS_RUN_DIR, () => (this.dirty = true));
      this.watcher.unref();
    } catch {
      // No /run/netns yet: the tick's listing finds namespaces named later.
    }
  }

  /** The sockets of a watched namespace. */
  rtnlOf(inode: number): NetlinkSocket | null {
    return this.watched.get(inode)?.rtnl ?? null;
  }

  get namespaceCount(): number {
    return this.watched.size;
  }

  /** Whether /run/netns changed since the last tick (the session ticks at once then). */
  get pending(): boolean {
    return this.dirty;
  }

  /** Looks again at the next tick (the scope changed: a pod the runtime named since). */
  touch(): void {
    this.dirty = true;
  }

  /** Whether a namespace is followed now. */
  watches(inode: number): boolean {
    return this.watched.has(inode);
  }

  tick(): void {
    this.dirty = false;
    const now = new Map(this.scope().map((n) => [n.inode, n]));
    for (const [inode, w] of this.watched) {
      if (now.has(inode)) continue;
      this.unwatch(w);
      this.listener.namespaceRemoved(w.netns);
    }
    for (const [inode, netns] of now) {
      const w = this.watched.get(inode);
      if (w === undefined) {
        let ifaces: Iface[];
        try {
          ifaces = withNetns(netns.path, listIfaces);
        } catch {
          continue; // Gone again, or not a namespace after all.
        }
        const added = this.watch(netns, ifaces);
        if (added) this.listener.namespaceAdded(netns, ifaces, added.rtnl);
        continue;
      }
      try {
        withNetns(w.netns.path, () => this.follow(w));
      } catch {
        // The namespace went away between listing and entering it: the next tick removes it.
      }
    }
  }

  close(): void {
    this.watcher?.close();
    this.watcher = null;
    for (const w of this.watched.values()) this.unwatch(w);
  }

  private watch(netns: Netns, ifaces: Iface[]): Watched | null {
    try {
      const { rtnl, events } = withNetns(netns.path, () => ({
        rtnl: NetlinkSocket.open(NETLINK_ROUTE),
        events: NetlinkSocket.open(NETLINK_ROUTE, [RTNLGRP_LINK, RTNLGRP_TC]),
      }));
      const w: Watched = { netns, devices: new Map(ifaces.map((i) => [i.ifindex, i.name])), rtnl, events, sinceListed: 0 };
      this.watched.set(netns.inode, w);
      return w;
    } catch {
      return null;
    }
  }

  private unwatch(w: Watched): void {
    w.rtnl.close();
    w.events.close();
    this.watched.delete(w.netns.inode);
  }

  /** Inside the namespace: what its notifications say changed; chains to re-read. */
  private follow(w: Watched): void {
    const legacyChanged = new Set<number>();
    // Listing a namespace's devices every tick was most of an idle trace's work at a node's worth of pods.
    let linksChanged = ++w.sinceListed >= RELIST_TICKS;
    for (const m of w.events.poll()) {
      if (m.type === RTM_NEWTFILTER || m.type === RTM_DELTFILTER) legacyChanged.add(m.payload.readInt32LE(4));
      else if (m.type === RTM_NEWLINK || m.type === RTM_DELLINK) linksChanged = true;
    }
    if (linksChanged) this.listDevices(w);
    this.listener.refresh(w.netns, w.rtnl, legacyChanged);
  }

  /** Inside the namespace: devices added, removed, renamed since the last listing. */
  private listDevices(w: Watched): void {
    w.sinceListed = 0;
    const ifaces = listIfaces();
    const seen = new Set<number>();
    for (const iface of ifaces) {
      seen.add(iface.ifindex);
      const name = w.devices.get(iface.ifindex);
      if (name === undefined) {
        w.devices.set(iface.ifindex, iface.name);
        if (this.followDevices) this.listener.deviceAdded(w.netns, iface, w.rtnl);
      } else if (name !== iface.name) {
        w.devices.set(iface.ifindex, iface.name);
        this.listener.deviceRenamed(w.netns, iface);
      }
    }
    for (const ifindex of [...w.devices.keys()]) {
      if (seen.has(ifindex)) continue;
      w.devices.delete(ifindex);
      this.listener.deviceRemoved(w.netns, ifindex);
    }
  }
}
