/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * The packet section: up to CONFIG.snaplen bytes of the packet, from its
 * Ethernet header where it has one in front of the IP header, else from the
 * IP header (--output-pcap). Decoded by src/decode/packet.ts, written out by
 * src/output/pcapng.ts.
 */
#ifndef PKTPATH_SECTION_PACKET_H
#define PKTPATH_SECTION_PACKET_H

#include "../packet.h"

/* Copies the bytes of the packet `v` shows (NULL: none) to `to`, inside the
 * record `e`; EVENT_HAS_PACKET when it did. */
static __always_inline void section_packet_view(struct event *e, const struct packet_view *v, void *to)
{
	e->cap_len = 0;
	e->cap_orig_len = 0;
	e->cap_l2 = 0;
	e->cap_offset = (__u16)((char *)to - (char *)e);
	if (!CONFIG.snaplen || !v)
		return;
	__u32 n = v->caplen < CONFIG.snaplen ? v->caplen : CONFIG.snaplen;
	/* For the verifier: an unsigned length that fits what was reserved
	 * (--pcap-snaplen is at most 65535). */
	n &= 0xffff;
	if (n > CONFIG.snaplen)
		return;
	if (bpf_probe_read_kernel(to, n, v->start))
		return;
	e->cap_len = n;
	e->cap_orig_len = v->wirelen;
	e->cap_l2 = v->l2;
	e->flags |= EVENT_HAS_PACKET;
}

static __always_inline void section_packet(struct event *e, struct sk_buff *skb, void *to)
{
	struct packet_view v;
	bool seen = CONFIG.snaplen && packet_view(skb, &v);
	section_packet_view(e, seen ? &v : 0, to);
}

#endif
