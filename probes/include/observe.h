/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * What every observation point does with an skb: parse its headers, run the
 * filter, and only for a match reserve a record, fill it and send it. Each
 * attach family (tracepoint, tc, netfilter) is a thin wrapper around observe().
 */
#ifndef PKTPATH_OBSERVE_H
#define PKTPATH_OBSERVE_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "event.h"
#include "filter.h"
#include "ct.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Every skb, device and socket pointer the probes get is typed (BTF), so
 * fields are read with plain loads, which CO-RE relocates and the verifier
 * guards, not one bpf_probe_read_kernel() call each: it matters at millions
 * of packets a second. Packet bytes still need bpf_probe_read_kernel(). */

/* Written by user space before load; the verifier folds these constants, so
 * disabled features cost nothing in the probe. */
const volatile struct config CONFIG = {};

/* Shared by every probe object: the first object loaded creates them, the
 * others reuse their file descriptors. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 24);
} events SEC(".maps");

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

/* skbs followed by --filter-track-skb, and their data buffers (shared with
 * clones). LRU: an skb freed where no probe sees it is evicted in time instead
 * of filling the map; user space counts evictions from the stats below. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, __u8);
} tracked_skbs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, __u8);
} tracked_heads SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TRACK_STATS);
	__type(key, __u32);
	__type(value, __u64);
} track_stats SEC(".maps");

#define ETH_HLEN 14
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_P_8021Q 0x8100
#define ETH_P_8021AD 0x88A8
#define IP_MF 0x2000
/* IPv6 extension headers (uapi/linux/in6.h, not in vmlinux.h). */
#define IPPROTO_HOPOPTS 0
#define IPPROTO_ROUTING 43
#define IPPROTO_FRAGMENT 44
#define IPPROTO_DSTOPTS 60
#define IP_OFFSET 0x1FFF

static __always_inline int read_bytes(void *dst, __u32 len, const void *src)
{
	return bpf_probe_read_kernel(dst, len, src);
}

/* Offset of the network header from skb->head, or -1. The network header is
 * not always set (before the stack parsed the frame); fall back to the
 * Ethernet header, skipping VLAN tags. */
static __always_inline int network_offset(struct sk_buff *skb, unsigned char *head)
{
	__u16 nh = skb->network_header;
	__u16 mh = skb->mac_header;

	if (nh != 0 && nh != (__u16)~0U)
		return nh;
	if (mh == (__u16)~0U)
		return -1;

	__u32 off = mh + ETH_HLEN;
	__be16 ethertype = 0;
	read_bytes(&ethertype, sizeof(ethertype), head + mh + 12);
#pragma unroll
	for (int i = 0; i < 2; i++) {
		if (ethertype != bpf_htons(ETH_P_8021Q) && ethertype != bpf_htons(ETH_P_8021AD))
			break;
		read_bytes(&ethertype, sizeof(ethertype), head + off + 2);
		off += 4;
	}
	return off;
}

static __always_inline void parse_l4(unsigned char *l4, __u8 proto, struct tuple *t)
{
	t->l4proto = proto;
	if (proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_SCTP) {
		__be16 ports[2] = {};
		read_bytes(ports, sizeof(ports), l4);
		t->sport = bpf_ntohs(ports[0]);
		t->dport = bpf_ntohs(ports[1]);
		if (proto == IPPROTO_TCP)
			read_bytes(&t->tcp_flags, 1, l4 + 13);
	}
}

/* Fill t from the IPv4/IPv6 and transport headers. Returns 0 when the packet
 * is IP. */
