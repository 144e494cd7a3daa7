/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * The XDP metadata section (--output-xdp-metadata, pwru's): up to sixteen
 * fields of a traced XDP program's xdp_buff, in the skb metadata section's
 * form (sections/skb_meta.h) and compiled the same way, against the xdp_buff
 * (src/filter/skb-expr.ts, compileSkbFetch with XDP_ROOT), into a region of
 * its own: only XDP program probes have it (observe_frame).
 * Its TS half: src/output/sections/xdp-meta.ts.
 */
#ifndef PKTPATH_SECTION_XDP_META_H
#define PKTPATH_SECTION_XDP_META_H

#define SECTION_XDP_META 16

/* As skb_meta_section: the valid mask, then `bytes` of values in their slots
 * (CONFIG.xdp_meta_bytes). */
struct xdp_meta_section {
	__u32 valid;       /* bit i: field i was read (no NULL on the way, no fault) */
	__u16 bytes;       /* of values after the struct */
	__u16 _pad;
};

#ifndef PKTPATH_LAYOUT_ONLY
#include "../filter.h"
#include "section.h"

#define XDP_META_REGION_INSNS 1024
#define XDP_META_MAGIC 0x70707864 /* marks the start of the region */
/* A constant for the verifier: CONFIG is frozen. */
#define XDP_META_SPACE (SECTION_WANTED(SECTION_XDP_META) ? \
	(__u32)(sizeof(struct section_head) + sizeof(struct xdp_meta_section)) + CONFIG.xdp_meta_bytes : 0)

/* Fills the section at `at` when asked for. The region reads with r8 = the
 * xdp_buff and r9 = the section: the mask in its first word while it runs
 * (left in r0), each value in its slot. */
static __always_inline void section_xdp_meta(struct xdp_buff *xdp, void *at)
{
	if (!SECTION_WANTED(SECTION_XDP_META))
		return;
	struct xdp_meta_section *m = section_open(at, SECTION_XDP_META, sizeof(*m) + CONFIG.xdp_meta_bytes);
	unsigned long r0 = FILTER_REGION_SIZED(XDP_META_MAGIC, XDP_META_REGION_INSNS, xdp, m);
	m->valid = (__u32)r0;
	m->bytes = CONFIG.xdp_meta_bytes;
	m->_pad = 0;
}

#endif /* PKTPATH_LAYOUT_ONLY */
#endif
