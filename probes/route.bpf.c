// SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0)
/*
 * Route and neighbour decisions: the tracepoints fib:fib_table_lookup,
 * fib6:fib6_table_lookup and neigh:* (--output-route, --output-neigh). They
 * carry a flow or a neighbour, not an skb, so the record's tuple is the flow
 * looked up (the neighbour's address as destination), and its skb the one
 * this CPU is handling, where that can be told (see tie_skb below).
 *
 * The object carries ROUTE_SLOTS copies of the program, each reading its own
 * slot of ROUTE_POINTS (its point and which tracepoint it is): the slot is a
 * constant in each copy, so the verifier walks only that tracepoint's branch,
 * and each branch reads the arguments its tracepoint's BTF gives.
 *
 * Filter: the flow is what the user's filter sees. A synthetic IPv4 or IPv6
 * header (and TCP/UDP ports, ICMP type) is built from it on the stack and the
 * same injected filter runs over it, read through the copy the filter makes
 * of a packet's first bytes (filter.h). At neighbour points the destination
 * is the neighbour's address (the next hop, not the packet's destination),
 * the source unspecified; CONFIG_NEIGH_ALL lets every neighbour event of the
 * traced namespace through.
 */
#define PKTPATH_TRACING 1
#include "include/observe.h"

#define ROUTE_SLOTS 9

/* struct route_point.kind: which tracepoint a slot's program is attached to. */
enum route_point_kind {
	ROUTE_POINT_FIB4 = 1,
	ROUTE_POINT_FIB6 = 2,
	ROUTE_POINT_NEIGH_CREATE = 3,
	ROUTE_POINT_NEIGH_UPDATE = 4,
	ROUTE_POINT_NEIGH_UPDATE_DONE = 5,
	ROUTE_POINT_NEIGH_TIMER = 6,
	ROUTE_POINT_NEIGH_SEND_DONE = 7,
	ROUTE_POINT_NEIGH_SEND_DEAD = 8,
	ROUTE_POINT_NEIGH_RELEASE = 9,
};

/* The neighbour points follow enum neigh_event's order: a point's event is its offset from the first. */
_Static_assert(ROUTE_POINT_NEIGH_UPDATE - ROUTE_POINT_NEIGH_CREATE == NEIGH_EVENT_UPDATE - NEIGH_EVENT_CREATE &&
	       ROUTE_POINT_NEIGH_UPDATE_DONE - ROUTE_POINT_NEIGH_CREATE == NEIGH_EVENT_UPDATE_DONE - NEIGH_EVENT_CREATE &&
	       ROUTE_POINT_NEIGH_TIMER - ROUTE_POINT_NEIGH_CREATE == NEIGH_EVENT_TIMER - NEIGH_EVENT_CREATE &&
	       ROUTE_POINT_NEIGH_SEND_DONE - ROUTE_POINT_NEIGH_CREATE == NEIGH_EVENT_SEND_DONE - NEIGH_EVENT_CREATE &&
	       ROUTE_POINT_NEIGH_SEND_DEAD - ROUTE_POINT_NEIGH_CREATE == NEIGH_EVENT_SEND_DEAD - NEIGH_EVENT_CREATE &&
	       ROUTE_POINT_NEIGH_RELEASE - ROUTE_POINT_NEIGH_CREATE == NEIGH_EVENT_RELEASE - NEIGH_EVENT_CREATE,
	       "route_point_kind's neighbour points and enum neigh_event in one order");

const volatile struct route_point ROUTE_POINTS[ROUTE_SLOTS] SEC(".rodata.points") = {};

/*
 * How recent the skb this CPU last reported must be to be the one a lookup or
 * a neighbour serves. Sound because the input path (netif_receive_skb → ip_rcv
 * → ip_route_input_noref → fib lookup, or ip_finish_output2 → neigh_output)
 * runs on one CPU in one softirq or task that nothing preempts in between,
 * so the last skb reported on the CPU is that packet's, as long as it was
 * observed on the way (a point the plan attaches) and its flow is the
 * lookup's. What it cannot do: output lookups (a socket's route) happen
 * before the skb exists; those records carry skb 0 (user space may place
 * them with the next skb of their flow on the same CPU).
 */
