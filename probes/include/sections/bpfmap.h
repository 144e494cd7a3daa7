/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * The BPF map section (--output-bpfmap): a map operation of a traced BPF
 * program (--filter-track-bpf-helpers), seen at the kernel function that
 * does it: the map's id, name and sizes, and the first BPFMAP_BYTES bytes of
 * the key and of the value (an update's new value, a lookup's result; none
 * for a delete or a lookup that found nothing). User space decodes them with
 * the map's BTF. Its TS half: src/output/sections/bpfmap.ts.
 */
#ifndef PKTPATH_SECTION_BPFMAP_H
#define PKTPATH_SECTION_BPFMAP_H

#define SECTION_BPFMAP 16
#define BPFMAP_BYTES 64

/* bpfmap_section.op */
enum bpfmap_op {
	BPFMAP_LOOKUP = 1,
	BPFMAP_UPDATE = 2,
	BPFMAP_DELETE = 3,
};

struct bpfmap_section {
	__u32 id;
	__u32 key_size;   /* the map's: the bytes below stop at BPFMAP_BYTES */
	__u32 value_size;
	__u8 op;          /* enum bpfmap_op */
	__u8 has_value;   /* value holds bytes (a lookup that found nothing, a delete: 0) */
	__u8 _pad[2];
	char name[16];
	__u8 key[BPFMAP_BYTES];
	__u8 value[BPFMAP_BYTES];
};

#ifndef PKTPATH_LAYOUT_ONLY
#include "section.h"

#define BPFMAP_SPACE SECTION_SPACE(struct bpfmap_section, SECTION_WANTED(SECTION_BPFMAP))

/* At most BPFMAP_BYTES of `size` bytes at `from`; a size the verifier can bound. */
static __always_inline void bpfmap_bytes(__u8 *to, __u32 size, const void *from)
{
	if (size > BPFMAP_BYTES)
		size = BPFMAP_BYTES;
	asm volatile("%0 &= 127" : "+r"(size));
	if (size > BPFMAP_BYTES || bpf_probe_read_kernel(to, size, from) != 0)
		__builtin_memset(to, 0, BPFMAP_BYTES);
}

/* The section at `at`: `map` is the kernel's struct bpf_map of the operation. */
static __always_inline void section_bpfmap(void *at, struct bpf_map *map, enum bpfmap_op op, const void *key, const void *value)
{
	if (!SECTION_WANTED(SECTION_BPFMAP))
		return;
	struct bpfmap_section *m = section_open(at, SECTION_BPFMAP, sizeof(*m));
	__builtin_memset(m, 0, sizeof(*m));
	m->id = BPF_CORE_READ(map, id);
	m->key_size = BPF_CORE_READ(map, key_size);
	m->value_size = BPF_CORE_READ(map, value_size);
	m->op = op;
	bpf_probe_read_kernel_str(m->name, sizeof(m->name), &map->name);
	if (key)
		bpfmap_bytes(m->key, m->key_size, key);
	if (value) {
		m->has_value = 1;
		bpfmap_bytes(m->value, m->value_size, value);
	}
}

#endif /* PKTPATH_LAYOUT_ONLY */
#endif
