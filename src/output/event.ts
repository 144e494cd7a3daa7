/**
 * What the output pipeline is given: an observation of one packet at one
 * point, with the names a user reads (the session's enricher makes them from
 * decoded records; recorded fixtures are replayed as them).
 */
import type { CtInfo } from '../decode/ct.js';
import type { CapturedPacket } from '../decode/packet.js';
import type { ProbeType } from '../decode/points.js';
import type { Tuple } from '../decode/tuple.js';
import type { NftEvaluation } from './nft.js';
import type { SectionFields } from './sections/registry.js';
import type { TcVerdict } from '../decode/verdict.js';

export type { CtInfo, NftEvaluation, ProbeType, TcVerdict, Tuple };

/** A Kubernetes pod: its namespace, name and uid (checked as DNS-1123 names where they enter). */
export interface PodRef {
  namespace: string;
  name: string;
  uid: string;
}

/**
 * One observation. The optional sections' fields (those the run asks for:
 * --output-skb-queue, ...) come from their registry (SectionFields).
 */
export interface TraceEvent extends SectionFields {
  /** Wall-clock time, nanoseconds since the epoch. */
  timeNs: bigint;
  /** Nanoseconds since the trace started (for --timestamp relative). */
  sinceStartNs: bigint;
  skb: bigint;
  cpu: number;
  pid: number;
  comm: string;
  netns: number;
  /** Name under /run/netns, '' when it has none. */
  netnsName: string;
  /** The pod whose network namespace this is, as the container runtime names it; null (or absent) otherwise. */
  pod?: PodRef | null;
  mark: number;
  ifindex: number;
  /** Interface name in its namespace, '' when unknown. */
  ifname: string;
  /** Ethertype. */
  protocol: number;
  mtu: number;
  len: number;
  tuple: Tuple | null;
  /**
   * The tuple this skb had at the previous point that saw it, when it has
   * changed since (NAT, encapsulation, decapsulation); absent otherwise.
   */
  tupleBefore?: Tuple | null;
  /**
   * The VLAN ids the frame carries here, outer first (802.1ad, then 802.1Q):
   * from the frame, or beside it in the skb where the tag is offloaded. Null
   * (or absent) for an untagged frame.
   */
  vlan?: readonly number[] | null;
  /** Observation point, e.g. `netif_receive_skb`, `tc:ingress`, `nf:ipv4:pre_routing`. */
  func: string;
  probe: { type: ProbeType; name: string };
  /** Drop reason without the SKB_DROP_REASON_ prefix, for kfree_skb. */
  dropReason: string | null;
  /** Symbolized caller (e.g. the function that freed the skb), when known. */
  caller: string | null;
  /** Kernel stack, innermost first, when --output-stack. */
  stack: string[] | null;
  /**
   * The first bytes of the packet at this point, when packet capture is on
   * (--output-pcap). `l2` tells whether they start at the Ethernet header or
   * at the network header (points where no MAC header exists yet).
   */
  packet?: CapturedPacket | null;
  /**
   * Conntrack: the entry attached to the skb at netfilter hooks, or a lookup
   * of the packet's tuple at tc. Null (or absent) where the point cannot know,
   * or where conntrack is not active for the packet.
   */
  ct?: CtInfo | null;
  /**
   * At a tc hook where other programs run: what they did with the skb
   * (pass, drop, redirect), and whether that is observed or inferred.
   */
  verdict?: TcVerdict | null;
  /**
   * tc egress: the frame's Ethernet source is the device's own address (a
   * header the stack or the neighbour code built, not one carried over).
   */
  ownSrcMac?: boolean;
  /** Events of nftables' own tracing (--output-nft): the rule evaluation they report. */
  nft?: NftEvaluation | null;
  /** The node whose trace it comes from: present in merged traces (`pktpath merge`) only. */
  node?: string;
  /** The packet's journey across nodes, in merged traces: the events of one journey share it. */
  journey?: string;
}

/** Records the kernel could not hand over: the ring was full, or nftables' trace socket (`source: 'nft'`). */
export interface LostNotice {
  timeNs: bigint;
  /** Lost since the previous notice of its source. */
  count: number;
  /** Lost since the trace started, from its source. */
  total: number;
  /** Absent: the ring's records. */
  source?: 'nft';
}
