// SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0)
/*
 * fentry observer for a kernel function taking an skb: a BPF trampoline
 * calls it with the function's arguments, BTF-typed, so it reads fields as
 * cheaply as a tracepoint does. One instance per function (a trampoline
 * program is loaded for its target); user space sets the target and the
 * skb's argument position. Its exit (--output-retval) sends what the function
 * returned, tied to the entry's record (include/sections/retval.h); there
 * user space sets the function's argument count in CONFIG.skb_arg: the return
 * value follows the arguments.
 */
/* A tracing program: it may print the skb from BTF (--output-skb). */
#define PKTPATH_TRACING 1
#include "include/observe.h"
#include "include/args.h"

SEC("fentry")
int pktpath_fentry(__u64 *ctx)
{
	struct sk_buff *skb = (struct sk_buff *)ctx_arg(ctx, CONFIG.skb_arg);
	if (!skb)
		return 0;
	struct site site = {
		.point_id = CONFIG.point_id,
		.ctx = ctx,
		.flags = EVENT_HAS_FUNC,
		.func_ip = TRAMPOLINE_FUNC_IP(ctx),
		.stack_ok = true,
	};
	/* --filter-non-skb-funcs: this CPU is in a wanted skb's function until its fexit (window.h). */
	if (observe(skb, &site) && (CONFIG.flags & CONFIG_WINDOW))
		window_open(skb);
	return 0;
}

SEC("fexit")
int pktpath_fexit(__u64 *ctx)
{
	retval_send(bpf_get_func_ip(ctx), ctx_arg(ctx, CONFIG.skb_arg));
	return 0;
}
