/** The observation points pktpath knows, by family, and where netfilter observers sit among the kernel's own hooks. */
import { RoutePointKind } from '../decode/layout.js';
import type { NfHookName } from '../decode/points.js';

/**
 * Tracepoints that carry an skb, in the order a packet usually meets them.
 * Their prototypes (where the skb, drop reason and caller are) are read from
 * the running kernel's BTF, never assumed.
 */
export const SKB_TRACEPOINTS: readonly string[] = [
  'net_dev_queue',
  'qdisc_enqueue',
  'qdisc_dequeue',
  'net_dev_start_xmit',
  'net_dev_xmit',
  'netif_rx',
  'napi_gro_receive_entry',
  'netif_receive_skb',
  'skb_copy_datagram_iovec',
  'tcp_retransmit_skb',
  'tcp_send_reset',
  'tcp_bad_csum',
  'udp_fail_queue_rcv_skb',
  'sock_rcvqueue_full',
  'icmp_send',
  'kfree_skb',
  'consume_skb',
];

/** Right after conntrack (-200), before DNAT (-100): the state conntrack gave, the tuple before NAT. */
export const NF_PRIORITY = -199;
/**
 * How far a session may move from its priority when another (a second
 * pktpath) holds it: still after conntrack and before NAT, or after NAT and
 * before the filter tables (-99 … -1) and conntrack's confirmation (101 … 199).
 */
export const NF_PRIORITY_LAST = -101;

/**
 * With --output-ct, a second observer per hook right after NAT: after DNAT
 * (-100) on the way in and out, after SNAT (100) on the way out and to local
 * sockets. Its points are named like the hook with ":nat" appended.
 */
export const NF_NAT_PRIORITY: Partial<Record<NfHookName, number>> = {
  pre_routing: -99,
  local_out: -99,
  post_routing: 101,
  local_in: 101,
};
export const NF_NAT_PRIORITY_LAST: Partial<Record<NfHookName, number>> = {
  pre_routing: -1,
  local_out: -1,
  post_routing: 199,
  local_in: 199,
};

/**
 * The tracepoints of route and neighbour decisions (--output-route,
 * --output-neigh): no skb, a flow or a neighbour (probes/route.bpf.c). Each
 * with its point name (system:event) and what the probe makes of its
 * arguments; those the kernel lacks are said and left out.
 */
export const DECISION_TRACEPOINTS: ReadonlyArray<{ tracepoint: string; name: string; kind: number; section: 'route' | 'neigh' }> = [
  { tracepoint: 'fib_table_lookup', name: 'fib:fib_table_lookup', kind: RoutePointKind.fib4, section: 'route' },
  { tracepoint: 'fib6_table_lookup', name: 'fib6:fib6_table_lookup', kind: RoutePointKind.fib6, section: 'route' },
  { tracepoint: 'neigh_create', name: 'neigh:neigh_create', kind: RoutePointKind.neighCreate, section: 'neigh' },
  { tracepoint: 'neigh_update', name: 'neigh:neigh_update', kind: RoutePointKind.neighUpdate, section: 'neigh' },
  { tracepoint: 'neigh_update_done', name: 'neigh:neigh_update_done', kind: RoutePointKind.neighUpdateDone, section: 'neigh' },
  { tracepoint: 'neigh_timer_handler', name: 'neigh:neigh_timer_handler', kind: RoutePointKind.neighTimer, section: 'neigh' },
  { tracepoint: 'neigh_event_send_done', name: 'neigh:neigh_event_send_done', kind: RoutePointKind.neighSendDone, section: 'neigh' },
  { tracepoint: 'neigh_event_send_dead', name: 'neigh:neigh_event_send_dead', kind: RoutePointKind.neighSendDead, section: 'neigh' },
  { tracepoint: 'neigh_cleanup_and_release', name: 'neigh:neigh_cleanup_and_release', kind: RoutePointKind.neighRelease, section: 'neigh' },
];
