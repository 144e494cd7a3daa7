/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * Does this packet interest the user? Namespace, device and mark first (a
 * field each), the pcap filter last; an skb followed by --filter-track-skb
 * passes whatever its headers have become.
 */
#ifndef PKTPATH_MATCH_H
#define PKTPATH_MATCH_H

#include "bench.h"
#include "filter.h"
#include "packet.h"
#include "skb_expr.h"
#include "track.h"
#include "tunnel.h"

/* Runs the injected pcap filter on a packet's bytes: from a copy of the
 * first ones, or in place where the filter was translated so (its loads are
 * then plain loads the JIT makes fault-safe: no copy of bytes it may not read). */
static __always_inline bool pcap_match_view(const struct packet_view *v)
{
	__u32 scratch[FILTER_SCRATCH_WORDS];
	filter_scratch(scratch, v->start, v->caplen, v->wirelen, !(CONFIG.flags & CONFIG_DIRECT_LOADS));

	unsigned long verdict;
	if (v->l2)
		verdict = FILTER_REGION(FILTER_MAGIC_L2, v->start, scratch);
	else
		verdict = FILTER_REGION(FILTER_MAGIC_L3, v->start, scratch);
	return verdict != 0;
}

static __always_inline bool pcap_match(struct sk_buff *skb)
{
	struct packet_view v;
	if (bench_stops_at(STAGE_BEFORE_PACKET))
		return false;
	if (!packet_view(skb, &v))
		return false; /* no header located: nothing to match against */
	if (bench_stops_at(STAGE_PACKET_LOCATED))
		return false;
	return pcap_match_view(&v);
}

static __always_inline __u32 skb_netns(struct sk_buff *skb, struct net_device *dev)
{
	if (dev) {
		struct net *net = KREAD_PTR(dev, nd_net.net);
		return KREAD(net, ns.inum);
	}
	struct sock *sk = KREAD_PTR(skb, sk);
	if (sk) {
		struct net *net = KREAD(sk, __sk_common.skc_net.net);
		return KREAD(net, ns.inum);
	}
	return 0;
}

/* `*netns` is the point's namespace when it knows it (0: derived here when needed). */
static __always_inline bool wanted(struct sk_buff *skb, struct net_device *dev, __u32 *netns)
{
	if ((CONFIG.flags & CONFIG_TRACK) && is_tracked(skb)) {
		stack_note(skb);
		return true;
	}
	if (stack_adopts(skb)) {
		track(skb);
		stack_note(skb);
		return true;
	}
	if (CONFIG.netns) {
		if (!*netns)
			*netns = skb_netns(skb, dev);
		if (*netns != CONFIG.netns)
			return false;
	}
	if (CONFIG.ifindex) {
		__u32 ifindex = dev ? KREAD(dev, ifindex) : KREAD(skb, skb_iif);
		if (ifindex != CONFIG.ifindex)
			return false;
	}
	if ((CONFIG.flags & CONFIG_MARK) && (KREAD(skb, mark) & CONFIG.mark_mask) != CONFIG.mark)
		return false;
	if ((CONFIG.flags & CONFIG_SKB_EXPR) && !skb_expr_match(skb))
		return false;
	if ((CONFIG.flags & CONFIG_FILTER) && !pcap_match(skb))
		return false;
	if ((CONFIG.flags & (CONFIG_INNER_L2 | CONFIG_INNER_L3)) && !inner_match(skb))
		return false;
	if (CONFIG.flags & CONFIG_TRACK) {
		track(skb);
		stack_note(skb);
	}
	return true;
}

/* The same for a frame before it has an skb (XDP): no mark and no skb fields
 * to match (a --filter-mark or --filter-skb-expr never matches), nothing to follow. */
static __always_inline bool wanted_frame(struct net_device *dev, const struct packet_view *v, __u32 netns)
{
	if (CONFIG.netns && netns != CONFIG.netns)
		return false;
	if (CONFIG.ifindex && KREAD(dev, ifindex) != CONFIG.ifindex)
		return false;
	if (CONFIG.flags & (CONFIG_MARK | CONFIG_SKB_EXPR))
		return false;
	if ((CONFIG.flags & CONFIG_FILTER) && !pcap_match_view(v))
		return false;
	/* Encapsulated frames reach XDP too; the inner filters are the skb path's only. */
	if (CONFIG.flags & (CONFIG_INNER_L2 | CONFIG_INNER_L3))
		return false;
	return true;
}

#endif

