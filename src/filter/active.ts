/** The filter of a run, resolved against this system: what the probes are loaded with. */
import type { Netns } from '../kernel/netns.js';
import type { CompiledFilter } from './expression.js';
import type { CompiledSkbExpr } from './skb-expr.js';
import type { InnerFilter } from './inner-packet.js';

export interface ActiveFilter {
  /** The pcap filter, null when there is no expression. */
  compiled: CompiledFilter | null;
  /** The one namespace the probes keep (--filter-netns given once, alone); null: the probes keep any. */
  netns: Netns | null;
  /**
   * Several namespaces or pods (--filter-netns more than once, --filter-pod):
   * the trace follows only these and user space keeps only their events. Null
   * when the selection is the probes' alone (none, or one namespace).
   */
  only: { namespaces: Netns[]; pods: Array<{ namespace: string; name: string }> } | null;
  /** The device of --filter-ifname in that namespace, 0 for any. */
  ifindex: number;
  ifname: string | null;
  mark: { value: number; mask: number } | null;
  /** --filter-skb-expr, compiled against this kernel's BTF; null when not given. */
  skbExpr: CompiledSkbExpr | null;
  /** --filter-xdp-expr, compiled against this kernel's BTF (xdp_buff); null when not given. */
  xdpExpr?: CompiledSkbExpr | null;
  /** The inner-packet filters, compiled; null when neither is given. */
  inner: InnerFilter | null;
  trackSkb: boolean;
  /** --filter-track-skb-by-stackid. */
  trackStack?: boolean;
}
