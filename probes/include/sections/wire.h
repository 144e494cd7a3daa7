/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * The wire section (--output-wire, on with `record --node`): what identifies
 * a packet on the wire between two nodes, of its IP packet and, in a tunnel
 * (../tunnel.h), of the inner one: the IPv4 id, the IP length, and the L4
 * identity (TCP sequence; ICMP and ICMPv6 echo id and sequence; UDP
 * checksum). `pktpath merge` pairs a packet leaving one node with its
 * arrival on the next by them. Its TS half: src/output/sections/wire.ts.
 */
#ifndef PKTPATH_SECTION_WIRE_H
#define PKTPATH_SECTION_WIRE_H

#define SECTION_WIRE 14

struct wire_ids {
	__u16 ip_id;  /* IPv4's id; 0 for IPv6 */
	__u16 ip_len; /* IPv4's total length; IPv6's payload length + 40 */
	__u32 l4_id;  /* TCP sequence, ICMP echo id << 16 | sequence, UDP checksum */
	__u8 l3;      /* 4 or 6; 0: not IP */
	__u8 has_l4;  /* l4_id was read: a first fragment of TCP, UDP, ICMP or ICMPv6 */
	__u8 _pad[2];
};

struct wire_section {
	struct wire_ids outer;
	struct wire_ids inner; /* l3 0: no tunnel, or not IP inside */
};

#ifndef PKTPATH_LAYOUT_ONLY
#include "../tunnel.h"
#include "section.h"

/* ICMPv6 (uapi's define; vmlinux.h has the enum's protocols only). */
#define PKTPATH_IPPROTO_ICMPV6 58

#define WIRE_SPACE SECTION_SPACE(struct wire_section, SECTION_WANTED(SECTION_WIRE))

/* The identity of the IP packet at `nh`; l3 stays 0 when it is none. */
static __always_inline void wire_ids_at(unsigned char *nh, struct wire_ids *w)
{
	__u8 vhl = 0;
	read_bytes(&vhl, 1, nh);
	__u8 proto;
	unsigned char *l4;
	if ((vhl >> 4) == 4) {
		struct iphdr ip;
		if (read_bytes(&ip, sizeof(ip), nh))
			return;
		w->l3 = 4;
		w->ip_id = bpf_ntohs(ip.id);
		w->ip_len = bpf_ntohs(ip.tot_len);
		if (bpf_ntohs(ip.frag_off) & IP_OFFSET)
			return;
		proto = ip.protocol;
		l4 = nh + (ip.ihl & 0xf) * 4;
	} else if ((vhl >> 4) == 6) {
		struct ipv6hdr ip6;
		if (read_bytes(&ip6, sizeof(ip6), nh))
			return;
		w->l3 = 6;
		w->ip_len = bpf_ntohs(ip6.payload_len) + 40;
		/* The transport header right after the fixed one only: extension headers leave l4_id unread. */
		proto = ip6.nexthdr;
		l4 = nh + sizeof(ip6);
	} else {
		return;
	}
	__be32 word = 0;
	if (proto == IPPROTO_TCP || proto == IPPROTO_ICMP || proto == PKTPATH_IPPROTO_ICMPV6) {
		if (read_bytes(&word, 4, l4 + 4))
			return;
		w->l4_id = bpf_ntohl(word);
		w->has_l4 = 1;
	} else if (proto == IPPROTO_UDP) {
		__be16 sum = 0;
		if (read_bytes(&sum, 2, l4 + 6))
			return;
		w->l4_id = bpf_ntohs(sum);
		w->has_l4 = 1;
	}
}

static __always_inline void section_wire(struct sk_buff *skb, void *at)
{
	if (!SECTION_WANTED(SECTION_WIRE))
		return;
	struct wire_section *w = section_open(at, SECTION_WIRE, sizeof(*w));
	__builtin_memset(w, 0, sizeof(*w));
	struct packet_view v;
	if (!packet_view(skb, &v))
		return;
	unsigned char *nh = v.start;
	if (v.l2) {
		__u16 proto;
		nh += ether_network_offset(v.start, &proto);
		if (proto != ETH_P_IP && proto != ETH_P_IPV6)
			return;
	}
	wire_ids_at(nh, &w->outer);
	struct tunnel_inner in = {};
	if (w->outer.l3 && tunnel_inner_at(&v, &in, false) && in.packet)
		wire_ids_at(in.packet, &w->inner);
}

#endif /* PKTPATH_LAYOUT_ONLY */
#endif
