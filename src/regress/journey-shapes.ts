/**
 * The shapes of journeys (./journeys.ts): a packet's hops as a trace shows
 * them, and the normalised records `normalize` writes and `diff`/`assert` read.
 */
import type { JsonRecord } from '../output/json.js';

/** A tuple; ports as their decimal text. */
export interface FlowTuple {
  proto: string;
  saddr: string;
  sport: string;
  daddr: string;
  dport: string;
  ported: boolean;
}

/** One point a packet passed, with raw values. */
export interface Hop {
  /** The observation point. */
  at: string;
  /** Namespace name (`self`: pktpath's own, unnamed one; `unnamed`: another). */
  netns: string;
  /** Device name; '' where the point names none. */
  iface: string;
  /** The node it was seen on (merged traces). */
  node?: string;
  /** The pod whose namespace it is, `NAMESPACE/NAME`, where the trace named one. */
  pod?: string;
  /** Conntrack state where the point knows it: NEW, ESTABLISHED/REPLY, UNTRACKED, NONE (a lookup found no entry). */
  ct?: string;
  /** The tuple changed since the hop before (NAT, encapsulation): from what, to what. */
  rewrite?: { from: FlowTuple; to: FlowTuple };
  /** At tc hooks with other programs: what they did (from the event's verdict section). */
  verdict?: HopVerdict;
  /** An nft rule evaluation (--output-nft): `inet filter input "udp dport 9999 drop" → DROP`. */
  nft?: string;
}

export interface HopVerdict {
  action: string;
  kind?: string;
  /** Where a redirect sent it: device and namespace (raw name). */
  iface?: string;
  netns?: string;
  by: string[];
}

export interface Ending {
  /**
   * dropped: kfree_skb with a reason; ended: any other end — freed by
   * consume_skb or kfree_skb without a reason, freed where no tracepoint
   * sees it, or still in flight when the trace stopped. Which of those a
   * delivered packet takes depends on timing (was its reader waiting?), not
   * on the datapath, so they are one.
   */
  how: 'dropped' | 'ended';
  /** dropped: the kernel's drop reason, where and by which function. */
  reason?: string;
  netns?: string;
  iface?: string;
  /** The node it was dropped on (merged traces). */
  node?: string;
  by?: string;
  /** What explain says of it (./explain/): its cause code, in the normalised form; absent when it says nothing. */
  cause?: string;
}

/** A journey whose end was seen (or the trace ended). */
export interface Journey {
  time: string;
  first: FlowTuple | null;
  /** The tuple at the last point that saw one: after every rewrite. */
  last: FlowTuple | null;
  /** TCP flags as first seen ('' otherwise). */
  flags: string;
  /** The conntrack entry's original direction, where a point showed it: names the connection. */
  ctOrig: FlowTuple | null;
  hops: Hop[];
  end: Ending;
  /** Its records as the trace has them, when the builder was asked to keep them (explain). */
  records?: JsonRecord[];
}

/** A hop as normalised output writes it. */
export interface NormalizedHop {
  at: string;
  netns: string;
  iface: string;
  /** The node (merged traces), a placeholder where node names vary (--var-node). */
  node?: string;
  ct?: string;
  /** `DNAT a → b`, `SNAT a → b`, both, or `tuple A → B` when the packet became another (encapsulation). */
  nat?: string;
  /** What other tc programs did: `REDIRECT peer → eth0@$n1 by cni_redirect`, `DROP by cni_policy`. */
  verdict?: string;
  /** An nft rule evaluation: `inet cni forward "udp dport 8888 drop" → DROP`. */
  nft?: string;
}

/** One distinct path of one kind of packet in one flow, normalised. */
export interface NormalizedPacket {
  v: 1;
  type: 'packet';
  /** The connection or flow, named from its opening side: `tcp 192.0.2.1:$p1 > 192.0.2.2:80`. */
  flow: string;
  /** `>` from the flow's opening side, `<` from the other. */
  dir: '>' | '<';
  /** What kind of packet (packetKind): SYN, SYN|ACK, RST, or '' for the rest. */
  flags: string;
  /** Its tuple, as first seen. */
  tuple: string;
  hops: NormalizedHop[];
  end: Ending;
  /** How many packets took this path: counted (written with --counts), not compared. */
  repeat: number;
}

export interface NormalizedHeader {
  v: 1;
  type: 'normalized';
  /** From the recorded trace's header, when it had one. */
  kernel: string | null;
  command: string[] | null;
  /** What was made a placeholder. */
  vars: string[];
  packets: number;
  /** Records the ring lost while recording: a trace with losses may miss hops. */
  lost: number;
}
