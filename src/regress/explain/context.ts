/**
 * What explain knows around the journeys as the trace goes: each
 * namespace's settings over time, neighbour entries' changes, route lookups
 * no skb could be tied to. Bounded: a few settings records per namespace,
 * a few changes per neighbour, the latest untied lookups.
 */
import type { ExplainEvent, Ipv4Conf, NeighSection, SettingsRecord } from './inputs.js';

const SETTINGS_PER_NETNS = 16;
const NEIGH_ADDRESSES = 4096;
const CHANGES_PER_NEIGH = 16;
const UNTIED_ROUTES = 1024;

/** An address without its prefix length, lower case (IPv6 as written by the kernel's tools). */
const bare = (a: string) => a.replace(/\/\d+$/, '').toLowerCase();

export class ExplainContext {
  private readonly settings = new Map<number, SettingsRecord[]>();
  private readonly neigh = new Map<string, ExplainEvent[]>();
  private readonly untiedRoutes: ExplainEvent[] = [];
  /** Records the ring (or nftables' socket) lost: hops may be missing. */
  lost = 0;
  /** Neighbours (address and link-layer address) already told as answered by proxy ARP: told once. */
  readonly proxied = new Set<string>();

  addSettings(s: SettingsRecord): void {
    let list = this.settings.get(s.netns);
    if (!list) this.settings.set(s.netns, (list = []));
    list.push(s);
    if (list.length > SETTINGS_PER_NETNS) list.shift();
  }

  addNeigh(e: ExplainEvent & { neigh: NeighSection }): void {
    const key = bare(e.neigh.address);
    let list = this.neigh.get(key);
    if (!list) {
      if (this.neigh.size >= NEIGH_ADDRESSES) this.neigh.delete(this.neigh.keys().next().value!);
      this.neigh.set(key, (list = []));
    }
    list.push(e);
    if (list.length > CHANGES_PER_NEIGH) list.shift();
  }

  addUntiedRoute(e: ExplainEvent): void {
    this.untiedRoutes.push(e);
    if (this.untiedRoutes.length > UNTIED_ROUTES) this.untiedRoutes.shift();
  }

  /** The settings of `netns` that apply at `time`: the last record at or before it (else the first one, read at start). */
  settingsAt(netns: number, time: string): SettingsRecord | null {
    const list = this.settings.get(netns);
    if (!list || list.length === 0) return null;
    let found: SettingsRecord | null = null;
    for (const s of list) if (s.time <= time) found = s;
    return found ?? list[0]!;
  }

  /** The latest settings of every namespace. */
  latestSettings(): SettingsRecord[] {
    return [...this.settings.values()].map((l) => l[l.length - 1]!);
  }

  /** A neighbour's changes up to `time` (and a little after: the entry fails, then its queued packets are dropped). */
  neighbourChanges(address: string, until: string): ExplainEvent[] {
    return (this.neigh.get(bare(address)) ?? []).filter((e) => e.time <= until || e.time.slice(0, 19) === until.slice(0, 19));
  }

  /**
   * Route lookups no skb was tied to, of `netns`, for a flow to `daddr`, between two times; and the
   * last one in the second before `from`: a socket looks its route up before it makes the skb.
   */
  untiedRoutesFor(netns: number, daddr: string, from: string, to: string): ExplainEvent[] {
    const ofFlow = this.untiedRoutes.filter((e) => e.netns === netns && e.tuple?.daddr === daddr && e.time <= to);
    const earlier = secondBefore(from);
    const before = ofFlow.filter((e) => e.time < from && e.time >= earlier);
    return [...before.slice(-1), ...ofFlow.filter((e) => e.time >= from)];
  }
}

/** An event's time one second earlier (`2026-12-07T18:21:11.710141881Z` → `…18:21:10.710141881Z`). */
function secondBefore(time: string): string {
  const ms = Date.parse(`${time.slice(0, 19)}Z`);
  return Number.isNaN(ms) ? time : `${new Date(ms - 1000).toISOString().slice(0, 19)}${time.slice(19)}`;
}

/** The device of another traced namespace that routes to `address` itself (`address/32 dev lxc-c`): the host side of a routed pod. */
export function routerTowards(all: SettingsRecord[], address: string, except: number): { settings: SettingsRecord; device: string } | null {
  const a = bare(address);
  for (const s of all) {
    if (s.netns === except) continue;
    const r = (s.routes ?? []).find((x) => x.dev !== '' && x.type === 'unicast' && bare(x.dst) === a && /\/(32|128)$/.test(x.dst));
    if (r) return { settings: s, device: r.dev };
  }
  return null;
}

/** One device's IPv4 value, or all's where the device has none. */
export function ipv4Value(s: SettingsRecord, iface: string, key: keyof Ipv4Conf): number | null {
  return s.ipv4?.conf?.[iface]?.[key] ?? s.ipv4?.conf?.['all']?.[key] ?? null;
}

/** Whether a packet coming in on `iface` may be forwarded (IN_DEV_FORWARD; IPv6: all's forwarding); null when unknown. */
export function forwardingOn(s: SettingsRecord, family: 4 | 6, iface: string): { value: number; text: string } | null {
  if (family === 6) {
    const v = s.ipv6?.conf?.['all']?.forwarding;
    return v === undefined ? null : { value: v, text: `net.ipv6.conf.all.forwarding=${v}` };
  }
  const dev = s.ipv4?.conf?.[iface]?.forwarding;
  const all = s.ipv4?.forwarding ?? s.ipv4?.conf?.['all']?.forwarding;
  if (dev === undefined && all === undefined) return null;
  const value = dev ?? all!;
  const parts = [...(all !== undefined ? [`net.ipv4.ip_forward=${all}`] : []), ...(dev !== undefined ? [`forwarding=${dev} on ${iface}`] : [])];
  return { value, text: parts.join(' and ') };
}

/** rp_filter as the kernel applies it: the larger of all's and the device's. */
export function rpFilterOn(s: SettingsRecord, iface: string): number | null {
  const all = s.ipv4?.conf?.['all']?.rp_filter;
  const dev = s.ipv4?.conf?.[iface]?.rp_filter;
  if (all === undefined && dev === undefined) return null;
  return Math.max(all ?? 0, dev ?? 0);
}

/** Whether `address` is one of the namespace's own. */
export function ownsAddress(s: SettingsRecord, address: string): boolean {
  const a = bare(address);
  return (s.devices ?? []).some((d) => (d.addresses ?? []).some((x) => bare(x) === a));
}

/** The device that has `address`, in any namespace's latest settings. */
export function holderOf(all: SettingsRecord[], address: string): { settings: SettingsRecord; device: string; up: boolean | null } | null {
  const a = bare(address);
  for (const s of all) {
    for (const d of s.devices ?? []) {
      if ((d.addresses ?? []).some((x) => bare(x) === a)) return { settings: s, device: d.name, up: d.up ?? null };
    }
  }
  return null;
}

/** The device whose link-layer address is `lladdr`, in any namespace's latest settings. */
export function deviceWithLladdr(all: SettingsRecord[], lladdr: string): { settings: SettingsRecord; device: string; addresses: string[] } | null {
  const l = lladdr.toLowerCase();
  for (const s of all) {
    for (const d of s.devices ?? []) if (d.lladdr?.toLowerCase() === l) return { settings: s, device: d.name, addresses: d.addresses ?? [] };
  }
  return null;
}

/** A namespace as people know it: its name, else its inode. */
export const netnsText = (name: string | undefined, inode: number) => (name ? name : `netns ${inode}`);