static __always_inline int parse_tuple(struct sk_buff *skb, struct tuple *t)
{
	unsigned char *head = skb->head;
	int off = network_offset(skb, head);
	if (off < 0)
		return -1;

	__u16 protocol = bpf_ntohs(skb->protocol);
	if (protocol != 0 && protocol != ETH_P_IP && protocol != ETH_P_IPV6)
		return -1;

	unsigned char *nh = head + off;
	__u8 vhl = 0;
	read_bytes(&vhl, 1, nh);

	if ((vhl >> 4) == 4 && protocol != ETH_P_IPV6) {
		struct iphdr ip;
		if (read_bytes(&ip, sizeof(ip), nh))
			return -1;
		t->l3 = 4;
		__builtin_memcpy(t->saddr, &ip.saddr, 4);
		__builtin_memcpy(t->daddr, &ip.daddr, 4);
		t->l4proto = ip.protocol;
		/* Later fragments carry no transport header. */
		if (bpf_ntohs(ip.frag_off) & IP_OFFSET)
			return 0;
		parse_l4(nh + (ip.ihl & 0xf) * 4, ip.protocol, t);
		return 0;
	}
	if ((vhl >> 4) == 6 && protocol != ETH_P_IP) {
		struct ipv6hdr ip6;
		if (read_bytes(&ip6, sizeof(ip6), nh))
			return -1;
		t->l3 = 6;
		__builtin_memcpy(t->saddr, &ip6.saddr, 16);
		__builtin_memcpy(t->daddr, &ip6.daddr, 16);
		__u8 next = ip6.nexthdr;
		unsigned char *p = nh + sizeof(ip6);
		/* A bounded walk over the extension headers that may precede the
		 * transport header. */
#pragma unroll
		for (int i = 0; i < 4; i++) {
			__u8 ext[2] = {};
			if (next == IPPROTO_HOPOPTS || next == IPPROTO_ROUTING || next == IPPROTO_DSTOPTS) {
				read_bytes(ext, 2, p);
				next = ext[0];
				p += (ext[1] + 1) * 8;
			} else if (next == IPPROTO_FRAGMENT) {
				__be16 frag = 0;
				read_bytes(ext, 2, p);
				read_bytes(&frag, 2, p + 2);
				next = ext[0];
				p += 8;
				if (bpf_ntohs(frag) & 0xFFF8) {
					t->l4proto = next;
					return 0;
				}
			} else if (next == IPPROTO_AH) {
				read_bytes(ext, 2, p);
				next = ext[0];
				p += (ext[1] + 2) * 4;
			} else {
				break;
			}
		}
		parse_l4(p, next, t);
		return 0;
	}
	return -1;
}

/* Where the packet's bytes start for filtering and capture: at the Ethernet
 * header when the skb has one in front of its IP header, else at the IP
 * header. Returns false when neither is known. */
struct packet_view {
	unsigned char *start;
	__u32 caplen;  /* linear bytes from start */
	__u32 wirelen; /* what a capture at this point would call the packet's length */
	bool l2;
};

static __always_inline bool packet_view(struct sk_buff *skb, struct packet_view *v)
{
	unsigned char *head = skb->head;
	unsigned char *data = skb->data;
	__u16 mh = skb->mac_header;
	__u16 nh = skb->network_header;
	__u32 tail = skb->tail;
	bool nh_set = nh != 0 && nh != (__u16)~0U;
	__u32 start;

	v->l2 = mh != (__u16)~0U && (!nh_set || nh >= mh + ETH_HLEN);
	if (v->l2)
		start = mh;
	else if (nh_set)
		start = nh;
	else
		return false;
	if (tail <= start)
		return false;
	v->start = head + start;
	v->caplen = tail - start;
	v->wirelen = skb->len + (__u32)(data - v->start);
	return true;
}

/* Runs the injected pcap filter on the skb's bytes. */
static __always_inline bool pcap_match(struct sk_buff *skb)
{
	struct packet_view v;
	if (!packet_view(skb, &v))
		return false; /* no header located: nothing to match against */

	__u32 scratch[FILTER_SCRATCH_WORDS] = {};
	scratch[FILTER_CAPLEN] = v.caplen;
	scratch[FILTER_WIRELEN] = v.wirelen;
	filter_prefetch(scratch, v.start);

	unsigned long verdict;
	if (v.l2)
		verdict = FILTER_REGION(FILTER_MAGIC_L2, v.start, scratch);
	else
		verdict = FILTER_REGION(FILTER_MAGIC_L3, v.start, scratch);
	return verdict != 0;
}

