/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * The XDP metadata section (--output-xdp-metadata, pwru's): up to sixteen
 * fields of a traced XDP program's xdp_buff, in the skb metadata section's
 * form (struct skb_meta_section, sections/skb_meta.h) and compiled the same
 * way, against the xdp_buff (src/filter/skb-expr.ts, compileSkbFetch with
 * XDP_ROOT), into a region of its own: only XDP program probes have it
 * (observe_frame). Its TS half: src/output/sections/xdp-meta.ts.
 */
#ifndef PKTPATH_SECTION_XDP_META_H
#define PKTPATH_SECTION_XDP_META_H

#include "skb_meta.h"

#define SECTION_XDP_META 17

#ifndef PKTPATH_LAYOUT_ONLY
#define XDP_META_REGION_INSNS 1024
#define XDP_META_MAGIC 0x70707864 /* marks the start of the region */
/* A constant for the verifier: CONFIG is frozen. */
#define XDP_META_SPACE (SECTION_WANTED(SECTION_XDP_META) ? \
	(__u32)(sizeof(struct section_head) + sizeof(struct skb_meta_section)) + CONFIG.xdp_meta_bytes : 0)

/* Fills the section at `at` when asked for, the xdp_buff in r8. */
static __always_inline void section_xdp_meta(struct xdp_buff *xdp, void *at)
{
	if (!SECTION_WANTED(SECTION_XDP_META))
		return;
	FIELDS_SECTION(SECTION_XDP_META, XDP_META_MAGIC, XDP_META_REGION_INSNS, xdp, at, CONFIG.xdp_meta_bytes);
}

#endif /* PKTPATH_LAYOUT_ONLY */
#endif
