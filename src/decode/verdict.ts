/**
 * The verdict section: what the programs at a tc hook did with the skb —
 * passed it, dropped it, redirected it (peer, neighbour or plain) — and which
 * programs were there. Told by a traced program's exit (struct
 * verdict_section: what it returned and, for a redirect, the target the
 * kernel holds for it) or inferred from the skb's next observation
 * (src/trace/verdicts.ts). Written for people by src/output/verdict.ts.
 */
import { EVENT_LAYOUT } from './layout.js';

export interface RawVerdict {
  /** TC_ACT_* (legacy tc) or TCX_* (tcx): the same numbers. */
  retval: number;
  /** TC_ACT_REDIRECT: the target device's ifindex, 0 when the kernel did not say. */
  redirectIfindex: number;
  /** BPF_F_INGRESS, BPF_F_NEIGH, BPF_F_PEER. */
  redirectFlags: number;
}

const VF = EVENT_LAYOUT.verdict_section.fields;

/** Decodes the verdict section at `at`. */
export function decodeVerdict(view: DataView, at: number): RawVerdict {
  return {
    retval: view.getInt32(at + VF.retval, true),
    redirectIfindex: view.getUint32(at + VF.redirect_ifindex, true),
    redirectFlags: view.getUint32(at + VF.redirect_flags, true),
  };
}

/** next: the program let the next one decide (TC_ACT_UNSPEC, TCX_NEXT). */
export type VerdictAction = 'pass' | 'next' | 'drop' | 'redirect' | 'stolen' | 'unknown';
/** peer: bpf_redirect_peer (into the peer's namespace, no transmit); neigh: bpf_redirect_neigh; plain: bpf_redirect. */
export type RedirectKind = 'peer' | 'neigh' | 'plain' | 'unknown';

export interface VerdictTarget {
  kind: RedirectKind;
  /** Where the skb went: the device's tc ingress or its transmit path. */
  direction: 'ingress' | 'egress';
  ifindex: number;
  ifname: string;
  netns: number;
  netnsName: string;
}

export interface TcVerdict {
  action: VerdictAction;
  target: VerdictTarget | null;
  /** The programs that decided, in the order they run (more than one: one of them did it). */
  by: Array<{ id: number; name: string }>;
  /** The kernel's drop reason, for drops. */
  reason: string | null;
  /**
   * False when pktpath's observers on both sides of the programs saw it
   * (passed: seen after them), true when it is read from the skb's next
   * observation (a drop, a redirect, a verdict of programs pktpath cannot
   * follow in the chain).
   */
  inferred: boolean;
  /** How it was told, for a person: e.g. "next seen at tc:ingress of eth0@pod-b, no transmit between". */
  evidence: string;
}

/** tc's return codes (TC_ACT_*; tcx's TCX_* are the same numbers). */
const TC_ACT: Readonly<Record<number, { name: string; action: VerdictAction }>> = {
  [-1]: { name: 'TC_ACT_UNSPEC', action: 'next' },
  0: { name: 'TC_ACT_OK', action: 'pass' },
  1: { name: 'TC_ACT_RECLASSIFY', action: 'unknown' },
  2: { name: 'TC_ACT_SHOT', action: 'drop' },
  3: { name: 'TC_ACT_PIPE', action: 'next' },
  4: { name: 'TC_ACT_STOLEN', action: 'stolen' },
  5: { name: 'TC_ACT_QUEUED', action: 'stolen' },
  6: { name: 'TC_ACT_REPEAT', action: 'unknown' },
  7: { name: 'TC_ACT_REDIRECT', action: 'redirect' },
  8: { name: 'TC_ACT_TRAP', action: 'stolen' },
};
/** bpf_redirect_info's BPF_F_INGRESS (uapi); BPF_F_NEIGH and BPF_F_PEER are the kernel's own, given by the caller. */
const BPF_F_INGRESS = 1;

/** XDP's return codes (enum xdp_action). */
const XDP_ACTION: Readonly<Record<number, { name: string; action: VerdictAction }>> = {
  0: { name: 'XDP_ABORTED', action: 'drop' },
  1: { name: 'XDP_DROP', action: 'drop' },
  2: { name: 'XDP_PASS', action: 'pass' },
  3: { name: 'XDP_TX', action: 'redirect' },
  4: { name: 'XDP_REDIRECT', action: 'redirect' },
};

/**
 * The verdict a traced tc or XDP program returned (its exit's verdict section).
 * `device`: the name and namespace of an ifindex in the event's namespace,
 * for the redirect target (a peer redirect goes to that device's peer);
 * `flags`: the running kernel's values of BPF_F_NEIGH and BPF_F_PEER.
 */
export function returnedVerdict(raw: RawVerdict, by: { id: number; name: string; hook: 'tc' | 'xdp' },
  device: (ifindex: number) => { ifname: string; netns: number; netnsName: string },
  flags: { neigh: number; peer: number }): TcVerdict {
  const code = (by.hook === 'xdp' ? XDP_ACTION : TC_ACT)[raw.retval];
  const action = code?.action ?? 'unknown';
  let target: VerdictTarget | null = null;
  if (action === 'redirect' && raw.redirectIfindex !== 0) {
    const f = raw.redirectFlags;
    target = {
      kind: f & flags.peer ? 'peer' : f & flags.neigh ? 'neigh' : 'plain',
      direction: f & (flags.peer | BPF_F_INGRESS) ? 'ingress' : 'egress',
      ifindex: raw.redirectIfindex,
      ...device(raw.redirectIfindex),
    };
  }
  const returned = `returned ${code?.name ?? raw.retval}`;
  return {
    action, target, by: [{ id: by.id, name: by.name }], reason: null, inferred: false,
    evidence: target ? `${returned} to ${target.kind === 'peer' ? 'the peer of ' : ''}${target.ifname || `if${target.ifindex}`}` : returned,
  };
}
