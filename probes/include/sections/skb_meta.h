/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * The skb metadata section (--output-skb-metadata, pwru's): up to sixteen skb
 * fields (numbers, pointer casts, byte ranges), read by code user space compiles from the kernel's BTF
 * (src/filter/skb-expr.ts, compileSkbFetch) into the region below before load.
 * Its TS half: src/output/sections/skb-meta.ts.
 */
#ifndef PKTPATH_SECTION_SKB_META_H
#define PKTPATH_SECTION_SKB_META_H

#define SECTION_SKB_META 9

/* The fields --output-skb-metadata names, in its order: the valid mask,
 * then `bytes` of values, each in its slot (8 bytes for a number, a byte
 * range rounded up to 8), as user space compiled them (CONFIG.skb_meta_bytes).
 * --output-xdp-metadata's section has the same form (sections/xdp_meta.h). */
struct skb_meta_section {
	__u32 valid;       /* bit i: field i was read (no NULL on the way, no fault) */
	__u16 bytes;       /* of values after the struct */
	__u16 _pad;
};

#ifndef PKTPATH_LAYOUT_ONLY
#include "../filter.h"
#include "section.h"

#define SKB_META_REGION_INSNS 1024
#define SKB_META_MAGIC 0x70706d64 /* marks the start of the region */
/* A constant for the verifier: CONFIG is frozen. */
#define SKB_META_SPACE (SECTION_WANTED(SECTION_SKB_META) ? \
	(__u32)(sizeof(struct section_head) + sizeof(struct skb_meta_section)) + CONFIG.skb_meta_bytes : 0)

/* Fills a section of fields (this one, sections/xdp_meta.h) at `at`: the
 * region `magic` reads with r8 = `root` and r9 = the section, the mask in its
 * first word while it runs (left in r0), each value in its slot. A macro: the
 * marker is an immediate of the region's first instruction. */
#define FIELDS_SECTION(kind, magic, insns, root, at, nbytes) ({                          \
	struct skb_meta_section *__m = section_open(at, kind, sizeof(*__m) + (nbytes)); \
	unsigned long __r0 = FILTER_REGION_SIZED(magic, insns, root, __m);             \
	__m->valid = (__u32)__r0;                                                      \
	__m->bytes = (nbytes);                                                         \
	__m->_pad = 0;                                                                 \
})

/* Fills the section at `at` when asked for. */
static __always_inline void section_skb_meta(struct sk_buff *skb, void *at)
{
	if (!SECTION_WANTED(SECTION_SKB_META))
		return;
	FIELDS_SECTION(SECTION_SKB_META, SKB_META_MAGIC, SKB_META_REGION_INSNS, skb, at, CONFIG.skb_meta_bytes);
}

#endif /* PKTPATH_LAYOUT_ONLY */
#endif