#define TIE_NS 50000

/* The flow a route or neighbour point is about, and what is known of where it is. */
struct flow_site {
	struct tuple tuple;
	__u32 netns;        /* 0: not known from the arguments */
	__u32 iif;
	__u32 mark;
	__u64 skb;          /* tied skb, 0 when none */
	__u32 skb_netns;
	bool neigh;         /* a neighbour point: the address is a next hop */
};

static __always_inline bool same_addr(const __u8 *a, const __u8 *b, __u8 l3)
{
	if (l3 == 4)
		return *(const __u32 *)a == *(const __u32 *)b;
	return ((const __u64 *)a)[0] == ((const __u64 *)b)[0] && ((const __u64 *)a)[1] == ((const __u64 *)b)[1];
}

static __always_inline bool addr_zero(const __u8 *a, __u8 l3)
{
	if (l3 == 4)
		return *(const __u32 *)a == 0;
	return ((const __u64 *)a)[0] == 0 && ((const __u64 *)a)[1] == 0;
}

/*
 * The skb this CPU reported last, when it is recent and its flow is this one:
 * same destination (a neighbour: any, the address is a next hop), same source
 * where the flow has one. An input lookup's flow has no ports or protocol
 * (unless rules ask for them): the tied packet's fill them in.
 */
static __always_inline void tie_skb(struct flow_site *f)
{
	__u32 zero = 0;
	struct cpu_skb *c = bpf_map_lookup_elem(&cpu_skbs, &zero);
	if (!c || !c->skb || bpf_ktime_get_ns() - c->ts_ns > TIE_NS)
		return;
	if (c->tuple.l3 != f->tuple.l3)
		return;
	if (!f->neigh) {
		if (!same_addr(c->tuple.daddr, f->tuple.daddr, f->tuple.l3))
			return;
		if (!addr_zero(f->tuple.saddr, f->tuple.l3) && !same_addr(c->tuple.saddr, f->tuple.saddr, f->tuple.l3))
			return;
		if (!f->tuple.l4proto) {
			f->tuple.l4proto = c->tuple.l4proto;
			f->tuple.sport = c->tuple.sport;
			f->tuple.dport = c->tuple.dport;
		}
	}
	f->skb = c->skb;
	f->skb_netns = c->netns;
}

#define SYNTH_BYTES 64

/* An IP header (and the ports or ICMP type) of the flow at `p`, for the filter; its length. */
static __always_inline __u32 synth_packet(const struct tuple *t, __u8 *p)
{
	__builtin_memset(p, 0, SYNTH_BYTES);
	__u32 l3len;
	if (t->l3 == 4) {
		l3len = 20;
		p[0] = 0x45;
		p[8] = 64;
		p[9] = t->l4proto;
		__builtin_memcpy(p + 12, t->saddr, 4);
		__builtin_memcpy(p + 16, t->daddr, 4);
	} else {
		l3len = 40;
		p[0] = 0x60;
		p[6] = t->l4proto;
		p[7] = 64;
		__builtin_memcpy(p + 8, t->saddr, 16);
		__builtin_memcpy(p + 24, t->daddr, 16);
	}
	__u8 *l4 = p + (t->l3 == 4 ? 20 : 40);
	__u32 l4len = 0;
	switch (t->l4proto) {
	case 6: /* TCP */
		l4len = 20;
		l4[12] = 0x50;
		break;
	case 17: /* UDP */
	case 136: /* UDP-Lite */
		l4len = 8;
		l4[5] = 8;
		break;
	case 132: /* SCTP */
		l4len = 12;
		break;
	case 1: /* ICMP */
	case 58: /* ICMPv6: type and code where the tuple has ports */
		l4[0] = t->sport;
		l4[1] = t->dport;
		return l3len + 8;
	}
	if (l4len) {
		l4[0] = t->sport >> 8;
		l4[1] = t->sport;
		l4[2] = t->dport >> 8;
		l4[3] = t->dport;
	}
	__u32 len = l3len + l4len;
	if (t->l3 == 4) {
		p[2] = len >> 8;
		p[3] = len;
	} else {
		p[4] = (len - 40) >> 8;
		p[5] = len - 40;
	}
	return len;
}

