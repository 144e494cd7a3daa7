/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * --filter-skb-expr: a region of no-op instructions that user space overwrites
 * before load with the expression compiled against the kernel's BTF
 * (src/filter/skb-expr.ts), as the pcap filter's regions are. It reads the
 * skb's fields with bpf_probe_read_kernel only, so every program type runs it.
 */
#ifndef PKTPATH_SKB_EXPR_H
#define PKTPATH_SKB_EXPR_H

#include "filter.h"

#ifndef SKB_EXPR_REGION_INSNS
#define SKB_EXPR_REGION_INSNS 256
#endif
#define SKB_EXPR_MAGIC 0x70706b65 /* marks the start of the region */
#define SKB_EXPR_SCRATCH_BYTES 32

/* r8 = the skb, r9 = the scratch; the region leaves 1 (match) or 0 in r0.
 * As with FILTER_REGION, only the two operands escape the clobbers. */
static __always_inline bool skb_expr_match(struct sk_buff *skb)
{
	__u64 scratch[SKB_EXPR_SCRATCH_BYTES / 8];
	unsigned long r0 = FILTER_REGION_SIZED(SKB_EXPR_MAGIC, SKB_EXPR_REGION_INSNS, skb, scratch);
	return r0 != 0;
}

/* --filter-xdp-expr: the same language on a traced XDP program's xdp_buff
 * (r8), in a region of its own; only XDP program probes have it. */
#define XDP_EXPR_MAGIC 0x70707865
static __always_inline bool xdp_expr_match(struct xdp_buff *xdp)
{
	__u64 scratch[SKB_EXPR_SCRATCH_BYTES / 8];
	unsigned long r0 = FILTER_REGION_SIZED(XDP_EXPR_MAGIC, SKB_EXPR_REGION_INSNS, xdp, scratch);
	return r0 != 0;
}

#endif
