// SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0)
/*
 * One generic observer for every skb tracepoint. User space instantiates it
 * once per tracepoint: it reads the tracepoint's prototype from the running
 * kernel's BTF (btf_trace_<name>), sets the attach target and tells the probe
 * which argument holds the skb, the drop reason and the caller. Branches for
 * other argument positions are dead code the verifier never walks.
 */
#include "include/observe.h"
#include "include/args.h"


SEC("tp_btf")
int pktpath_tp(__u64 *ctx)
{
	struct sk_buff *skb = (struct sk_buff *)ctx_arg(ctx, CONFIG.skb_arg);
	if (!skb)
		return 0;

	struct site site = { .ctx = ctx, .stack_ok = true };
	if (CONFIG.reason_arg >= 0) {
		site.drop_reason = (__u32)ctx_arg(ctx, CONFIG.reason_arg);
		site.flags |= EVENT_HAS_REASON;
	}
	if (CONFIG.location_arg >= 0) {
		site.caller = ctx_arg(ctx, CONFIG.location_arg);
		site.flags |= EVENT_HAS_CALLER;
	}
	if (CONFIG.dev_arg >= 0)
		site.dev = (struct net_device *)ctx_arg(ctx, CONFIG.dev_arg);
	observe(skb, &site);
	return 0;
}
