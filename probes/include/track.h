/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * --filter-track-skb: an skb that matched once is followed whatever its
 * headers become (NAT, encapsulation, decapsulation), and so are clones
 * sharing its data, until it is freed.
 *
 * Frees: every tracepoint that frees an skb (kfree_skb, consume_skb) forgets
 * it, also where --filter-func leaves the point out (an internal program that
 * reports nothing: the plan's `forgets`). The kernel still frees some skbs
 * where no tracepoint sees it (TCP's __kfree_skb and skb_attempt_defer_free,
 * GRO's stolen heads, napi_consume_skb's defer path) and gives the memory to
 * the next skb at once. So a followed skb is known by its address and a
 * generation: its data buffer (`head`), what an allocation gets.
 *
 * The buffer of one skb moves in pskb_expand_head (headroom for an outer
 * header when a packet is encapsulated, a write into a header a
 * clone shares), which no tracepoint shows. What no header change touches is
 * the end of the data: NAT rewrites headers, encapsulation adds them in
 * front, decapsulation pulls them from the front, and pskb_expand_head copies
 * the bytes into a buffer of the skb's own. So the last 8 bytes of the linear
 * data, noted at each sighting, tell the two apart: another buffer, not
 * shared, with the same last bytes is this skb moved (followed on, its
 * generation renewed); anything else is the next skb at the address (not
 * followed; the stale entry goes). What cannot be told apart: a newcomer
 * given the same buffer as well (the allocators give back what was freed
 * last), or another buffer ending in the same bytes (mostly a packet of the
 * same flow, with identical payloads: one the filter wants anyway).
 *
 * Clones: a followed buffer is also noted with the skb followed with it, its
 * owner. A buffer freed where no probe saw it goes back to the allocator too,
 * and the next one to get it may be cloned (TCP clones every segment it
 * sends); so a clone is followed only while its owner still holds the buffer
 * as a clone, or once the owner was freed while clones still shared it.
 */
#ifndef PKTPATH_TRACK_H
#define PKTPATH_TRACK_H

/* skb_shared_info.dataref: its low 16 bits count the skbs sharing the data. */
#define SKB_DATAREF_MASK 0xffff
/* tracked_heads' owner once the followed skb was freed and clones hold its data. */
#define TRACK_NO_OWNER 0

static __always_inline __u64 skb_head(struct sk_buff *skb)
{
	return (__u64)KREAD(skb, head);
}

/* The last 8 bytes of the linear data (skb->tail is an offset from head on 64-bit). */
static __always_inline __u64 last_bytes(struct sk_buff *skb, __u64 head)
{
	__u64 bytes = 0;
	bpf_probe_read_kernel(&bytes, sizeof(bytes), (void *)(head + KREAD(skb, tail) - sizeof(bytes)));
	return bytes;
}

/* How many skbs hold the data (this one included): read only where a free
 * concerns followed data, so a helper call is fine. */
static __always_inline __u32 data_refs(struct sk_buff *skb, __u64 head)
{
	struct skb_shared_info *shinfo = (void *)(head + KREAD(skb, end));
	int refs = 1;
	bpf_probe_read_kernel(&refs, sizeof(refs), &shinfo->dataref);
	return (__u32)refs & SKB_DATAREF_MASK;
}

/* Whether the owner of a followed buffer still holds it as a clone: read with
 * probed loads, since it may have been freed where no probe saw it. */
static __always_inline bool owner_shares(__u64 owner, __u64 head)
{
	if (owner == TRACK_NO_OWNER)
		return true;
	struct sk_buff *o = (struct sk_buff *)owner;
	return (__u64)BPF_CORE_READ(o, head) == head && BPF_CORE_READ_BITFIELD_PROBED(o, cloned);
}

/* The data entry `key` made with `head` goes, unless another skb owns it now. */
static __always_inline void drop_head_of(__u64 key, __u64 head)
{
	__u64 *owner = bpf_map_lookup_elem(&tracked_heads, &head);
	if (owner && *owner == key)
		bpf_map_delete_elem(&tracked_heads, &head);
}

/* The entry at `key` is of an earlier generation: it goes, and its data entry. */
static __always_inline void drop_stale(__u64 key, __u64 head)
{
	if (bpf_map_delete_elem(&tracked_skbs, &key) != 0)
		return;
	count(&track_stats, TRACK_STALE);
	drop_head_of(key, head);
}

/*
 * --filter-track-skb-by-stackid, as pwru: an skb the kernel rebuilds (veth's
 * XDP making a new skb of a shared one, a bridge or tunnel making another)
 * carries none of the old one's identity, but is made on the same kernel
 * stack while the old one is in hand. Each followed skb is noted for the
 * stack it is seen on (by the stack's base: kernel stacks are THREAD_SIZE,
 * 16 KiB on x86-64, and aligned to it); another skb seen on that stack while
 * the noted one lives is followed from then on. The entry ends with the
 * noted skb's free, wherever that is. A stack not aligned to its size (some
 * IRQ stacks) may read as two bases: fewer skbs are taken up, never others.
 */
#define KERNEL_STACK_SIZE 16384

static __always_inline __u64 stack_base(void)
{
	__u64 base = 0;
	void *here = &base;
	/* The stack pointer's bits as a number (the verifier lets a privileged
	 * loader read them so: CAP_PERFMON). */
	bpf_probe_read_kernel(&base, sizeof(base), &here);
	return base & ~(__u64)(KERNEL_STACK_SIZE - 1);
}

static __always_inline void stack_note(struct sk_buff *skb)
{
	if (!(CONFIG.flags & CONFIG_TRACK_STACK))
		return;
	__u64 base = stack_base();
	__u64 key = (__u64)skb;
	__u64 *noted = bpf_map_lookup_elem(&stack_skbs, &base);
	if (noted && *noted == key)
		return;
	bpf_map_update_elem(&stack_skbs, &base, &key, BPF_ANY);
	bpf_map_update_elem(&skb_stacks, &key, &base, BPF_ANY);
}

/* Another skb on the stack of a followed one that lives: its successor. */
static __always_inline bool stack_adopts(struct sk_buff *skb)
{
	if (!(CONFIG.flags & CONFIG_TRACK_STACK))
		return false;
	__u64 base = stack_base();
	__u64 *noted = bpf_map_lookup_elem(&stack_skbs, &base);
	if (!noted || *noted == (__u64)skb)
		return false;
	count(&track_stats, TRACK_BY_STACK);
	return true;
}

/* A freed skb's stack entry goes, wherever the free happens. */
static __always_inline void stack_forget(__u64 key)
{
	if (!(CONFIG.flags & CONFIG_TRACK_STACK))
		return;
	__u64 *base = bpf_map_lookup_elem(&skb_stacks, &key);
	if (!base)
		return;
	__u64 b = *base;
	__u64 *noted = bpf_map_lookup_elem(&stack_skbs, &b);
	if (noted && *noted == key)
		bpf_map_delete_elem(&stack_skbs, &b);
	bpf_map_delete_elem(&skb_stacks, &key);
}

static __always_inline bool is_tracked(struct sk_buff *skb)
{
	__u64 key = (__u64)skb;
	__u64 head = skb_head(skb);
	struct tracked_skb *t = bpf_map_lookup_elem(&tracked_skbs, &key);
	if (t) {
		__u64 last = last_bytes(skb, head);
		if (t->head == head) {
			t->last_bytes = last;
			return true;
		}
		/* pskb_expand_head gives the skb a buffer of its own: a shared one is the next skb's. */
		if (t->last_bytes == last && data_refs(skb, head) <= 1) {
			/* Its data moved: the new buffer is the one its clones will share. */
			drop_head_of(key, t->head);
			t->head = head;
			bpf_map_update_elem(&tracked_heads, &head, &key, BPF_ANY);
			count(&track_stats, TRACK_MOVED);
			return true;
		}
		drop_stale(key, t->head);
	}
	/* A clone shares the data buffer of the skb it was cloned from; an skb
	 * that is no clone holds its buffer alone. */
	if (!KREAD_BITFIELD(skb, cloned))
		return false;
	__u64 *owner = bpf_map_lookup_elem(&tracked_heads, &head);
	return owner && owner_shares(*owner, head);
}

static __always_inline void track(struct sk_buff *skb)
{
	__u64 key = (__u64)skb;
	__u64 head = skb_head(skb);
	struct tracked_skb t = { .head = head, .last_bytes = last_bytes(skb, head) };
	if (bpf_map_update_elem(&tracked_skbs, &key, &t, BPF_NOEXIST) == 0)
		count(&track_stats, TRACK_ADDED);
	bpf_map_update_elem(&tracked_heads, &head, &key, BPF_ANY);
}

/*
 * A clone or copy of `from` was made (fexit on skb_clone, skb_copy, ...):
 * followed when `from` is. Clones would be found by their shared data as
 * well; copies have data of their own, and only this sees them made.
 */
static __always_inline void track_copy(struct sk_buff *from, struct sk_buff *copy)
{
	if (!copy || !is_tracked(from))
		return;
	track(copy);
	count(&track_stats, TRACK_COPIED);
}

/*
 * The skb is being freed. One lookup when its data is not followed: every
 * followed skb has its current buffer in tracked_heads, so the freeing points
 * (which see every skb the machine frees there) cost little more than their
 * dispatch. The data entry goes with the last skb holding it; while clones
 * still hold it, they are followed without an owner.
 */
static __always_inline void forget(struct sk_buff *skb)
{
	stack_forget((__u64)skb);
	__u64 head = skb_head(skb);
	__u64 *owner = bpf_map_lookup_elem(&tracked_heads, &head);
	if (!owner)
		return;
	__u64 key = (__u64)skb;
	struct tracked_skb *t = bpf_map_lookup_elem(&tracked_skbs, &key);
	if (t && t->head != head)
		drop_stale(key, t->head);
	else if (t && bpf_map_delete_elem(&tracked_skbs, &key) == 0)
		count(&track_stats, TRACK_FREED);
	if (data_refs(skb, head) <= 1)
		bpf_map_delete_elem(&tracked_heads, &head);
	else if (*owner == key)
		*owner = TRACK_NO_OWNER;
}

#endif
