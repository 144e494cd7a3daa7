// SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0)
/*
 * Observers of tc and XDP programs other tools loaded (--filter-trace-tc,
 * --filter-trace-xdp): trampoline programs run at the entry (fentry) and the
 * exit (fexit) of one such program, loaded for it (user space names the
 * target program and its main function). The kernel hands a tracing
 * program a tc program's struct __sk_buff * as the struct sk_buff it is,
 * BTF-typed; the exit also gets the verdict the program returned, after its
 * argument.
 */
#include "include/observe.h"
#include "include/args.h"

#define TC_ACT_REDIRECT 7 /* uapi linux/pkt_cls.h: a macro, not in BTF */

/* The site of a traced program's entry, or of its exit: the verdict it
 * returned follows its one argument; `redirect`: the code that means one. */
static __always_inline struct site program_site(__u64 *ctx, bool exit, __s32 redirect)
{
	struct site site = { .point_id = CONFIG.point_id, .ctx = ctx, .stack_ok = true };
	if (exit) {
		site.verdict = true;
		site.retval = (__s32)CTX_ARG(ctx, 1);
		site.redirected = site.retval == redirect;
	}
	return site;
}

static __always_inline int on_tc_program(__u64 *ctx, bool exit)
{
	struct sk_buff *skb = (struct sk_buff *)CTX_ARG(ctx, 0);
	if (!skb)
		return 0;
	struct site site = program_site(ctx, exit, TC_ACT_REDIRECT);
	observe(skb, &site);
	return 0;
}

/* The kernel hands a tracing program an XDP program's struct xdp_md * as the
 * struct xdp_buff it is. */
static __always_inline int on_xdp_program(__u64 *ctx, bool exit)
{
	struct xdp_buff *xdp = (struct xdp_buff *)CTX_ARG(ctx, 0);
	if (!xdp)
		return 0;
	struct site site = program_site(ctx, exit, XDP_REDIRECT);
	observe_frame(xdp, &site);
	return 0;
}

SEC("fentry")
int pktpath_prog_entry(__u64 *ctx)
{
	return on_tc_program(ctx, false);
}

SEC("fexit")
int pktpath_prog_exit(__u64 *ctx)
{
	return on_tc_program(ctx, true);
}

SEC("fentry")
int pktpath_xdp_entry(__u64 *ctx)
{
	return on_xdp_program(ctx, false);
}

SEC("fexit")
int pktpath_xdp_exit(__u64 *ctx)
{
	return on_xdp_program(ctx, true);
}
