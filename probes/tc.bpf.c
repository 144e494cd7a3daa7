// SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0)
/*
 * tc observer: attached at ingress and egress of each traced device with tcx
 * links, last in the chain, and, where other programs run there, first too
 * (one instance for each place), so what those programs did shows; on kernels
 * without tcx, as a cls_bpf filter of a clsact qdisc. It never changes the
 * verdict.
 *
 * Built three ways (scripts/build-probes.sh), the first that loads wins:
 *  - tc.bpf.o: typed skb (bpf_cast_to_kern_ctx, 6.2+) and the conntrack
 *    lookup kfuncs (nf_conntrack's BTF: vmlinux, or the module once loaded);
 *  - tc_noct.bpf.o: the same without the conntrack lookup;
 *  - tc_untyped.bpf.o (PKTPATH_UNTYPED): the context's address read as the
 *    sk_buff it is, every field with bpf_probe_read_kernel (before 6.2).
 */
#if !defined(PKTPATH_NO_CT_LOOKUP) && !defined(PKTPATH_UNTYPED)
#define PKTPATH_CT_LOOKUP 1
#endif
/* The typed builds need 6.2 (bpf_cast_to_kern_ctx), as bpf_rdonly_cast does (kread.h). */
#define PKTPATH_RDONLY_CAST 1
#include "include/observe.h"

#define TC_NEXT (-1) /* TCX_NEXT and TC_ACT_UNSPEC: let the next program decide */

#ifndef PKTPATH_UNTYPED
extern void *bpf_cast_to_kern_ctx(void *obj) __ksym;
#endif

SEC("tc")
int pktpath_tc(struct __sk_buff *ctx)
{
#ifdef PKTPATH_UNTYPED
	/* A tc program's context is the kernel's sk_buff. */
	struct sk_buff *skb = (struct sk_buff *)(unsigned long)ctx;
#else
	struct sk_buff *skb = bpf_cast_to_kern_ctx(ctx);
#endif
	bool ingress = KREAD_BITFIELD(skb, tc_at_ingress);
	struct site site = {
		.point_id = CONFIG.point_id,
		.ctx = ctx,
		.flags = EVENT_HAS_TC_DIR,
#ifdef PKTPATH_CT_LOOKUP
		.ct = SITE_CT_LOOKUP,
#else
		.ct = SITE_CT_NFCT, /* set on the way out, after conntrack ran */
#endif
		.hook = ingress ? 0 : 1,
		.l2_source = !ingress,
	};
	observe(skb, &site);
	return TC_NEXT;
}
