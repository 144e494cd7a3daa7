/**
 * One shape for every attach family of a session (tracepoints, kernel
 * functions, tc, netfilter, other programs' entries and exits, nft tracing):
 * each plans what it loads, attaches it, follows namespaces and devices that
 * come and go, detaches, and reports what it holds.
 * The session's observers (../observers.ts) are a loop over them.
 */
import type { PointInfo } from '../../decode/points.js';
import type { ActiveFilter } from '../../filter/active.js';
import type { NetlinkSocket } from '../../kernel/netlink.js';
import type { Netns } from '../../kernel/netns.js';
import type { KernelView } from '../../kernel/view.js';
import type { AttachPlan } from '../attachments.js';
import type { NameBook } from '../names.js';
import type { NftCondition } from '../../kernel/nftables.js';
import type { CompiledSkbFetch } from '../../filter/skb-expr.js';
import type { LoadRequest, ProbeInstance, ProbeSet } from '../probes.js';
import type { AttachedState } from '../status.js';
import type { TopologyListener } from '../topology.js';

/** What a session asks of its observers beyond where to attach (part of SessionOptions). */
export interface ObserverOptions {
  /** Ring buffer size in bytes (power of two). */
  ringSize: number;
  /** Capture kernel stacks where the point allows it. */
  stack: boolean;
  /** Packet bytes to capture per event (0: none). */
  snaplen: number;
  /** The skb metadata section's fields, compiled: what every probe reads into its records; null: none. */
  skbMeta?: CompiledSkbFetch | null;
  /** The XDP metadata section's fields, compiled against the xdp_buff: what XDP program probes read into their records; null: none. */
  xdpMeta?: CompiledSkbFetch | null;
  /** The optional sections every probe writes (CONFIG.sections: src/output/sections/registry.ts, sectionMask). */
  sections?: number;
  /** --output-neigh-all: every neighbour event of the traced namespaces, whatever the filter. */
  neighAll?: boolean;
  /** --output-skb, --output-skb-shared-info, --output-skb-cb. */
  dump?: { skb: boolean; sharedInfo: boolean; cb: boolean };
  /**
   * --output-nft: nftables' tracing in every traced namespace, for the
   * packets `matches` selects (nft conditions, one per rule; null: all).
   */
  nft: { matches: NftCondition[][] | null } | null;
  /**
   * The namespaces to observe as they come and go (a listing, called each
   * topology tick); null: only those of the plan, as they were at the start.
   */
  scope: (() => Netns[]) | null;
}

/** What a family is given when made: the session's plan and settings, and the services every family shares. */
export interface FamilyContext {
  plan: AttachPlan;
  kernel: Pick<KernelView, 'namespaces'>;
  filter: ActiveFilter;
  opts: ObserverOptions;
  names: NameBook;
  probes: ProbeSet;
  /** Registers what a point id stands for, and returns the id. */
  addPoint(info: PointInfo): number;
  /**
   * Runs fn; a failure is reported as not observed and returned. `aside`: a
   * refusal among others of its kind (one traced program), never given as
   * the reason nothing could be attached.
   */
  attempt(what: string, fn: () => void, aside?: boolean): Error | null;
  /** Reports a line of what could not be observed, and why. */
  notObserved(line: string): void;
  status(line: string): void;
  /** Lets signals in; false once the session is stopping (attaching ends at the next step). */
  goOn(): Promise<boolean>;
  /** False once the session is stopping. */
  goingOn(): boolean;
  /** Runs fn inside `netns` with a route socket of it: `rtnl`, the topology's, or one opened for the call. */
  inNamespace(netns: Netns, fn: (rtnl: NetlinkSocket) => void, rtnl?: NetlinkSocket | null): void;
}

/** What a family holds: its links and its figures in the "attached N links: …" line (refusals are said as they happen: FamilyContext). */
export interface FamilyReport {
  /** Links made (tc hooks, netfilter hooks, trampolines, …): counted in the line's N. */
  links: number;
  line: Partial<Omit<AttachedState, 'links'>>;
  /** What the plan asked of this family that could not be attached, each with why. */
}

/** What a family's planned loads became (ProbeSet.loadTogether), in the order plan() asked for them. */
export type Landed = ReadonlyArray<Promise<ProbeInstance[] | null>>;

export interface AttachFamily {
  /** The objects to load with every family's at once (on two cores, in about the time of the largest); registers their points. */
  plan(): LoadRequest[];
  /** Loads what it did not plan and attaches everything; false when the session stopped meanwhile. */
  attach(landed: Landed): Promise<boolean>;
  /** What it does when namespaces and devices come and go (followed while tracing: ../topology.ts). */
  readonly follow?: Partial<TopologyListener>;
  /** Releases everything it attached. */
  detach(): Promise<void> | void;
  report(): FamilyReport;
}

/** The attached line's figures where no family gives them. */
const NOTHING: AttachedState = {
  links: 0, tracepoints: 0, forgets: 0, functions: 0, tcDevices: 0, tcAside: 0, tcFirst: 0, nfNamespaces: 0, nfHookFunction: false,
  programs: 0, nfMoved: new Set(), nftNamespaces: null,
};

/** What the families hold together, as the "attached N links: …" line counts it: each family's links summed, each its own figures. */
export function combineReports(reports: readonly FamilyReport[]): AttachedState {
  const state = { ...NOTHING };
  for (const r of reports) {
    Object.assign(state, r.line);
    state.links += r.links;
  }
  return state;
}

/** A refusal as said: what, and the first line of why. */
export const refusalLine = (what: string, e: Error) => `${what}: ${e.message.split('\n')[0]}`;

export const netnsName = (netns: Netns) => netns.name || netns.inode;
