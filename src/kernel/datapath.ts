/**
 * The datapath inventory: every BPF program on the packet path of the traced
 * namespaces — tcx chains, legacy tc (clsact/cls_bpf), XDP — plus netfilter
 * BPF links, cgroup skb programs, and the nft tables and base chains. Read
 * from the kernel's own interfaces: BPF object ids and info, rtnetlink,
 * libnftables. pktpath's own programs are marked as such.
 */
import { vmlinuxBtf } from '../bpf/btf/vmlinux.js';
import { type ProgInfo, linkInfos, progInfoById, programs, tcxChain, tcxChainLength } from '../bpf/loaded.js';
import { NETLINK_ROUTE, NetlinkSocket } from './netlink.js';
import { type Netns, withNetns } from './netns.js';
import { Nft, type NftListing, listNft } from './nftables.js';
import { type XdpMode, devicesWithClsact, listDevices, tcBpfFilters } from './rtnl.js';
import { type NetnsSettings, readSettings } from './settings.js';

export type Direction = 'ingress' | 'egress';

/** A program as the inventory names it. */
export interface ProgRef {
  id: number;
  name: string;
  tag: string;
  /** The kernel's name of its type, e.g. sched_cls, xdp, netfilter. */
  type: string;
  /** One of pktpath's own observers. */
  own: boolean;
}

export interface TcxEntry extends ProgRef {
  /** The tcx link, 0 when attached without one (BPF_PROG_ATTACH). */
  linkId: number;
}

export interface LegacyTcEntry extends ProgRef {
  /** tc's `pref` and handle. */
  priority: number;
  handle: number;
  /** What tc shows, e.g. `policy_drop.bpf.o:[tc]`. */
  tcName: string;
  directAction: boolean;
}

/** The programs at one tc hook, in the order the kernel runs them: the tcx chain, then legacy clsact. */
export interface TcHook {
  tcx: TcxEntry[];
  legacy: LegacyTcEntry[];
}

export interface DeviceDatapath {
  ifindex: number;
  name: string;
  xdp: { mode: XdpMode; prog: ProgRef } | null;
  tc: Record<Direction, TcHook>;
}

export interface NamespaceDatapath {
  netns: { inode: number; name: string };
  devices: DeviceDatapath[];
  nft: NftListing | null;
  /** What decides where its packets go (forwarding, rp_filter, ARP, routes…); null where it could not be read. */
  settings: NetnsSettings | null;
  /** What could not be read here, and why. */
  errors: string[];
}

export interface NetfilterLinkEntry extends ProgRef {
  linkId: number;
  family: string;
  hook: string;
  priority: number;
}

export interface CgroupSkbEntry extends ProgRef {
  /** 0 for programs attached without a link (the cgroup is not reported then). */
  linkId: number;
  cgroupId: string;
  direction: Direction | 'unknown';
}

export interface DatapathInventory {
  namespaces: NamespaceDatapath[];
  /** Netfilter BPF links (the kernel does not say which namespace each is in). */
  netfilter: NetfilterLinkEntry[];
  cgroupSkb: CgroupSkbEntry[];
}

/** Names of BTF enum values without their prefix, lower case; `#N` for values this kernel's BTF lacks. */
function enumNamer(enumName: string, prefix: string): (v: number) => string {
  const values = vmlinuxBtf()?.enumValues(enumName) ?? new Map<number, string>();
  return (v) => values.get(v)?.replace(prefix, '').toLowerCase() ?? `#${v}`;
}

/** Programs by id, named, read from the kernel when first asked for. */
export class ProgramBook {
  private readonly byId = new Map<number, ProgInfo | null>();
  private readonly typeName = enumNamer('bpf_prog_type', 'BPF_PROG_TYPE_');

  /** `ownIds`: pktpath's own programs (also told by their `pktpath_` names). */
  constructor(private readonly own: ReadonlySet<number> = new Set()) {}

  ref(id: number): ProgRef {
    let p = this.byId.get(id);
    if (p === undefined) this.byId.set(id, (p = progInfoById(id)));
    return {
      id, name: p?.name ?? '', tag: p?.tag ?? '', type: p ? this.typeName(p.type) : 'unknown',
      own: this.own.has(id) || (p?.name.startsWith('pktpath_') ?? false),
    };
  }

  /** Every program loaded now. */
  all(): ProgInfo[] {
    const all = programs();
    for (const p of all) this.byId.set(p.id, p);
    return all;
  }
}

/** The tc programs of one device of the calling thread's namespace. */
export function tcHooks(book: ProgramBook, rtnl: NetlinkSocket | null, ifindex: number): Record<Direction, TcHook> {
  const out: Record<Direction, TcHook> = { ingress: { tcx: [], legacy: [] }, egress: { tcx: [], legacy: [] } };
  for (const direction of ['ingress', 'egress'] as const) {
    const chain = tcxChain(ifindex, direction);
    if (chain) out[direction].tcx = chain.progIds.map((id, i) => ({ ...book.ref(id), linkId: chain.linkIds[i] ?? 0 }));
  }
  if (rtnl) {
    for (const f of tcBpfFilters(rtnl, ifindex)) {
      out[f.direction].legacy.push({
        ...book.ref(f.progId), priority: f.priority, handle: f.handle, tcName: f.name, directAction: f.directAction,
      });
    }
  }
  return out;
}

