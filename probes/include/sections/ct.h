/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * The conntrack section of an event: what netfilter's connection tracking
 * knows about the packet. Two sources:
 *  - at netfilter hooks (after conntrack's -200), skb->_nfct: the entry the
 *    packet was attached to and how (ctinfo);
 *  - at tc, where no entry is attached yet on the way in, a lookup of the
 *    packet's tuple with the bpf_skb_ct_lookup kfunc (TCP and UDP only).
 * Every nf_conn field is read through CO-RE, optional ones behind
 * bpf_core_field_exists, so the probe loads on kernels built without them.
 * Decoded by src/decode/ct.ts, formatted by src/output/ct.ts.
 */
#ifndef PKTPATH_SECTION_CT_H
#define PKTPATH_SECTION_CT_H

#include "section.h"

/* Where a point learns the conntrack state. */
enum site_ct {
	SITE_CT_NONE = 0,
	SITE_CT_NFCT = 1,   /* netfilter hooks: skb->_nfct */
	SITE_CT_LOOKUP = 2, /* tc: bpf_skb_ct_lookup(), needs PKTPATH_CT_LOOKUP */
};

#define PKTPATH_AF_INET 2
#define PKTPATH_AF_INET6 10
#define NFCT_INFOMASK 7UL
#define IP_CT_IS_REPLY_FROM 3 /* ctinfo 3 and 4 are the reply direction */

static __always_inline bool ct_proto_has_ports(__u8 proto)
{
	return proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_UDPLITE ||
	       proto == IPPROTO_SCTP || proto == IPPROTO_DCCP;
}

static __always_inline void ct_read_tuple(const struct nf_conntrack_tuple *src, struct ct_tuple *t)
{
	__u16 l3num = BPF_CORE_READ(src, src.l3num);
	t->l3 = l3num == PKTPATH_AF_INET ? 4 : l3num == PKTPATH_AF_INET6 ? 6 : 0;
	t->l4proto = BPF_CORE_READ(src, dst.protonum);
	BPF_CORE_READ_INTO(&t->saddr, src, src.u3.all);
	BPF_CORE_READ_INTO(&t->daddr, src, dst.u3.all);
	if (t->l3 == 4) {
		/* Only the first word is the address; the rest is not guaranteed zero. */
		__builtin_memset(t->saddr + 4, 0, 12);
		__builtin_memset(t->daddr + 4, 0, 12);
	}
	/* For ICMP these hold id/type/code, not ports: leave them out. */
	if (ct_proto_has_ports(t->l4proto)) {
		t->sport = bpf_ntohs(BPF_CORE_READ(src, src.u.all));
		t->dport = bpf_ntohs(BPF_CORE_READ(src, dst.u.all));
	}
}

static __always_inline void ct_read_conn(struct nf_conn *ct, struct ct_section *c)
{
	c->id = (__u64)ct;
	c->status = (__u32)BPF_CORE_READ(ct, status);
	if (bpf_core_field_exists(ct->mark))
		c->mark = BPF_CORE_READ(ct, mark);
	if (bpf_core_field_exists(ct->zone))
		c->zone = BPF_CORE_READ(ct, zone.id);
	ct_read_tuple(&ct->tuplehash[0].tuple, &c->orig);
	ct_read_tuple(&ct->tuplehash[1].tuple, &c->reply);
}

/* c must be zeroed. Returns false when the packet has no conntrack at all
 * (conntrack not active in this namespace, or the packet was not tracked). */
static __always_inline bool ct_from_skb(struct sk_buff *skb, struct ct_section *c)
{
	if (!bpf_core_field_exists(skb->_nfct))
		return false;
	unsigned long nfct = BPF_CORE_READ(skb, _nfct);
	if (!nfct)
		return false;
	c->source = CT_SOURCE_NFCT;
	c->ctinfo = nfct & NFCT_INFOMASK;
	c->dir = c->ctinfo >= IP_CT_IS_REPLY_FROM && c->ctinfo != CT_CTINFO_UNTRACKED;
	struct nf_conn *ct = (struct nf_conn *)(nfct & ~NFCT_INFOMASK);
	/* IP_CT_UNTRACKED comes without an entry. */
	if (ct)
		ct_read_conn(ct, c);
	return true;
}

#ifdef PKTPATH_CT_LOOKUP
/* Only tc programs may call these; their header is the kernel's, not vmlinux.h.
 * Strong references: a kernel (or a module not loaded) without them refuses
 * the program, and user space loads the build without the lookup instead.
 * (A weak reference would need an ld_imm64 of a kfunc's address, which
 * libbpf 1.1 gets wrong for module BTF.) */
extern struct nf_conn *bpf_skb_ct_lookup(struct __sk_buff *skb, struct bpf_sock_tuple *tuple, __u32 tuple_size,
					 struct bpf_ct_opts *opts, __u32 opts_size) __ksym;
extern void bpf_ct_release(struct nf_conn *ct) __ksym;

#define PKTPATH_BPF_F_CURRENT_NETNS (-1)

/* c must be zeroed. Returns false when no lookup was made. */
static __always_inline bool ct_lookup(struct __sk_buff *ctx, const struct tuple *t, struct ct_section *c)
{
	/* Other protocols give -EPROTO: do not pay for the call. */
	if (t->l4proto != IPPROTO_TCP && t->l4proto != IPPROTO_UDP)
		return false;

	struct bpf_sock_tuple st = {};
	__u32 size;
	if (t->l3 == 4) {
		__builtin_memcpy(&st.ipv4.saddr, t->saddr, 4);
		__builtin_memcpy(&st.ipv4.daddr, t->daddr, 4);
		st.ipv4.sport = bpf_htons(t->sport);
		st.ipv4.dport = bpf_htons(t->dport);
		size = sizeof(st.ipv4);
	} else if (t->l3 == 6) {
		__builtin_memcpy(st.ipv6.saddr, t->saddr, 16);
		__builtin_memcpy(st.ipv6.daddr, t->daddr, 16);
		st.ipv6.sport = bpf_htons(t->sport);
		st.ipv6.dport = bpf_htons(t->dport);
		size = sizeof(st.ipv6);
	} else {
		return false;
	}

	struct bpf_ct_opts opts = {};
	opts.netns_id = PKTPATH_BPF_F_CURRENT_NETNS;
	opts.l4proto = t->l4proto;
	/* The running kernel's size: older kernels know a shorter struct. */
	struct nf_conn *ct = bpf_skb_ct_lookup(ctx, &st, size, &opts, bpf_core_type_size(struct bpf_ct_opts));

	c->source = CT_SOURCE_LOOKUP;
	c->ctinfo = CT_CTINFO_NONE;
	if (!ct) {
		c->error = opts.error ? opts.error : -2 /* ENOENT */;
		return true;
	}
	c->dir = opts.dir;
	ct_read_conn(ct, c);
	bpf_ct_release(ct);
	return true;
}
#endif

/* Bytes a point of this kind reserves for the section. */
#define CT_SECTION_SPACE(source) SECTION_SPACE(struct ct_section, (source) != SITE_CT_NONE)

/* The section at `at` of the event `e`, whose tuple is parsed (`is_ip`):
 * zeroed, then filled from the point's source; EVENT_HAS_CT when it holds an
 * entry or a lookup's result. */
static __always_inline void section_ct(struct event *e, struct sk_buff *skb, void *ctx, __u8 source, bool is_ip, void *at)
{
	struct ct_section *c = section_open(at, SECTION_CT, sizeof(*c));
	__builtin_memset(c, 0, sizeof(*c));
	if (source == SITE_CT_NFCT && ct_from_skb(skb, c))
		e->flags |= EVENT_HAS_CT;
#ifdef PKTPATH_CT_LOOKUP
	if (source == SITE_CT_LOOKUP && is_ip && ct_lookup(ctx, &e->tuple, c))
		e->flags |= EVENT_HAS_CT;
#endif
}

#endif
