// SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0)
/*
 * Observers of tc programs other tools loaded (--filter-trace-tc): trampoline
 * programs run at the entry (fentry) and the exit (fexit) of one such
 * program, loaded for it (user space names the target program and its main
 * function). The kernel hands a tracing program a tc program's
 * struct __sk_buff * as the struct sk_buff it is, BTF-typed; the exit also
 * gets the verdict the program returned, after its argument.
 */
#include "include/observe.h"
#include "include/args.h"

SEC("fentry")
int pktpath_prog_entry(__u64 *ctx)
{
	struct sk_buff *skb = (struct sk_buff *)CTX_ARG(ctx, 0);
	if (!skb)
		return 0;
	struct site site = { .ctx = ctx, .stack_ok = true };
	observe(skb, &site);
	return 0;
}

SEC("fexit")
int pktpath_prog_exit(__u64 *ctx)
{
	struct sk_buff *skb = (struct sk_buff *)CTX_ARG(ctx, 0);
	if (!skb)
		return 0;
	struct site site = {
		.ctx = ctx,
		.stack_ok = true,
		.verdict = true,
		.retval = (__s32)CTX_ARG(ctx, 1),
	};
	observe(skb, &site);
	return 0;
}
