/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * The skb queue section (--output-skb-queue): the skb's priority (SO_PRIORITY,
 * tc's and nft's `meta priority`) and the transmit queue it was mapped to.
 * Its TS half: src/output/sections/skb-queue.ts.
 */
#ifndef PKTPATH_SECTION_SKB_QUEUE_H
#define PKTPATH_SECTION_SKB_QUEUE_H

#define SECTION_SKB_QUEUE 11

struct skb_queue_section {
	__u32 priority;
	__u16 queue_mapping;
	__u16 _pad;
};

#ifndef PKTPATH_LAYOUT_ONLY
#include "section.h"

#define SKB_QUEUE_SPACE SECTION_SPACE(struct skb_queue_section, SECTION_WANTED(SECTION_SKB_QUEUE))

static __always_inline void section_skb_queue(struct sk_buff *skb, void *at)
{
	if (!SECTION_WANTED(SECTION_SKB_QUEUE))
		return;
	struct skb_queue_section *q = section_open(at, SECTION_SKB_QUEUE, sizeof(*q));
	q->priority = KREAD(skb, priority);
	q->queue_mapping = KREAD(skb, queue_mapping);
	q->_pad = 0;
}

#endif /* PKTPATH_LAYOUT_ONLY */
#endif
