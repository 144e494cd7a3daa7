/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * What every observation point does with an skb: decide whether it is
 * wanted (match.h), and only then reserve a record, fill the core and each
 * section the configuration asks for (sections/), and send it. Each attach
 * family (tracepoint, function, tc, netfilter) is a thin wrapper around observe().
 */
#ifndef PKTPATH_OBSERVE_H
#define PKTPATH_OBSERVE_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "kread.h"
#include "event.h"
#include "maps.h"
#include "match.h"
#include "window.h"
#include "sections/ct.h"
#include "sections/dump.h"
#include "sections/l2.h"
#include "sections/packet.h"
#include "sections/retval.h"
#include "sections/route.h"
#include "sections/neigh.h"
#include "sections/skb_meta.h"
#include "sections/skb_queue.h"
#include "sections/stack.h"
#include "sections/tuple.h"
#include "sections/tunnel.h"
#include "sections/wire.h"
#include "sections/xdp_meta.h"
#include "sections/verdict.h"
#include "sections/bpfmap.h"
#include "prog_run.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Every skb, device and socket pointer the probes get is typed (BTF), so
 * fields are read with plain loads, which CO-RE relocates and the verifier
 * guards, not one bpf_probe_read_kernel() call each: it matters at millions
 * of packets a second. Packet bytes still need bpf_probe_read_kernel(). */

/* Where a probe stands and what it knows beyond the skb. */
struct site {
	__u32 point_id;     /* what user space knows this point by */
	bool frees;         /* the point frees the skb: stop following it */
	void *ctx;          /* program context, for the stack and the ct lookup */
	struct net_device *dev; /* the device the point names, when it names one */
	__u32 flags;        /* EVENT_HAS_* the wrapper fills below */
	__u32 netns;        /* 0: derive from the skb */
	__u64 caller;
	void *caller_at;    /* kprobes: where the caller is (the stack top), read once the packet is wanted */
	__u32 drop_reason;
	__u8 hook;
	__u8 pf;
	__u8 ct;            /* enum site_ct: where this point learns the conntrack state */
	__u64 func_ip;      /* function probes: the function, EVENT_HAS_FUNC */
	bool stack_ok;      /* the program type may call bpf_get_stackid */
	bool l2_source;     /* tc egress: say whether the frame's source is the device's address */
	bool verdict;       /* a traced BPF program's exit: send its verdict (retval) */
	bool run_begins;    /* a traced BPF program's entry: its helpers' records are of this packet (prog_run.h) */
	bool redirected;    /* the verdict is a redirect: read its target */
	bool under;         /* a function without an skb, in a wanted skb's window: reported without the filter (window.h) */
	__s32 retval;
};

/* A record for the point, its core common to every point filled; NULL (and
 * counted lost) when the ring is full. Sizes must be constants for the
 * verifier: `section_space` is one after inlining, and CONFIG is frozen. */
static __always_inline struct event *event_begin(const struct site *site, __u32 section_space, __u32 netns)
{
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e) + section_space + CONFIG.snaplen, 0);
	if (!e) {
		count(&lost, 0);
		return 0;
	}
	e->type = RECORD_EVENT;
	e->flags = site->flags;
	e->caller = site->caller;
	if (site->caller_at) {
		if (bpf_probe_read_kernel(&e->caller, sizeof(e->caller), site->caller_at) == 0)
			e->flags |= EVENT_HAS_CALLER;
		else
			e->caller = 0;
	}
	e->ts_ns = bpf_ktime_get_ns();
	e->point_id = site->point_id;
	e->cpu = bpf_get_smp_processor_id();
	e->func_ip = site->func_ip;
	e->netns = netns;
	e->drop_reason = site->drop_reason;
	e->hook = site->hook;
	e->pf = site->pf;
	e->_pad2 = 0;
	e->_pad3 = 0;
	/* Dead code where the kernel refuses these helpers to the program type
	 * (netfilter on 6.12): the verifier never walks it. */
	if (!(CONFIG.flags & CONFIG_NO_TASK)) {
		e->pid = bpf_get_current_pid_tgid() >> 32;
		bpf_get_current_comm(e->comm, sizeof(e->comm));
	} else {
		e->pid = 0;
		__builtin_memset(e->comm, 0, sizeof(e->comm));
	}
	return e;
}

/* The skb this CPU reports, for the route and neighbour points that follow
 * it on this CPU (maps.h: cpu_skbs); nothing unless those sections are asked for. */
static __always_inline void note_cpu_skb(const struct event *e)
{
	if (!SECTION_WANTED(SECTION_ROUTE) && !SECTION_WANTED(SECTION_NEIGH))
		return;
	__u32 zero = 0;
	struct cpu_skb *c = bpf_map_lookup_elem(&cpu_skbs, &zero);
	if (!c)
		return;
	c->skb = e->skb;
	c->ts_ns = e->ts_ns;
	c->netns = e->netns;
	c->ifindex = e->ifindex;
	c->tuple = e->tuple;
}

