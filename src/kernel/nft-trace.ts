/**
 * nftables' trace events: what the `nftrace` netlink group of a namespace
 * reports (NFT_MSG_TRACE) for the packets whose `nftrace` is set, and the
 * socket pktpath reads them from.
 */
import { NETLINK_NETFILTER, NetlinkSocket, attrStr, attrs } from './netlink.js';
import { type Netns, withNetns } from './netns.js';
import { FAMILY_NAMES, NFNL_SUBSYS_NFTABLES } from './nftables.js';

const NFT_MSG_TRACE = 17;
const NFNLGRP_NFTRACE = 9;
const A = {
  table: 1, chain: 2, ruleHandle: 3, type: 4, verdict: 5, id: 6, networkHeader: 8, transportHeader: 9,
  iif: 10, oif: 12, mark: 14, nfproto: 15, policy: 16,
} as const;
const VERDICT_CODE = 1;
const VERDICT_CHAIN = 2;
const TRACE_TYPES: Readonly<Record<number, NftTraceType>> = { 1: 'policy', 2: 'return', 3: 'rule' };

export type NftTraceType = 'rule' | 'return' | 'policy';

/** NF_* and NFT_* verdict codes as nft prints them. */
const VERDICTS: Readonly<Record<number, string>> = {
  0: 'drop', 1: 'accept', 2: 'stolen', 3: 'queue', 4: 'repeat', [-1]: 'continue', [-2]: 'break', [-3]: 'jump',
  [-4]: 'goto', [-5]: 'return',
};

/** One evaluation nftables reports: a rule that matched, a chain's policy, or a return from a chain. */
export interface NftTrace {
  /**
   * The kernel's id for the packet's trace (a hash of the skb's address, flow hash and input device): the same
   * at every hook the packet passes, and again for a later packet of the flow that gets the same skb.
   */
  id: number;
  family: string;
  table: string;
  chain: string;
  /** The rule's handle; null for a policy or return. */
  handle: number | null;
  type: NftTraceType;
  /** e.g. accept, drop, continue, jump; for jumps and gotos `target` names the chain. */
  verdict: string;
  target: string | null;
  /** NFPROTO of the packet (2 IPv4, 10 IPv6). */
  nfproto: number;
  iif: number;
  oif: number;
  mark: number;
  /** The packet's headers from the network header on, as the kernel copied them. */
  network: Buffer | null;
  transport: Buffer | null;
}

const be32 = (b: Buffer | undefined) => (b && b.length >= 4 ? b.readUInt32BE(0) : 0);

/** Parses the payload of one NFT_MSG_TRACE message (nfgenmsg, then big-endian attributes). */
export function parseTrace(payload: Buffer): NftTrace | null {
  const a = attrs(payload, 4);
  const type = TRACE_TYPES[be32(a.get(A.type))];
  if (type === undefined) return null;
  let verdict = type === 'return' ? 'return' : 'continue';
  let target: string | null = null;
  const v = a.get(A.verdict);
  if (v) {
    const va = attrs(v);
    const code = va.get(VERDICT_CODE);
    if (code) verdict = VERDICTS[code.readInt32BE(0)] ?? `verdict#${code.readInt32BE(0)}`;
    target = attrStr(va.get(VERDICT_CHAIN)) ?? null;
  } else if (type === 'policy') {
    verdict = VERDICTS[be32(a.get(A.policy))] ?? 'accept';
  }
  const handle = a.get(A.ruleHandle);
  return {
    id: be32(a.get(A.id)),
    family: FAMILY_NAMES[payload.readUInt8(0)] ?? `family#${payload.readUInt8(0)}`,
    table: attrStr(a.get(A.table)) ?? '',
    chain: attrStr(a.get(A.chain)) ?? '',
    handle: handle && handle.length >= 8 ? Number(handle.readBigUInt64BE(0)) : null,
    type,
    verdict,
    target,
    nfproto: be32(a.get(A.nfproto)),
    iif: be32(a.get(A.iif)),
    oif: be32(a.get(A.oif)),
    mark: be32(a.get(A.mark)),
    network: a.get(A.networkHeader) ?? null,
    transport: a.get(A.transportHeader) ?? null,
  };
}

/**
 * A trace monitor's receive queue, as asked of the kernel (which doubles it
 * for its bookkeeping: 16 MiB, as much as the ring's default). The kernel
 * counts each trace message as its whole skb, 1,280 bytes here whatever the
 * message says: ~13,000 messages, 0.1 s of 20,000 traced packets a second at
 * six messages each, so that a pump held up by a collection, a chain listed
 * or a full ring loses nothing. It is memory only while the queue is that
 * full, and one such queue per traced namespace is the bound: the default
 * (212 KiB, ~160 messages) overflowed in one pump under a flood.
 */
export const TRACE_RECEIVE_BUFFER = 8 << 20;

/** A socket in a namespace's `nftrace` group: what nftables traces there. */
export class NftTraceMonitor {
  /** Trace messages read since the monitor opened. */
  read = 0;

  private constructor(private readonly sock: NetlinkSocket, readonly netns: Netns) {}

  static open(netns: Netns): NftTraceMonitor {
    const sock = withNetns(netns.path, () => NetlinkSocket.open(NETLINK_NETFILTER, [NFNLGRP_NFTRACE]));
    try {
      sock.setReceiveBuffer(TRACE_RECEIVE_BUFFER);
      return new NftTraceMonitor(sock, netns);
    } catch (e) {
      sock.close();
      throw e;
    }
  }

  /** The socket's fd: readable when trace events arrived. */
  get pollFd(): number {
    return this.sock.pollFd;
  }

  /** The trace events that arrived since the last call. */
  poll(): NftTrace[] {
    const out: NftTrace[] = [];
    for (const m of this.sock.poll()) {
      if (m.type !== ((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_TRACE)) continue;
      this.read++;
      const t = parseTrace(m.payload);
      if (t) out.push(t);
    }
    return out;
  }

  /**
   * Trace messages the kernel dropped for this monitor since it opened,
   * because its queue was full: exact (one per message, see drops()).
   */
  lost(): number {
    return this.sock.drops();
  }

  close(): void {
    this.sock.close();
  }
}
