// SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0)
/*
 * tc observer: attached at ingress and egress of each traced device with tcx
 * links, last in the chain, and, where other programs run there, first too
 * (one instance for each place), so what those programs did shows. It never
 * changes the verdict.
 */
/* The conntrack lookup kfuncs are for tc programs. */
#define PKTPATH_CT_LOOKUP 1
#include "include/observe.h"

#define TC_NEXT (-1) /* TCX_NEXT and TC_ACT_UNSPEC: let the next program decide */

extern void *bpf_cast_to_kern_ctx(void *obj) __ksym;

SEC("tc")
int pktpath_tc(struct __sk_buff *ctx)
{
	struct sk_buff *skb = bpf_cast_to_kern_ctx(ctx);
	bool ingress = BPF_CORE_READ_BITFIELD(skb, tc_at_ingress);
	struct site site = {
		.ctx = ctx,
		.flags = EVENT_HAS_TC_DIR,
		.ct = SITE_CT_LOOKUP,
		.hook = ingress ? 0 : 1,
		.l2_source = !ingress,
	};
	observe(skb, &site);
	return TC_NEXT;
}