/* The stack last (it is the costliest), then the record goes. The kernel
 * wakes the reader only for a record written to a ring it had read to the
 * end (flags 0): an idle reader sleeps until the first, a busy one reads
 * batches on a short timer and is not woken per record. */
static __always_inline void event_end(struct event *e, const struct site *site)
{
	section_stack(e, site->ctx, site->stack_ok);
	bpf_ringbuf_submit(e, 0);
}

/* The filter runs first; nothing is reserved, read or captured for packets
 * that do not match. Whether the packet was wanted. */
static __always_inline bool observe(struct sk_buff *skb, const struct site *site)
{
	if (bench_stops_at(STAGE_START))
		return false;
	/* A point's own device argument is right even when skb->dev has already
	 * moved on (a veth hands the skb to its peer inside net_dev_xmit). */
	struct net_device *dev = site->dev ? site->dev : KREAD_PTR(skb, dev);
	__u32 netns = site->netns;

	if (!site->under && !wanted(skb, dev, &netns))
		return false;
	if (!netns)
		netns = skb_netns(skb, dev);

	/* Each section's space is a constant once inlined (the point's kind, the
	 * frozen CONFIG), and so is where each one starts. */
	const __u32 own_space = CT_SECTION_SPACE(site->ct) + VERDICT_SECTION_SPACE(site->verdict);
	struct event *e = event_begin(site, own_space + DUMP_SPACE + SKB_META_SPACE + TUNNEL_SPACE + SKB_QUEUE_SPACE + WIRE_SPACE, netns);
	if (!e)
		goto out;
	e->skb = (__u64)skb;
	e->mark = KREAD(skb, mark);
	e->ifindex = dev ? KREAD(dev, ifindex) : KREAD(skb, skb_iif);
	e->len = KREAD(skb, len);
	e->mtu = dev ? KREAD(dev, mtu) : 0;
	e->protocol = bpf_ntohs(KREAD(skb, protocol));

	bool is_ip = section_tuple(e, skb);
	note_cpu_skb(e);
	retval_keep(e, site->flags);
	prog_run_begin(e, site->run_begins);
	void *at = (void *)(e + 1);
	if (site->ct != SITE_CT_NONE)
		section_ct(e, skb, site->ctx, site->ct, is_ip, at);
	else if (site->verdict)
		section_verdict(e, at, site->retval, site->redirected);
	at += own_space;
	if (site->l2_source)
		section_l2_source(e, skb, dev);
	section_dump(skb, dev, at);
	at += DUMP_SPACE;
	section_skb_meta(skb, at);
	at += SKB_META_SPACE;
	section_tunnel(skb, at);
	at += TUNNEL_SPACE;
	section_skb_queue(skb, at);
	at += SKB_QUEUE_SPACE;
	section_wire(skb, at);
	at += WIRE_SPACE;
	section_packet(e, skb, at);
	event_end(e, site);
out:
	if ((CONFIG.flags & CONFIG_TRACK) && site->frees)
		forget(skb);
	return true;
}

#ifndef PKTPATH_UNTYPED
/* A frame before it has an skb: XDP. It is named by its buffer (the record's
 * skb field holds data_hard_start, which the program cannot move). */
static __always_inline void observe_frame(struct xdp_buff *xdp, const struct site *site)
{
	if (bench_stops_at(STAGE_START))
		return;
	struct net_device *dev = xdp->rxq->dev;
	unsigned char *data = xdp->data;
	/* Always a frame; hidden from the compiler so that both filter regions
	 * stay in the program for user space to fill. */
	__u32 l2 = 1;
	asm volatile("" : "+r"(l2));
	struct packet_view v = { .start = data, .l2 = l2 };
	v.caplen = v.wirelen = (__u32)((unsigned char *)xdp->data_end - data);
	__u32 netns = dev->nd_net.net->ns.inum;

	if (!wanted_frame(dev, &v, netns))
		return;
	if ((CONFIG.flags & CONFIG_XDP_EXPR) && !xdp_expr_match(xdp))
		return;
	const __u32 own_space = VERDICT_SECTION_SPACE(site->verdict);
	const __u32 section_space = own_space + XDP_META_SPACE;
	struct event *e = event_begin(site, section_space, netns);
	if (!e)
		return;
	e->skb = (__u64)xdp->data_hard_start;
	e->mark = 0;
	e->ifindex = dev->ifindex;
	e->len = v.caplen;
	e->mtu = dev->mtu;
	__be16 ethertype = 0;
	bpf_probe_read_kernel(&ethertype, sizeof(ethertype), data + 12);
	e->protocol = bpf_ntohs(ethertype);

	section_frame_tuple(e, data);
	prog_run_begin(e, site->run_begins);
	if (site->verdict)
		section_verdict(e, (void *)(e + 1), site->retval, site->redirected);
	section_xdp_meta(xdp, (void *)(e + 1) + own_space);
	section_packet_view(e, &v, (void *)(e + 1) + section_space);
	event_end(e, site);
}
#endif

#endif
