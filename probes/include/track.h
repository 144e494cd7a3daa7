/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * --filter-track-skb: an skb that matched once is followed whatever its
 * headers become (NAT, encapsulation), and so are clones sharing its data,
 * until a point that frees it.
 */
#ifndef PKTPATH_TRACK_H
#define PKTPATH_TRACK_H

static __always_inline bool is_tracked(struct sk_buff *skb)
{
	__u64 key = (__u64)skb;
	if (bpf_map_lookup_elem(&tracked_skbs, &key))
		return true;
	/* A clone shares the data buffer of the skb it was cloned from. */
	key = (__u64)KREAD(skb, head);
	return bpf_map_lookup_elem(&tracked_heads, &key) != NULL;
}

static __always_inline void track(struct sk_buff *skb)
{
	__u8 one = 1;
	__u64 key = (__u64)skb;
	if (bpf_map_update_elem(&tracked_skbs, &key, &one, BPF_NOEXIST) == 0)
		count(&track_stats, TRACK_ADDED);
	key = (__u64)KREAD(skb, head);
	bpf_map_update_elem(&tracked_heads, &key, &one, BPF_ANY);
}

static __always_inline void untrack(struct sk_buff *skb)
{
	__u64 key = (__u64)skb;
	if (bpf_map_delete_elem(&tracked_skbs, &key) == 0)
		count(&track_stats, TRACK_FREED);
	key = (__u64)KREAD(skb, head);
	bpf_map_delete_elem(&tracked_heads, &key);
}

#endif
