/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * The skb metadata section (--output-skb-metadata, pwru's): up to four skb
 * fields, read by code user space compiles from the kernel's BTF
 * (src/filter/skb-expr.ts, compileSkbFetch) into the region below before load.
 * Its TS half: src/output/sections/skb-meta.ts.
 */
#ifndef PKTPATH_SECTION_SKB_META_H
#define PKTPATH_SECTION_SKB_META_H

#define SECTION_SKB_META 9

/* The fields --output-skb-metadata names, in its order. */
struct skb_meta_section {
	__u64 values[4];
	__u32 valid;       /* bit i: values[i] was read (no NULL on the way, no fault) */
	__u32 _pad;
};

#ifndef PKTPATH_LAYOUT_ONLY
#include "../filter.h"
#include "section.h"

#define SKB_META_REGION_INSNS 256
#define SKB_META_MAGIC 0x70706d64 /* marks the start of the region */
#define SKB_META_SPACE SECTION_SPACE(struct skb_meta_section, SECTION_WANTED(SECTION_SKB_META))

/* r8 = the skb, r9 = 64 bytes of scratch: 32 for the reads, then the four
 * values; the region leaves the valid mask in r0. */
static __always_inline __u32 skb_meta_fetch(struct sk_buff *skb, __u64 *scratch)
{
	unsigned long r0 = FILTER_REGION_SIZED(SKB_META_MAGIC, SKB_META_REGION_INSNS, skb, scratch);
	return (__u32)r0;
}

/* Fills the section at `at` when asked for. */
static __always_inline void section_skb_meta(struct sk_buff *skb, void *at)
{
	if (!SECTION_WANTED(SECTION_SKB_META))
		return;
	__u64 scratch[8] = {};
	struct skb_meta_section *m = section_open(at, SECTION_SKB_META, sizeof(*m));
	m->valid = skb_meta_fetch(skb, scratch);
	m->_pad = 0;
	m->values[0] = scratch[4];
	m->values[1] = scratch[5];
	m->values[2] = scratch[6];
	m->values[3] = scratch[7];
}

#endif /* PKTPATH_LAYOUT_ONLY */
#endif
