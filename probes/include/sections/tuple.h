/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * The tuple section: addresses, ports, protocol and TCP flags from the
 * packet's headers, in the event itself. Decoded by src/decode/tuple.ts,
 * formatted by src/output/tuple.ts.
 */
#ifndef PKTPATH_SECTION_TUPLE_H
#define PKTPATH_SECTION_TUPLE_H

#include "../packet.h"

/* Fills e->tuple; EVENT_HAS_TUPLE and true when the packet is IP. */
static __always_inline bool section_tuple(struct event *e, struct sk_buff *skb)
{
	__builtin_memset(&e->tuple, 0, sizeof(e->tuple));
	if (parse_tuple(skb, &e->tuple) != 0)
		return false;
	e->flags |= EVENT_HAS_TUPLE;
	return true;
}

#endif
