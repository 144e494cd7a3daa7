/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * What every section helper shares: the head in front of its section
 * (struct section_head, event.h), the space it reserves, and whether the run
 * asks for it (CONFIG.sections, one bit per kind).
 */
#ifndef PKTPATH_SECTION_H
#define PKTPATH_SECTION_H

/* Bytes a section of `type` takes, head included, when `on`: a constant once
 * inlined, as the verifier wants for the reservation. */
#define SECTION_SPACE(type, on) ((on) ? (__u32)(sizeof(struct section_head) + sizeof(type)) : 0)

/* The run asks for the optional section of kind `kind`. */
#define SECTION_WANTED(kind) (CONFIG.sections & (1U << (kind)))

/* Writes a head at `at` for a section of `size` bytes; the section goes right after it. */
static __always_inline void *section_open(void *at, __u16 kind, __u32 size)
{
	struct section_head *h = at;
	h->kind = kind;
	h->len = sizeof(*h) + size;
	h->_pad = 0;
	return h + 1;
}

#endif
