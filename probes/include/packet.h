/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * Where an skb's bytes are: the network header (for the tuple), and the
 * start the filter and the capture use (the Ethernet header when there is
 * one in front of the IP header, else the IP header). Headers are parsed
 * with bpf_probe_read_kernel: packet bytes are not BTF-typed memory.
 */
#ifndef PKTPATH_PACKET_H
#define PKTPATH_PACKET_H

#include "kread.h"

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

/* Offset of the network header in an Ethernet frame at `eth`, up to two
 * VLAN tags skipped; the ethertype it carries in *proto (host byte order),
 * the tags in *tags (when asked: the first in the low half, VLAN_TAGGED | id). */
static __always_inline __u32 ether_network_offset_tags(unsigned char *eth, __u16 *proto, __u32 *tags)
{
	__u32 off = ETH_HLEN;
	__be16 ethertype = 0;
	read_bytes(&ethertype, sizeof(ethertype), eth + 12);
#pragma unroll
	for (int i = 0; i < 2; i++) {
		if (ethertype != bpf_htons(ETH_P_8021Q) && ethertype != bpf_htons(ETH_P_8021AD))
			break;
		__be16 tag[2] = {}; /* the TCI, then the ethertype after it */
		read_bytes(tag, sizeof(tag), eth + off);
		if (tags)
			*tags |= (__u32)(VLAN_TAGGED | (bpf_ntohs(tag[0]) & VLAN_VID_MASK)) << (16 * i);
		ethertype = tag[1];
		off += 4;
	}
	*proto = bpf_ntohs(ethertype);
	return off;
}

static __always_inline __u32 ether_network_offset(unsigned char *eth, __u16 *proto)
{
	return ether_network_offset_tags(eth, proto, 0);
}

/* The outer tag when it is in the skb's metadata (skb->vlan_*: "hardware
 * accelerated", put there by a VLAN device whose lower device offloads the
 * tag, as veth does, or taken out of a received frame), as VLAN_TAGGED | id;
 * 0 when it is not. Before 6.2 the tag's presence is a bit of its own. */
struct sk_buff___vlan_present {
	__u8 vlan_present : 1;
} __attribute__((preserve_access_index));

static __always_inline __u16 vlan_metadata_tag(struct sk_buff *skb)
{
	struct sk_buff___vlan_present *old = (void *)skb;
	if (bpf_core_field_exists(old->vlan_present) && !KREAD_BITFIELD(old, vlan_present))
		return 0;
	/* 6.2+: cleared as a whole (vlan_all), so a tag is a protocol. */
	if (!KREAD(skb, vlan_proto))
		return 0;
	return VLAN_TAGGED | (KREAD(skb, vlan_tci) & VLAN_VID_MASK);
}

/* Offset of the network header from skb->head, or -1. The network header is
 * not always set (before the stack parsed the frame); fall back to the
 * Ethernet header. */
static __always_inline int network_offset(struct sk_buff *skb, unsigned char *head)
{
	__u16 nh = KREAD(skb, network_header);
	__u16 mh = KREAD(skb, mac_header);

	if (nh != 0 && nh != (__u16)~0U)
		return nh;
	if (mh == (__u16)~0U)
		return -1;
	__u16 proto;
	return mh + ether_network_offset(head + mh, &proto);
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

/* Fill t from the IPv4/IPv6 header at `nh` and the transport header;
 * `protocol`: the ethertype, 0 when unknown. Returns 0 when the packet is IP. */
/* Socket families (include/linux/socket.h): not in vmlinux.h, which has types only. */
#define PKTPATH_AF_UNIX 1
#define PKTPATH_AF_NETLINK 16

static __always_inline int parse_ip(unsigned char *nh, __u16 protocol, struct tuple *t)
{
	if (protocol != 0 && protocol != ETH_P_IP && protocol != ETH_P_IPV6)
		return -1;
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

/* A local socket's message (netlink, unix): its skb carries no network
 * headers, only offsets left from its allocation. Asked of skbs without a
 * protocol only, so a packet never pays for it. */
static __always_inline bool local_message(struct sk_buff *skb)
{
	struct sock *sk = KREAD_PTR(skb, sk);
	if (!sk)
		return false;
	__u16 family = KREAD(sk, __sk_common.skc_family);
	return family == PKTPATH_AF_UNIX || family == PKTPATH_AF_NETLINK;
}

/* The tuple of an skb, from its network header; its VLAN tags in vlan[],
 * outer first. A tag in the data (skb->protocol 802.1Q or 802.1ad: received
 * without offload, or pushed in because the lower device does not offload a
 * second tag, as under QinQ) leaves the network header at the tag or at the IP
 * header depending on who put it there: the tags are walked from the MAC header. */
static __always_inline int parse_tuple(struct sk_buff *skb, struct tuple *t, __u16 vlan[2])
{
	unsigned char *head = KREAD(skb, head);
	__u16 protocol = bpf_ntohs(KREAD(skb, protocol));
	__u16 outer = vlan_metadata_tag(skb);
	__u32 tags = 0;
	int off;

	if (protocol == ETH_P_8021Q || protocol == ETH_P_8021AD) {
		__u16 mh = KREAD(skb, mac_header);
		off = mh == (__u16)~0U ? -1 : (int)(mh + ether_network_offset_tags(head + mh, &protocol, &tags));
	} else {
		off = network_offset(skb, head);
	}
	vlan[0] = outer ? outer : (__u16)tags;
	vlan[1] = outer ? (__u16)tags : (__u16)(tags >> 16);
	if (off < 0)
		return -1;
	if (protocol == 0 && local_message(skb))
		return -1;
	return parse_ip(head + off, protocol, t);
}

/* The tuple of an Ethernet frame (XDP: no skb yet), and its tags. */
static __always_inline int parse_frame_tuple(unsigned char *eth, struct tuple *t, __u16 vlan[2])
{
	__u16 protocol;
	__u32 tags = 0;
	__u32 off = ether_network_offset_tags(eth, &protocol, &tags);
	vlan[0] = (__u16)tags;
	vlan[1] = (__u16)(tags >> 16);
	if (protocol != ETH_P_IP && protocol != ETH_P_IPV6)
		return -1;
	return parse_ip(eth + off, protocol, t);
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
	if (KREAD(skb, protocol) == 0 && local_message(skb))
		return false;
	unsigned char *head = KREAD(skb, head);
	unsigned char *data = KREAD(skb, data);
	__u16 mh = KREAD(skb, mac_header);
	__u16 nh = KREAD(skb, network_header);
	__u32 tail = KREAD(skb, tail);
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
	v->wirelen = KREAD(skb, len) + (__u32)(data - v->start);
	return true;
}

#endif
