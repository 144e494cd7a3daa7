/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * Arguments of BTF-typed programs (tp_btf, fentry): the context is an array
 * of u64, one per argument. User space tells the probe which one is the skb
 * (CONFIG.skb_arg); branches for other positions are dead code the verifier
 * never walks.
 */
#ifndef PKTPATH_ARGS_H
#define PKTPATH_ARGS_H

/* The function a trampoline program (fentry, fexit) runs for. Before
 * bpf_get_func_ip (5.15, the *_nofuncip builds) the program is that
 * function's own, and user space names its records by their point. */
#ifdef PKTPATH_NO_FUNC_IP
#define TRAMPOLINE_FUNC_IP(ctx) 0
#else
#define TRAMPOLINE_FUNC_IP(ctx) bpf_get_func_ip(ctx)
#endif

/* Each argument is loaded with its own fixed-offset instruction: the verifier
 * refuses context loads through a computed pointer, which is what the
 * compiler would otherwise make of a switch over the index. */
#define CTX_ARG(ctx, i) ({ __u64 v; asm volatile("%0 = *(u64 *)(%1 + " #i " * 8)" : "=r"(v) : "r"(ctx)); v; })

static __always_inline __u64 ctx_arg(__u64 *ctx, int n)
{
	switch (n) {
	case 0: return CTX_ARG(ctx, 0);
	case 1: return CTX_ARG(ctx, 1);
	case 2: return CTX_ARG(ctx, 2);
	case 3: return CTX_ARG(ctx, 3);
	case 4: return CTX_ARG(ctx, 4);
	/* Beyond: where fexit finds the return value, after the function's arguments. */
	case 5: return CTX_ARG(ctx, 5);
	case 6: return CTX_ARG(ctx, 6);
	case 7: return CTX_ARG(ctx, 7);
	case 8: return CTX_ARG(ctx, 8);
	case 9: return CTX_ARG(ctx, 9);
	case 10: return CTX_ARG(ctx, 10);
	case 11: return CTX_ARG(ctx, 11);
	case 12: return CTX_ARG(ctx, 12);
	default: return 0;
	}
}

#endif
