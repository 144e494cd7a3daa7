/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * The tuple section: addresses, ports, protocol and TCP flags from the
 * packet's headers, and the VLAN tags in front of them, in the event itself.
 * Decoded by src/decode/tuple.ts, formatted by src/output/tuple.ts.
 */
#ifndef PKTPATH_SECTION_TUPLE_H
#define PKTPATH_SECTION_TUPLE_H

#include "../packet.h"

/* Fills e->tuple from the parser's result; EVENT_HAS_TUPLE and true when the
 * packet is IP. */
#define SECTION_TUPLE(e, parse)                         \
	({                                              \
		__builtin_memset(&(e)->tuple, 0, sizeof((e)->tuple)); \
		bool ip = (parse) == 0;                 \
		if (ip)                                 \
			(e)->flags |= EVENT_HAS_TUPLE;  \
		ip;                                     \
	})

/* From the skb's headers (and its VLAN tags, into e->vlan). */
static __always_inline bool section_tuple(struct event *e, struct sk_buff *skb)
{
	return SECTION_TUPLE(e, parse_tuple(skb, &e->tuple, e->vlan));
}

/* From an Ethernet frame that has no skb yet (XDP). */
static __always_inline bool section_frame_tuple(struct event *e, unsigned char *frame)
{
	return SECTION_TUPLE(e, parse_frame_tuple(frame, &e->tuple, e->vlan));
}

#endif
