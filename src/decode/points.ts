/**
 * The names of observation points: what a record's point id, hook and family
 * are called (`netif_receive_skb`, `tc:ingress`, `nf:ipv4:pre_routing`), and
 * which points end an skb. The same names everywhere: --filter-func, `pktpath
 * list`, text, JSON, pcapng comments.
 */
import type { NfFamily, NfHookName, TcDirection } from '../bpf/link.js';
import { EventFlags } from './layout.js';

export type { NfFamily, NfHookName, TcDirection };

/** The kind of probe behind a point (JSON `probe.type`). */
export type ProbeType = 'tracepoint' | 'tc' | 'netfilter' | 'kprobe' | 'kretprobe' | 'fentry' | 'fexit' | 'nft';

export const TC_DIRECTIONS: readonly TcDirection[] = ['ingress', 'egress'];
export const NF_FAMILIES: readonly NfFamily[] = ['ipv4', 'ipv6'];
/** Hooks in kernel order (NF_INET_PRE_ROUTING = 0 …), so a hook number indexes this list. */
export const NF_HOOKS: readonly NfHookName[] = ['pre_routing', 'local_in', 'forward', 'local_out', 'post_routing'];
const NF_FAMILY_BY_PROTO: Readonly<Record<number, NfFamily>> = { 2: 'ipv4', 10: 'ipv6' };

/** Points where an skb ends (freed): a followed skb is forgotten there, a grouped packet is complete. */
export const FREEING_POINTS: ReadonlySet<string> = new Set(['kfree_skb', 'consume_skb']);

export function tcPointName(direction: TcDirection): string {
  return `tc:${direction}`;
}

export function nfPointName(family: NfFamily, hook: NfHookName): string {
  return `nf:${family}:${hook}`;
}

/** What a point id stands for, as given when its probe was attached. */
export interface PointInfo {
  type: ProbeType;
  name: string;
  /** Appended to the names of netfilter hooks (`:nat`: the observer after NAT). */
  suffix?: string;
  /** tc: the observer first in the tcx chain (before other programs) or last. */
  position?: 'first' | 'last';
  /** One program for many functions (kprobes): each record names its function by address. */
  byAddress?: boolean;
  /** A point about a flow or a neighbour, not an skb (route and neighbour tracepoints): its records' tuples are not the skb's. */
  flow?: boolean;
  /** The exit of a traced BPF program: whose verdict its records carry. */
  program?: { id: number; name: string; hook: 'tc' | 'xdp' };
}

/** The name of the point that wrote a record: tc and netfilter probes name their hook in each record. */
export function recordPointName(info: PointInfo, flags: number, hook: number, pf: number): string {
  if (flags & EventFlags.nfHook) {
    const family = NF_FAMILY_BY_PROTO[pf];
    const name = NF_HOOKS[hook];
    return (family && name ? nfPointName(family, name) : `nf:${pf}:${hook}`) + (info.suffix ?? '');
  }
  if (flags & EventFlags.tcDir) return tcPointName(hook === 0 ? 'ingress' : 'egress');
  return info.name;
}

/**
 * Frees the kernel reports with a drop reason on a normal path: not drops.
 * `caller`: the freeing function, as symbolized (`ping_rcv+0xb3`).
 */
const EXPECTED_FREES: ReadonlyArray<{ reason: string; caller: string; why: string }> = [
  // An echo reply for a raw socket (ping run as root) found no ping socket: the raw socket had its copy already.
  { reason: 'NO_SOCKET', caller: 'ping_rcv', why: 'an echo reply no ping socket wanted; a raw socket had its copy' },
];

/** Why a kfree_skb with a reason is a normal end, or null when it is a drop. */
export function expectedFree(func: string, dropReason: string | null, caller: string | null): string | null {
  if (func !== 'kfree_skb' || dropReason === null || caller === null) return null;
  const fn = caller.replace(/\+0x[0-9a-f]+.*$/, '');
  return EXPECTED_FREES.find((x) => x.reason === dropReason && x.caller === fn)?.why ?? null;
}