static __always_inline bool flow_filter(const struct tuple *t)
{
	__u8 hdr[SYNTH_BYTES] __attribute__((aligned(8)));
	/* Always an IP header; hidden from the compiler so that both filter
	 * regions stay in the program for user space to fill. */
	__u32 l2 = 0;
	asm volatile("" : "+r"(l2));
	struct packet_view v = { .start = hdr, .l2 = l2 };
	v.caplen = v.wirelen = synth_packet(t, hdr);
	return pcap_match_view(&v);
}

/* Whether the user wants this flow: namespace, device, mark, then the filter on its synthetic header. */
static __always_inline bool flow_wanted(struct flow_site *f)
{
	if ((CONFIG.flags & CONFIG_TRACK) && f->skb && is_tracked((struct sk_buff *)f->skb))
		return true;
	if (CONFIG.netns && f->netns != CONFIG.netns)
		return false;
	if (CONFIG.ifindex && f->iif != CONFIG.ifindex)
		return false;
	if ((CONFIG.flags & CONFIG_MARK) && (f->mark & CONFIG.mark_mask) != CONFIG.mark)
		return false;
	if (f->neigh && (CONFIG.flags & CONFIG_NEIGH_ALL))
		return true;
	/* Fields of an skb, a tunnel's inner packet: a flow has none. */
	if (CONFIG.flags & (CONFIG_SKB_EXPR | CONFIG_INNER_L2 | CONFIG_INNER_L3))
		return false;
	if ((CONFIG.flags & CONFIG_FILTER) && !flow_filter(&f->tuple))
		return false;
	return true;
}

/* The record's core for a flow: no skb fields (length, MTU) but the tied skb's address. */
static __always_inline struct event *flow_event(__u64 *ctx, __u32 point_id, const struct flow_site *f, __u32 space)
{
	struct site site = { .point_id = point_id, .ctx = ctx, .stack_ok = true, .flags = EVENT_HAS_TUPLE };
	struct event *e = event_begin(&site, space, f->netns);
	if (!e)
		return 0;
	e->skb = f->skb;
	e->mark = f->mark;
	e->ifindex = f->iif;
	e->len = 0;
	e->mtu = 0;
	e->protocol = f->tuple.l3 == 4 ? 0x0800 : 0x86dd;
	e->vlan[0] = 0;
	e->vlan[1] = 0;
	e->tuple = f->tuple;
	return e;
}

static __always_inline void flow_event_end(__u64 *ctx, struct event *e, __u32 space)
{
	struct site site = { .ctx = ctx, .stack_ok = true };
	section_packet_view(e, 0, (void *)(e + 1) + space);
	event_end(e, &site);
}

/* bpf_get_current_task, not its BTF twin (5.11): read through probe reads, it loads on 5.10 too. */
static __always_inline __u32 current_netns(void)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	return BPF_CORE_READ(task, nsproxy, net_ns, ns.inum);
}

/* The namespace of a lookup whose arguments do not name it: the tied skb's, else the current task's (an output lookup in process context). */
static __always_inline void flow_netns(struct flow_site *f)
{
	if (f->netns)
		return;
	f->netns = f->skb ? f->skb_netns : current_netns();
}

/* Argument i of the tracepoint: each read stays where it is written (the
 * verifier refuses a context load at an offset chosen at run time, which the
 * compiler would make of reads merged across the points' branches). */
#define ARG(ctx, i) ({ __u64 __v = (ctx)[i]; asm volatile("" : "+r"(__v)); __v; })

/* An argument that points to something other than a struct (neigh_create's
 * key, neigh_update's lladdr): kernels before 6.4 refuse to load those from
 * the context, so it is copied out of it. */
static __always_inline __u64 arg_copied(__u64 *ctx, int i)
{
	__u64 v = 0;
	bpf_probe_read_kernel(&v, sizeof(v), &ctx[i]);
	return v;
}

