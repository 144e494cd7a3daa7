/**
 * The names a trace gives namespaces (by inode) and their devices (by inode,
 * then ifindex), kept current as namespaces and devices come and go.
 */
import { SlotCache } from '../decode/cache.js';
import type { Iface, Netns } from '../kernel/netns.js';
import type { PodRef } from '../output/event.js';

/** A namespace's name and a device's in it ('' where either has none), and the pod that holds the namespace. */
export interface Where {
  netnsName: string;
  ifname: string;
  pod: PodRef | null;
}

interface RecentWhere extends Where {
  version: number;
  netns: number;
  ifindex: number;
}

export class NameBook {
  private readonly netns = new Map<number, string>();
  private readonly ifaces = new Map<number, Map<number, string>>();
  private pods = new Map<number, PodRef>();
  /** Pods the runtime no longer lists whose namespace may still be followed: named when it goes. */
  private readonly formerPods = new Map<number, PodRef>();
  /**
   * Changed by every change of a name: a remembered lookup is good for the
   * version it was made in. Each record asks for its namespace and device,
   * and a flood's records ask for a handful of them over and over.
   */
  private version = 0;
  private readonly recent = new SlotCache(256, (): RecentWhere => ({ version: -1, netns: NaN, ifindex: NaN, netnsName: '', ifname: '', pod: null }));

  /** The names of the namespaces a session observes and of their devices. */
  static of(namespaces: ReadonlyArray<{ netns: Pick<Netns, 'inode' | 'name'>; ifaces: readonly Iface[] }>): NameBook {
    const book = new NameBook();
    for (const { netns, ifaces } of namespaces) book.setNamespace(netns, ifaces);
    return book;
  }

  /** A namespace and its devices, new or again. */
  setNamespace(netns: Pick<Netns, 'inode' | 'name'>, ifaces: readonly Iface[]): void {
    if (netns.name) this.netns.set(netns.inode, netns.name);
    this.ifaces.set(netns.inode, new Map(ifaces.map((i) => [i.ifindex, i.name])));
    this.version++;
  }

  /** A device that appeared or was renamed in a namespace already known. */
  setDevice(inode: number, iface: Iface): void {
    const devices = this.ifaces.get(inode);
    if (devices === undefined) return;
    devices.set(iface.ifindex, iface.name);
    this.version++;
  }

  /** The pods by the inode of their namespace (the container runtime's latest answer). */
  setPods(pods: ReadonlyArray<PodRef & { netns: number }>): void {
    const next = new Map(pods.map((p) => [p.netns, { namespace: p.namespace, name: p.name, uid: p.uid }]));
    for (const [inode, pod] of this.pods) if (!next.has(inode)) this.formerPods.set(inode, pod);
    this.pods = next;
    this.version++;
  }

  /** The pod a namespace belongs or belonged to (for the line that says it went away), and forgets the latter. */
  podLeaving(inode: number): PodRef | null {
    const pod = this.pods.get(inode) ?? this.formerPods.get(inode) ?? null;
    this.formerPods.delete(inode);
    return pod;
  }

  podOf(inode: number): PodRef | null {
    return this.pods.get(inode) ?? null;
  }

  netnsName(inode: number): string {
    return this.netns.get(inode) ?? '';
  }

  ifname(inode: number, ifindex: number): string {
    return this.ifaces.get(inode)?.get(ifindex) ?? '';
  }

  /** Both names for a record; the object is the book's: read it at once. */
  where(inode: number, ifindex: number): Readonly<Where> {
    const h = inode ^ Math.imul(ifindex, 0x9e3779b1);
    const r = this.recent.at(h ^ (h >>> 12));
    if (r.version === this.version && r.netns === inode && r.ifindex === ifindex) return r;
    r.version = this.version;
    r.netns = inode;
    r.ifindex = ifindex;
    r.netnsName = this.netnsName(inode);
    r.ifname = this.ifname(inode, ifindex);
    r.pod = this.podOf(inode);
    return r;
  }
}
