/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * The configuration every probe instance is loaded with, and the maps all
 * instances share: user space makes them from the first object's
 * definitions, and every object reuses their file descriptors
 * (src/trace/probes.ts).
 */
#ifndef PKTPATH_MAPS_H
#define PKTPATH_MAPS_H

/* Written by user space before load; the verifier folds these constants, so
 * disabled features cost nothing in the probe. */
const volatile struct config CONFIG = {};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 24);
} events SEC(".maps");

/* Records the ring had no room for. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} lost SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 16384);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, 127 * sizeof(__u64));
} stacks SEC(".maps");

/* --filter-track-skb (track.h): the skbs followed, each with its data buffer
 * and that data's last bytes when last seen (its generation), and the data
 * buffers followed, each with the skb it was followed with (clones share
 * them). LRU: an skb freed where no probe sees it is evicted in time instead
 * of filling the map; user space counts evictions from the stats below. */
struct tracked_skb {
	__u64 head;
	__u64 last_bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64); /* struct sk_buff * */
	__type(value, struct tracked_skb);
} tracked_skbs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);   /* a head */
	__type(value, __u64); /* the struct sk_buff * followed with it */
} tracked_heads SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TRACK_STATS);
	__type(key, __u32);
	__type(value, __u64);
} track_stats SEC(".maps");

/* --filter-track-skb-by-stackid (track.h): the followed skb last seen on
 * each kernel stack (by the stack's base), and the stack each was noted on,
 * so that its free ends its entry wherever it happens. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);   /* a kernel stack's base */
	__type(value, __u64); /* the struct sk_buff * last seen on it */
} stack_skbs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);   /* struct sk_buff * */
	__type(value, __u64); /* the stack it was noted on */
} skb_stacks SEC(".maps");

/*
 * --filter-non-skb-funcs (window.h): the wanted skb whose function this CPU
 * is in, and how many of its calls are open.
 */
struct cpu_window {
	__u64 skb;
	__u32 depth;
	__u32 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cpu_window);
} cpu_windows SEC(".maps");

/*
 * The skb this CPU last observed (--output-route, --output-neigh): route and
 * neighbour tracepoints carry no skb, and tie their events to this one when
 * it is recent and its flow is theirs (probes/route.bpf.c says why that holds).
 * Written by observe() for the skbs it reports, only when those sections are asked for.
 */
struct cpu_skb {
	__u64 skb;
	__u64 ts_ns;
	__u32 netns;
	__u32 ifindex;
	struct tuple tuple;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cpu_skb);
} cpu_skbs SEC(".maps");

/* Adds one to a per-CPU counter. */
static __always_inline void count(void *map, __u32 index)
{
	__u64 *n = bpf_map_lookup_elem(map, &index);
	if (n)
		*n += 1;
}

#endif
