// SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0)
/*
 * Trampoline programs that widen what --filter-track-skb follows, where the
 * kernel allows fentry and fexit:
 * - the exit of skb_clone, skb_copy, __pskb_copy_fclone, skb_copy_expand:
 *   the skb made is followed when its source is (track.h, track_copy);
 *   user space sets CONFIG.skb_arg to where the return value is;
 * - functions without an skb (--filter-non-skb-funcs): reported while a
 *   wanted skb's function runs on the CPU, tied to that skb (window.h);
 * - the exit of each observed skb function, which closes that window;
 *   CONFIG.skb_arg is the skb's argument.
 * The skb comes from a map or an untyped return value: fields are read with
 * bpf_probe_read_kernel (include/kread.h).
 */
#define PKTPATH_UNTYPED 1
/* A tracing program: it may print the skb from BTF (--output-skb). */
#define PKTPATH_TRACING 1
#include "include/observe.h"
#include "include/args.h"

SEC("fexit")
int pktpath_copy_exit(__u64 *ctx)
{
	if (CONFIG.flags & CONFIG_TRACK)
		track_copy((struct sk_buff *)ctx_arg(ctx, 0), (struct sk_buff *)ctx_arg(ctx, CONFIG.skb_arg));
	return 0;
}

SEC("fentry")
int pktpath_under(__u64 *ctx)
{
	struct sk_buff *skb = (struct sk_buff *)window_skb();
	if (!skb)
		return 0;
	struct site site = {
		.point_id = CONFIG.point_id,
		.ctx = ctx,
		.flags = EVENT_HAS_FUNC,
		.func_ip = TRAMPOLINE_FUNC_IP(ctx),
		.stack_ok = true,
		.under = true,
	};
	observe(skb, &site);
	return 0;
}

SEC("fexit")
int pktpath_window_exit(__u64 *ctx)
{
	window_close(ctx_arg(ctx, CONFIG.skb_arg));
	return 0;
}
