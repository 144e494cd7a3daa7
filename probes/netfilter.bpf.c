// SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0)
/*
 * Netfilter observer: one program, linked at each hook (IPv4 and IPv6) of each
 * traced namespace. The hook and family come from the hook state, the
 * namespace from state->net. It always accepts.
 */
#include "include/observe.h"

#define NF_ACCEPT 1

SEC("netfilter")
int pktpath_nf(struct bpf_nf_ctx *ctx)
{
	const struct nf_hook_state *state = ctx->state;
	__u8 hook = state->hook;
	struct site site = {
		.ctx = ctx,
		.flags = EVENT_HAS_NF_HOOK,
		/* Linked after conntrack (-200): _nfct is set for tracked packets. */
		.ct = SITE_CT_NFCT,
		.hook = hook,
		/* skb->dev is not set yet on the way out: name the output device there. */
		.dev = hook == NF_INET_LOCAL_OUT || hook == NF_INET_POST_ROUTING ?
			state->out : state->in,
		.pf = state->pf,
		.netns = state->net->ns.inum,
	};
	observe(ctx->skb, &site);
	return NF_ACCEPT;
}