/* Copies up to CONFIG.snaplen bytes of the packet to `to`, in the record `e`. */
static __always_inline void capture(struct sk_buff *skb, struct event *e, void *to)
{
	struct packet_view v;
	if (!packet_view(skb, &v))
		return;
	__u32 n = v.caplen < CONFIG.snaplen ? v.caplen : CONFIG.snaplen;
	/* For the verifier: an unsigned length that fits what was reserved
	 * (--pcap-snaplen is at most 65535). */
	n &= 0xffff;
	if (n > CONFIG.snaplen)
		return;
	if (bpf_probe_read_kernel(to, n, v.start))
		return;
	e->cap_len = n;
	e->cap_orig_len = v.wirelen;
	e->cap_l2 = v.l2;
	e->flags |= EVENT_HAS_PACKET;
}

static __always_inline __u32 skb_netns(struct sk_buff *skb, struct net_device *dev)
{
	if (dev)
		return dev->nd_net.net->ns.inum;
	struct sock *sk = skb->sk;
	if (sk)
		return sk->__sk_common.skc_net.net->ns.inum;
	return 0;
}

static __always_inline void count(void *map, __u32 index)
{
	__u64 *n = bpf_map_lookup_elem(map, &index);
	if (n)
		*n += 1;
}

static __always_inline bool is_tracked(struct sk_buff *skb)
{
	__u64 key = (__u64)skb;
	if (bpf_map_lookup_elem(&tracked_skbs, &key))
		return true;
	/* A clone shares the data buffer of the skb it was cloned from. */
	key = (__u64)skb->head;
	return bpf_map_lookup_elem(&tracked_heads, &key) != NULL;
}

static __always_inline void track(struct sk_buff *skb)
{
	__u8 one = 1;
	__u64 key = (__u64)skb;
	if (bpf_map_update_elem(&tracked_skbs, &key, &one, BPF_NOEXIST) == 0)
		count(&track_stats, TRACK_ADDED);
	key = (__u64)skb->head;
	bpf_map_update_elem(&tracked_heads, &key, &one, BPF_ANY);
}

static __always_inline void untrack(struct sk_buff *skb)
{
	__u64 key = (__u64)skb;
	if (bpf_map_delete_elem(&tracked_skbs, &key) == 0)
		count(&track_stats, TRACK_FREED);
	key = (__u64)skb->head;
	bpf_map_delete_elem(&tracked_heads, &key);
}

/* Where a probe stands and what it knows beyond the skb. */
struct site {
	void *ctx;          /* program context, for the stack */
	struct net_device *dev; /* the device the point names, when it names one */
	__u32 flags;        /* EVENT_HAS_* the wrapper fills below */
	__u32 netns;        /* 0: derive from the skb */
	__u64 caller;
	__u32 drop_reason;
	__u8 hook;
	__u8 pf;
	__u8 ct;            /* enum site_ct: where this point learns the conntrack state */
	bool stack_ok;      /* the program type may call bpf_get_stackid */
};

enum site_ct {
	SITE_CT_NONE = 0,
	SITE_CT_NFCT = 1,   /* netfilter hooks: skb->_nfct */
	SITE_CT_LOOKUP = 2, /* tc: bpf_skb_ct_lookup(), needs PKTPATH_CT_LOOKUP */
};

/* Does this packet interest the user? The cheap checks first, the pcap filter
 * last; a followed skb passes whatever its headers have become. */