/**
 * The devices of the calling thread's namespace (`ifindexes`) where programs
 * other than pktpath's run at a tc hook: tcx chains, and cls_bpf filters
 * where `rtnl` is given. pktpath's own are told by `own` and their names.
 */
export function devicesWithTcPrograms(book: ProgramBook, rtnl: NetlinkSocket | null, ifindexes: readonly number[]): Set<number> {
  const busy = new Set<number>();
  // Filters are listed only on devices with a clsact or ingress qdisc: two dumps a device cost ~0.3 ms each.
  const clsact = rtnl ? devicesWithClsact(rtnl) : new Set<number>();
  for (const ifindex of ifindexes) {
    const legacy = clsact.has(ifindex);
    if (!legacy && tcxChainLength(ifindex, 'ingress') + tcxChainLength(ifindex, 'egress') === 0) continue;
    const hooks = tcHooks(book, legacy ? rtnl : null, ifindex);
    if (foreignAt(hooks.ingress).length > 0 || foreignAt(hooks.egress).length > 0) busy.add(ifindex);
  }
  return busy;
}

/** One namespace's devices, their tc and XDP programs, and its nft tables and base chains. */
export function namespaceDatapath(book: ProgramBook, netns: Netns): NamespaceDatapath {
  const errors: string[] = [];
  const devices = withNetns(netns.path, () => {
    const rtnl = NetlinkSocket.open(NETLINK_ROUTE);
    try {
      return listDevices(rtnl).map((d) => ({
        ifindex: d.ifindex,
        name: d.name,
        xdp: d.xdp ? { mode: d.xdp.mode, prog: book.ref(d.xdp.progId) } : null,
        tc: tcHooks(book, rtnl, d.ifindex),
      }));
    } finally {
      rtnl.close();
    }
  });
  let nft: NftListing | null = null;
  try {
    nft = Nft.with(netns, listNft);
  } catch (e) {
    errors.push(`nftables: ${(e as Error).message}`);
  }
  let settings: NetnsSettings | null = null;
  try {
    settings = readSettings(netns).settings;
  } catch (e) {
    errors.push(`settings: ${(e as Error).message}`);
  }
  return { netns: { inode: netns.inode, name: netns.name }, devices, nft, settings, errors };
}

const NF_FAMILIES: Readonly<Record<number, string>> = { 2: 'ipv4', 10: 'ipv6' };
const NF_HOOKS = ['pre_routing', 'local_in', 'forward', 'local_out', 'post_routing'];
/** enum bpf_attach_type: the cgroup skb directions. */
const CGROUP_SKB_ATTACH: Readonly<Record<number, Direction>> = { 0: 'ingress', 1: 'egress' };

/** The whole inventory over `namespaces`. */
export function datapathInventory(namespaces: Netns[], ownIds: ReadonlySet<number> = new Set()): DatapathInventory {
  const book = new ProgramBook(ownIds);
  const linkType = enumNamer('bpf_link_type', 'BPF_LINK_TYPE_');
  const netfilter: NetfilterLinkEntry[] = [];
  const cgroupSkb: CgroupSkbEntry[] = [];
  const linked = new Set<number>();
  for (const l of linkInfos()) {
    const kind = linkType(l.type);
    if (kind === 'netfilter') {
      netfilter.push({
        ...book.ref(l.progId), linkId: l.id,
        family: NF_FAMILIES[l.detail.readUInt32LE(0)] ?? `pf#${l.detail.readUInt32LE(0)}`,
        hook: NF_HOOKS[l.detail.readUInt32LE(4)] ?? `hook#${l.detail.readUInt32LE(4)}`,
        priority: l.detail.readInt32LE(8),
      });
    } else if (kind === 'cgroup' && book.ref(l.progId).type === 'cgroup_skb') {
      linked.add(l.progId);
      cgroupSkb.push({
        ...book.ref(l.progId), linkId: l.id, cgroupId: l.detail.readBigUInt64LE(0).toString(),
        direction: CGROUP_SKB_ATTACH[l.detail.readUInt32LE(8)] ?? 'unknown',
      });
    }
  }
  for (const p of book.all()) {
    const ref = book.ref(p.id);
    if (ref.type === 'cgroup_skb' && !linked.has(p.id)) cgroupSkb.push({ ...ref, linkId: 0, cgroupId: '', direction: 'unknown' });
  }
  const spaces = namespaces.map((n) => {
    try {
      return namespaceDatapath(book, n);
    } catch (e) {
      return { netns: { inode: n.inode, name: n.name }, devices: [], nft: null, settings: null, errors: [(e as Error).message] };
    }
  });
  netfilter.sort((a, b) => a.family.localeCompare(b.family) || NF_HOOKS.indexOf(a.hook) - NF_HOOKS.indexOf(b.hook) || a.priority - b.priority);
  return { namespaces: spaces, netfilter, cgroupSkb };
}

/** Foreign programs (not pktpath's) at a hook, in the order they run. */
export function foreignAt(hook: TcHook): ProgRef[] {
  return [...hook.tcx, ...hook.legacy].filter((p) => !p.own);
}
