/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * The route section (--output-route): one routing table lookup, at the
 * tracepoints fib:fib_table_lookup and fib6:fib6_table_lookup (probes/route.bpf.c).
 * Its TS half: src/output/sections/route.ts.
 *
 * fib_table_lookup passes the flow, the table id, the next hop and the error,
 * not the fib_result: the route's type is read from the next hop's fib_info
 * (none for nexthop objects: ROUTE_TYPE_UNKNOWN), an error's type is the
 * error's (user space), and the prefix is not reachable. fib6_table_lookup
 * passes the fib6_result: type, prefix and next hop are all there.
 */
#ifndef PKTPATH_SECTION_ROUTE_H
#define PKTPATH_SECTION_ROUTE_H

#define SECTION_ROUTE 12

/* route_section.type when the lookup does not say (RTN_* otherwise). */
#define ROUTE_TYPE_UNKNOWN 0xff
/* route_section.prefix_len when the prefix is not known. */
#define ROUTE_PREFIX_UNKNOWN 0xff

enum route_flags {
	ROUTE_NO_MATCH = 1 << 0, /* fib6: the table's answer is the null entry (no route in it) */
};

struct route_section {
	__u8 gateway[16];  /* network byte order; IPv4 in the first 4 bytes */
	__u8 prefix[16];
	__u32 table;       /* RT_TABLE_*: 254 main, 255 local, 253 default */
	__s32 error;       /* fib4: the tracepoint's err (0, -EAGAIN: no match in this table, or the type's); fib6: 0 */
	__u32 oif;         /* the result's output device, 0: none */
	__u32 iif;         /* the flow's input device (LOOPBACK_IFINDEX 1 for output lookups) */
	__u32 mark;        /* the flow's mark */
	__u8 family;       /* 4 or 6 */
	__u8 type;         /* RTN_*, ROUTE_TYPE_UNKNOWN */
	__u8 gw_family;    /* 0: no gateway (on-link), 4 or 6 */
	__u8 prefix_len;   /* ROUTE_PREFIX_UNKNOWN where the lookup does not expose it */
	__u8 flags;        /* enum route_flags */
	__u8 _pad[7];
};

#ifndef PKTPATH_LAYOUT_ONLY
#include "section.h"

#define ROUTE_SPACE SECTION_SPACE(struct route_section, 1)

/* The gateway of a next hop (IPv4 routes may have IPv6 gateways: RFC 5549). */
static __always_inline void route_gateway(struct route_section *r, const struct fib_nh_common *nhc)
{
	__u8 family = BPF_CORE_READ(nhc, nhc_gw_family);
	if (family == 2 /* AF_INET */) {
		r->gw_family = 4;
		bpf_core_read(r->gateway, 4, &nhc->nhc_gw.ipv4);
	} else if (family == 10 /* AF_INET6 */) {
		r->gw_family = 6;
		bpf_core_read(r->gateway, 16, &nhc->nhc_gw.ipv6);
	}
}

static __always_inline struct route_section *route_open(void *at, __u8 family)
{
	struct route_section *r = section_open(at, SECTION_ROUTE, sizeof(*r));
	__builtin_memset(r, 0, sizeof(*r));
	r->family = family;
	r->type = ROUTE_TYPE_UNKNOWN;
	r->prefix_len = ROUTE_PREFIX_UNKNOWN;
	return r;
}

/* fib:fib_table_lookup(u32 tb_id, const struct flowi4 *flp, const struct fib_nh_common *nhc, int err) */
static __always_inline void section_route_fib4(void *at, __u32 tb_id, const struct flowi4 *flp,
					       const struct fib_nh_common *nhc, int err)
{
	struct route_section *r = route_open(at, 4);
	r->table = tb_id;
	r->error = err;
	r->iif = BPF_CORE_READ(flp, __fl_common.flowic_iif);
	r->mark = BPF_CORE_READ(flp, __fl_common.flowic_mark);
	if (!nhc)
		return;
	r->oif = BPF_CORE_READ(nhc, nhc_dev, ifindex);
	route_gateway(r, nhc);
	/* A route's next hop is the first member of a struct fib_nh, whose
	 * parent fib_info holds the route's type; a nexthop object's has none. */
	struct fib_info *fi = BPF_CORE_READ((struct fib_nh *)nhc, nh_parent);
	if (fi)
		r->type = BPF_CORE_READ(fi, fib_type);
}

/* fib6:fib6_table_lookup(const struct net *net, const struct fib6_result *res, struct fib6_table *table, const struct flowi6 *flp) */
static __always_inline void section_route_fib6(void *at, const struct net *net, const struct fib6_result *res,
					       const struct fib6_table *table, const struct flowi6 *flp)
{
	struct route_section *r = route_open(at, 6);
	r->table = table ? BPF_CORE_READ(table, tb6_id) : 0;
	r->iif = BPF_CORE_READ(flp, __fl_common.flowic_iif);
	r->mark = BPF_CORE_READ(flp, __fl_common.flowic_mark);
	r->type = BPF_CORE_READ(res, fib6_type);
	struct fib6_info *f6i = BPF_CORE_READ(res, f6i);
	if (!f6i)
		return;
	if (f6i == BPF_CORE_READ(net, ipv6.fib6_null_entry)) {
		r->flags |= ROUTE_NO_MATCH;
		return;
	}
	bpf_core_read(r->prefix, 16, &f6i->fib6_dst.addr);
	r->prefix_len = BPF_CORE_READ(f6i, fib6_dst.plen);
	struct fib6_nh *nh = BPF_CORE_READ(res, nh);
	if (!nh)
		return;
	r->oif = BPF_CORE_READ(nh, nh_common.nhc_dev, ifindex);
	route_gateway(r, &nh->nh_common);
}

#endif /* PKTPATH_LAYOUT_ONLY */
#endif
