// SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0)
/*
 * Netfilter observers, two ways in:
 *  - pktpath_nf: a netfilter BPF program (6.4+), linked at each hook (IPv4
 *    and IPv6) of each traced namespace, after conntrack. It always accepts.
 *  - pktpath_nf_hook_exit: where the kernel has no netfilter links, fexit of
 *    nf_hook_slow(), which runs a hook's whole chain: it sees each packet
 *    the chain accepted, after conntrack and NAT, at hooks that have rules
 *    or conntrack (the kernel skips hooks that have none).
 * Both read the hook and family from the hook state, the namespace from
 * state->net, and conntrack from skb->_nfct.
 */
/* Pointer fields read through an alias the verifier does not trust (kread.h);
 * netfilter_nocast.bpf.o, for kernels before 6.2 (fexit of nf_hook_slow), reads them directly. */
#define PKTPATH_RDONLY_CAST 1
#include "include/observe.h"
#include "include/args.h"

#define NF_ACCEPT 1

static __always_inline void on_hook(void *ctx, struct sk_buff *skb, const struct nf_hook_state *state, bool tracing)
{
	__u8 hook = state->hook;
	struct site site = {
		.point_id = CONFIG.point_id,
		.ctx = ctx,
		.flags = EVENT_HAS_NF_HOOK,
		/* After conntrack (-200): _nfct is set for tracked packets. */
		.ct = SITE_CT_NFCT,
		.hook = hook,
		/* skb->dev is not set yet on the way out: name the output device there. */
		.dev = hook == NF_INET_LOCAL_OUT || hook == NF_INET_POST_ROUTING ?
			KREAD_PTR(state, out) : KREAD_PTR(state, in),
		.pf = state->pf,
		.netns = KREAD_PTR(state, net)->ns.inum,
		/* Netfilter programs may not take a stack; tracing programs may. */
		.stack_ok = tracing,
	};
	observe(skb, &site);
}

SEC("netfilter")
int pktpath_nf(struct bpf_nf_ctx *ctx)
{
	on_hook(ctx, ctx->skb, ctx->state, false);
	return NF_ACCEPT;
}

/* nf_hook_slow(skb, state, entries, index) returns 1 when every hook
 * accepted; otherwise the skb was dropped (and freed) or taken. */
SEC("fexit/nf_hook_slow")
int pktpath_nf_hook_exit(__u64 *ctx)
{
	if ((int)CTX_ARG(ctx, 4) != NF_ACCEPT)
		return 0;
	const struct nf_hook_state *state = (const struct nf_hook_state *)CTX_ARG(ctx, 1);
	if (CONFIG.nf_hooks) {
		__u8 pf = state->pf;
		__u32 bit = (pf == NFPROTO_IPV4 ? 0 : pf == NFPROTO_IPV6 ? 8 : 31) + state->hook;
		if (bit > 31 || !(CONFIG.nf_hooks & (1U << bit)))
			return 0;
	}
	on_hook(ctx, (struct sk_buff *)CTX_ARG(ctx, 0), state, true);
	return 0;
}
