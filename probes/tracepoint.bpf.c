// SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0)
/*
 * One generic observer for every skb tracepoint. User space instantiates it
 * once per tracepoint: it reads the tracepoint's prototype from the running
 * kernel's BTF (btf_trace_<name>), sets the attach target and tells the probe
 * which argument holds the skb, the drop reason and the caller. Branches for
 * other argument positions are dead code the verifier never walks.
 */
#include "include/observe.h"

/* Each argument is loaded with its own fixed-offset instruction: the verifier
 * refuses context loads through a computed pointer, which is what the
 * compiler would otherwise make of a switch over the index. */
#define CTX_ARG(ctx, i) ({ __u64 v; asm volatile("%0 = *(u64 *)(%1 + " #i " * 8)" : "=r"(v) : "r"(ctx)); v; })

static __always_inline __u64 tp_arg(__u64 *ctx, int n)
{
	switch (n) {
	case 0: return CTX_ARG(ctx, 0);
	case 1: return CTX_ARG(ctx, 1);
	case 2: return CTX_ARG(ctx, 2);
	case 3: return CTX_ARG(ctx, 3);
	case 4: return CTX_ARG(ctx, 4);
	default: return 0;
	}
}

SEC("tp_btf")
int pktpath_tp(__u64 *ctx)
{
	struct sk_buff *skb = (struct sk_buff *)tp_arg(ctx, CONFIG.skb_arg);
	if (!skb)
		return 0;

	struct site site = { .ctx = ctx, .stack_ok = true };
	if (CONFIG.reason_arg >= 0) {
		site.drop_reason = (__u32)tp_arg(ctx, CONFIG.reason_arg);
		site.flags |= EVENT_HAS_REASON;
	}
	if (CONFIG.location_arg >= 0) {
		site.caller = tp_arg(ctx, CONFIG.location_arg);
		site.flags |= EVENT_HAS_CALLER;
	}
	if (CONFIG.dev_arg >= 0)
		site.dev = (struct net_device *)tp_arg(ctx, CONFIG.dev_arg);
	observe(skb, &site);
	return 0;
}
