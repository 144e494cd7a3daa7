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
 * The skb is being freed. One lookup when its data is not followed: every
 * followed skb has its current buffer in tracked_heads, so the freeing points
 * (which see every skb the machine frees there) cost little more than their
 * dispatch. The data entry goes with the last skb holding it; while clones
 * still hold it, they are followed without an owner.
 */
static __always_inline void forget(struct sk_buff *skb)
{
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