static __always_inline bool wanted(struct sk_buff *skb, struct net_device *dev, __u32 *netns)
{
	if ((CONFIG.flags & CONFIG_TRACK) && is_tracked(skb))
		return true;
	if (CONFIG.netns) {
		if (!*netns)
			*netns = skb_netns(skb, dev);
		if (*netns != CONFIG.netns)
			return false;
	}
	if (CONFIG.ifindex) {
		__u32 ifindex = dev ? dev->ifindex : skb->skb_iif;
		if (ifindex != CONFIG.ifindex)
			return false;
	}
	if ((CONFIG.flags & CONFIG_MARK) && (skb->mark & CONFIG.mark_mask) != CONFIG.mark)
		return false;
	if ((CONFIG.flags & CONFIG_FILTER) && !pcap_match(skb))
		return false;
	if (CONFIG.flags & CONFIG_TRACK)
		track(skb);
	return true;
}

/* The filter runs first; nothing is reserved, read or captured for packets
 * that do not match. */
static __always_inline void observe(struct sk_buff *skb, const struct site *site)
{
	/* A point's own device argument is right even when skb->dev has already
	 * moved on (a veth hands the skb to its peer inside net_dev_xmit). */
	struct net_device *dev = site->dev ? site->dev : skb->dev;
	__u32 netns = site->netns;

	if (!wanted(skb, dev, &netns))
		return;
	if (!netns)
		netns = skb_netns(skb, dev);

	struct tuple t = {};
	bool is_ip = parse_tuple(skb, &t) == 0;

	/* The size must be a constant for the verifier: site->ct is one after
	 * inlining, and CONFIG is frozen. */
	const __u32 ct_space = site->ct != SITE_CT_NONE ? sizeof(struct ct_section) : 0;
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e) + ct_space + CONFIG.snaplen, 0);
	if (!e) {
		count(&lost, 0);
		goto out;
	}

	e->type = RECORD_EVENT;
	e->flags = site->flags | (is_ip ? EVENT_HAS_TUPLE : 0);
	e->ts_ns = bpf_ktime_get_ns();
	e->skb = (__u64)skb;
	e->caller = site->caller;
	e->point_id = CONFIG.point_id;
	e->cpu = bpf_get_smp_processor_id();
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->netns = netns;
	e->mark = skb->mark;
	e->ifindex = dev ? dev->ifindex : skb->skb_iif;
	e->len = skb->len;
	e->mtu = dev ? dev->mtu : 0;
	e->stack_id = -1;
	e->drop_reason = site->drop_reason;
	e->protocol = bpf_ntohs(skb->protocol);
	e->hook = site->hook;
	e->pf = site->pf;
	e->_pad = 0;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	__builtin_memcpy(&e->tuple, &t, sizeof(t));
	e->cap_len = 0;
	e->cap_orig_len = 0;
	e->cap_l2 = 0;
	e->_pad2 = 0;
	e->cap_offset = sizeof(*e) + ct_space;
	e->_pad3 = 0;
	if (ct_space) {
		struct ct_section *c = (struct ct_section *)(e + 1);
		__builtin_memset(c, 0, sizeof(*c));
		if (site->ct == SITE_CT_NFCT && ct_from_skb(skb, c))
			e->flags |= EVENT_HAS_CT;
#ifdef PKTPATH_CT_LOOKUP
		if (site->ct == SITE_CT_LOOKUP && is_ip && ct_lookup(site->ctx, &t, c))
			e->flags |= EVENT_HAS_CT;
#endif
	}
	if (CONFIG.snaplen)
		capture(skb, e, (void *)(e + 1) + ct_space);

	/* The costliest step, and only for matching packets. */
	if (site->stack_ok && (CONFIG.flags & CONFIG_STACK)) {
		long id = bpf_get_stackid(site->ctx, &stacks, 0);
		if (id >= 0) {
			e->stack_id = id;
			e->flags |= EVENT_HAS_STACK;
		}
	}

	/* User space polls the ring on a short timer: no wakeup per record. */
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
out:
	if ((CONFIG.flags & (CONFIG_TRACK | CONFIG_FREES)) == (CONFIG_TRACK | CONFIG_FREES))
		untrack(skb);
}

#endif