/* The flow of a lookup, from a flowi4 or flowi6's common part and ports (or ICMP type and code). */
#define FLOW_FROM(f, flp, icmp)                                                        \
	do {                                                                            \
		(f)->tuple.l4proto = BPF_CORE_READ(flp, __fl_common.flowic_proto);      \
		__be16 __ports[2] = {};                                                 \
		bpf_core_read(__ports, sizeof(__ports), &(flp)->uli);                   \
		if ((f)->tuple.l4proto == (icmp)) {                                     \
			(f)->tuple.sport = ((__u8 *)__ports)[0];                        \
			(f)->tuple.dport = ((__u8 *)__ports)[1];                        \
		} else {                                                                \
			(f)->tuple.dport = bpf_ntohs(__ports[0]);                       \
			(f)->tuple.sport = bpf_ntohs(__ports[1]);                       \
		}                                                                       \
		(f)->iif = BPF_CORE_READ(flp, __fl_common.flowic_iif);                  \
		(f)->mark = BPF_CORE_READ(flp, __fl_common.flowic_mark);                \
	} while (0)

/* fib:fib_table_lookup(u32 tb_id, const struct flowi4 *flp, const struct fib_nh_common *nhc, int err) */
static __always_inline bool fib4_flow(__u64 *ctx, struct flow_site *f)
{
	const struct flowi4 *flp = (const struct flowi4 *)ARG(ctx, 1);
	const struct fib_nh_common *nhc = (const struct fib_nh_common *)ARG(ctx, 2);
	if (!flp)
		return false;
	f->tuple.l3 = 4;
	bpf_core_read(f->tuple.saddr, 4, &flp->saddr);
	bpf_core_read(f->tuple.daddr, 4, &flp->daddr);
	FLOW_FROM(f, flp, 1);
	if (nhc)
		f->netns = BPF_CORE_READ(nhc, nhc_dev, nd_net.net, ns.inum);
	tie_skb(f);
	flow_netns(f);
	return true;
}

/* fib6:fib6_table_lookup(const struct net *net, const struct fib6_result *res, struct fib6_table *table, const struct flowi6 *flp) */
static __always_inline bool fib6_flow(__u64 *ctx, struct flow_site *f)
{
	const struct net *net = (const struct net *)ARG(ctx, 0);
	const struct fib6_result *res = (const struct fib6_result *)ARG(ctx, 1);
	const struct flowi6 *flp = (const struct flowi6 *)ARG(ctx, 3);
	if (!flp || !res)
		return false;
	f->tuple.l3 = 6;
	bpf_core_read(f->tuple.saddr, 16, &flp->saddr);
	bpf_core_read(f->tuple.daddr, 16, &flp->daddr);
	FLOW_FROM(f, flp, 58);
	f->netns = BPF_CORE_READ(net, ns.inum);
	tie_skb(f);
	return true;
}

/* What a neighbour point passes, read before the filter, written after it. */
struct neigh_args {
	const struct neighbour *n;
	const struct net_device *dev;
	const __u8 *lladdr;
	int state;
	int old_state;
	int error;
	bool has_error;
};

/*
 * A neighbour point. The tie: only where the kernel is sending a packet to
 * the neighbour (creating it for that packet, or queueing it while it resolves);
 * an update or a timer is not about the packet the CPU may have reported last.
 */
