/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * The dump section (--output-skb, --output-skb-shared-info, --output-skb-cb,
 * pwru's): the skb and its shared info printed by the kernel from its BTF
 * (bpf_snprintf_btf, which only tracing programs may call: probes that are
 * define PKTPATH_TRACING), and the 48 bytes of skb->cb. Its TS half:
 * src/output/sections/dump.ts.
 */
#ifndef PKTPATH_SECTION_DUMP_H
#define PKTPATH_SECTION_DUMP_H

#define SECTION_DUMP 8

/* The skb as the kernel's BTF prints it (bpf_snprintf_btf: tracing programs
 * only, no room elsewhere), its shared info, and skb->cb. The texts follow
 * the struct, in the room CONFIG gives each (--set-percpu-buf): the record
 * grows only by what is asked. */
struct dump_section {
	__u16 skb_len;     /* bytes of text of the skb, 0: none */
	__u16 shinfo_len;  /* of its shared info */
	__u16 skb_room;    /* bytes after the struct for the skb's text */
	__u16 shinfo_room; /* then for the shared info's */
	__u32 cb_ok;       /* cb[] was read */
	__u32 _pad;
	__u8 cb[48];
	char dev_name[16]; /* the point's device, the one the event names ('' without one) */
};

#ifndef PKTPATH_LAYOUT_ONLY
#include "section.h"

/* The parts asked for (--output-skb, --output-skb-shared-info, --output-skb-cb): the section is there when one is. */
#define DUMP_FLAGS (CONFIG_DUMP_SKB | CONFIG_DUMP_SHINFO | CONFIG_DUMP_CB)
#ifdef PKTPATH_TRACING
#define DUMP_SKB_ROOM ((CONFIG.flags & CONFIG_DUMP_SKB) ? (__u32)CONFIG.dump_skb_room : 0)
#define DUMP_SHINFO_ROOM ((CONFIG.flags & CONFIG_DUMP_SHINFO) ? (__u32)CONFIG.dump_shinfo_room : 0)
#else
#define DUMP_SKB_ROOM 0
#define DUMP_SHINFO_ROOM 0
#endif
/* A constant for the verifier: CONFIG is frozen. User space keeps the rooms multiples of 8. */
#define DUMP_SECTION_BYTES ((__u32)sizeof(struct dump_section) + DUMP_SKB_ROOM + DUMP_SHINFO_ROOM)
#define DUMP_SPACE ((CONFIG.flags & DUMP_FLAGS) ? (__u32)sizeof(struct section_head) + DUMP_SECTION_BYTES : 0)

#ifdef PKTPATH_TRACING
/* Pointers as they are (BTF_F_PTR_RAW): the skb's own address is how pktpath names it. */
#define DUMP_BTF_FLAGS 4

/* Text of `ptr` as type `type_id` into `to`; its length without the NUL. */
static __always_inline __u16 dump_btf(char *to, __u32 size, void *ptr, __u32 type_id)
{
	struct btf_ptr p = { .ptr = ptr, .type_id = type_id };
	long n = bpf_snprintf_btf(to, size, &p, sizeof(p), DUMP_BTF_FLAGS);
	if (n <= 0)
		return 0;
	return n >= size ? size - 1 : n;
}
#endif

static __always_inline void section_dump(struct sk_buff *skb, struct net_device *dev, void *at)
{
	if (!(CONFIG.flags & DUMP_FLAGS))
		return;
	struct dump_section *d = section_open(at, SECTION_DUMP, DUMP_SECTION_BYTES);
	d->skb_len = 0;
	d->shinfo_len = 0;
	d->skb_room = DUMP_SKB_ROOM;
	d->shinfo_room = DUMP_SHINFO_ROOM;
	d->cb_ok = 0;
	d->_pad = 0;
	d->dev_name[0] = 0;
	/* Printed from BTF, skb->dev is only a pointer: the device is named beside it. */
	if (dev && (CONFIG.flags & (CONFIG_DUMP_SKB | CONFIG_DUMP_SHINFO)))
		bpf_probe_read_kernel_str(d->dev_name, sizeof(d->dev_name), __builtin_preserve_access_index(&dev->name));
	if (CONFIG.flags & CONFIG_DUMP_CB)
		d->cb_ok = bpf_probe_read_kernel(d->cb, sizeof(d->cb), __builtin_preserve_access_index(&skb->cb)) == 0;
#ifdef PKTPATH_TRACING
	char *text = (char *)(d + 1);
	if (DUMP_SKB_ROOM)
		d->skb_len = dump_btf(text, DUMP_SKB_ROOM, skb, bpf_core_type_id_kernel(struct sk_buff));
	if (DUMP_SHINFO_ROOM) {
		/* skb_shinfo(): the end of the data area (an offset from head on 64-bit kernels). */
		unsigned char *head = KREAD(skb, head);
		struct skb_shared_info *sh = (void *)(head + KREAD(skb, end));
		d->shinfo_len = dump_btf(text + DUMP_SKB_ROOM, DUMP_SHINFO_ROOM, sh, bpf_core_type_id_kernel(struct skb_shared_info));
	}
#endif
}

#endif /* PKTPATH_LAYOUT_ONLY */
#endif
