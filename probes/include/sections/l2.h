/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * The L2 source flag (tc egress): whether the frame's Ethernet source is the
 * device's own address. A neighbour redirect (bpf_redirect_neigh) builds a new
 * header from the device and its neighbour; a plain redirect keeps the frame's
 * old one. src/trace/verdicts.ts tells the two apart by it.
 */
#ifndef PKTPATH_SECTION_L2_H
#define PKTPATH_SECTION_L2_H

#include "../packet.h"

#define MAC_HEADER_UNSET ((__u16)~0U)

static __always_inline void section_l2_source(struct event *e, struct sk_buff *skb, struct net_device *dev)
{
	struct { __u32 hi; __u16 lo; } src, own;
	__u16 mac = KREAD(skb, mac_header);

	if (!dev || mac == MAC_HEADER_UNSET)
		return;
	if (read_bytes(&src, 6, KREAD(skb, head) + mac + 6) || read_bytes(&own, 6, KREAD(dev, dev_addr)))
		return;
	if (src.hi == own.hi && src.lo == own.lo)
		e->flags |= EVENT_HAS_OWN_SRC_MAC;
}

#endif