static __always_inline bool neigh_flow(__u64 *ctx, __u8 event, struct flow_site *f, struct neigh_args *a)
{
	const struct neigh_table *tbl;
	const struct neighbour *n;
	const struct net_device *dev;
	const void *key;
	if (event == NEIGH_EVENT_CREATE) {
		/* Right after the allocation: the entry has neither key nor device yet. */
		tbl = (const struct neigh_table *)ARG(ctx, 0);
		dev = (const struct net_device *)ARG(ctx, 1);
		key = (const void *)arg_copied(ctx, 2);
		n = (const struct neighbour *)ARG(ctx, 3);
		if (!n)
			return false;
	} else {
		n = (const struct neighbour *)ARG(ctx, 0);
		if (!n)
			return false;
		tbl = BPF_CORE_READ(n, tbl);
		dev = BPF_CORE_READ(n, dev);
		key = (const void *)n + bpf_core_field_offset(struct neighbour, primary_key);
	}
	a->n = n;
	a->dev = dev;
	a->state = BPF_CORE_READ(n, nud_state);
	a->old_state = -1;
	if (event == NEIGH_EVENT_UPDATE) {
		/* neigh_update(n, lladdr, new, flags, nlmsg_pid): before the change */
		a->lladdr = (const __u8 *)arg_copied(ctx, 1);
		a->old_state = a->state;
		a->state = (__u8)ARG(ctx, 2);
	} else if (event != NEIGH_EVENT_CREATE) {
		a->error = (int)ARG(ctx, 1);
		a->has_error = true;
	}
	f->neigh = true;
	f->tuple.l3 = neigh_address(tbl, key, f->tuple.daddr);
	if (!f->tuple.l3)
		return false;
	f->iif = BPF_CORE_READ(dev, ifindex);
	f->netns = BPF_CORE_READ(dev, nd_net.net, ns.inum);
	if (event == NEIGH_EVENT_CREATE || event == NEIGH_EVENT_SEND_DONE || event == NEIGH_EVENT_SEND_DEAD)
		tie_skb(f);
	return true;
}

/* One filter per program: the points' branches meet before it (each inlined copy of a filter region would be a region user space must fill). */
static __always_inline int on_point(__u64 *ctx, const volatile struct route_point *point)
{
	if (bench_stops_at(STAGE_START))
		return 0;
	__u32 kind = point->kind;
	struct flow_site f = {};
	struct neigh_args a = {};
	__u8 event = kind - ROUTE_POINT_NEIGH_CREATE + NEIGH_EVENT_CREATE;
	bool route = kind == ROUTE_POINT_FIB4 || kind == ROUTE_POINT_FIB6;
	bool known;
	if (kind == ROUTE_POINT_FIB4)
		known = fib4_flow(ctx, &f);
	else if (kind == ROUTE_POINT_FIB6)
		known = fib6_flow(ctx, &f);
	else if (kind >= ROUTE_POINT_NEIGH_CREATE && kind <= ROUTE_POINT_NEIGH_RELEASE)
		known = neigh_flow(ctx, event, &f, &a);
	else
		return 0;
	if (!known || !flow_wanted(&f))
		return 0;
	const __u32 space = route ? ROUTE_SPACE : NEIGH_SPACE;
	struct event *e = flow_event(ctx, point->point_id, &f, space);
	if (!e)
		return 0;
	void *at = (void *)(e + 1);
	if (kind == ROUTE_POINT_FIB4) {
		section_route_fib4(at, (__u32)ARG(ctx, 0), (const struct flowi4 *)ARG(ctx, 1),
				   (const struct fib_nh_common *)ARG(ctx, 2), (int)ARG(ctx, 3));
	} else if (kind == ROUTE_POINT_FIB6) {
		section_route_fib6(at, (const struct net *)ARG(ctx, 0), (const struct fib6_result *)ARG(ctx, 1),
				   (const struct fib6_table *)ARG(ctx, 2), (const struct flowi6 *)ARG(ctx, 3));
	} else {
		/* A neighbour event has no flow: the record's tuple says nothing. */
		e->flags &= ~EVENT_HAS_TUPLE;
		section_neigh(at, event, a.n, a.dev, f.tuple.daddr, f.tuple.l3, a.lladdr, a.state, a.old_state, a.has_error, a.error);
	}
	flow_event_end(ctx, e, space);
	return 0;
}

#define ROUTE_PROGRAM(slot)                                        \
	SEC("tp_btf")                                              \
	int pktpath_route_##slot(__u64 *ctx)                       \
	{                                                          \
		return on_point(ctx, &ROUTE_POINTS[slot]);         \
	}

ROUTE_PROGRAM(0) ROUTE_PROGRAM(1) ROUTE_PROGRAM(2) ROUTE_PROGRAM(3) ROUTE_PROGRAM(4)
ROUTE_PROGRAM(5) ROUTE_PROGRAM(6) ROUTE_PROGRAM(7) ROUTE_PROGRAM(8)
