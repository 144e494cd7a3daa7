/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * The packet inside a tunnel, for --filter-tunnel-pcap-l2/-l3: from the outer
 * headers of a VXLAN (UDP 4789, 8472), Geneve (UDP 6081), GRE or IP-in-IP
 * packet to the start of the inner frame (inner Ethernet header) and of the
 * inner packet (inner IP header), and the filter regions run on them (written
 * by user space before load, as the outer filter's are). The tunnel section
 * (sections/tunnel.h) reports the same encapsulations.
 */
#ifndef PKTPATH_TUNNEL_H
#define PKTPATH_TUNNEL_H

#include "filter.h"
#include "packet.h"

#ifndef INNER_REGION_INSNS
#define INNER_REGION_INSNS 512
#endif
#define FILTER_MAGIC_INNER_L2 0x7070746c /* marks the region of the inner frame's filter */
#define FILTER_MAGIC_INNER_L3 0x70707433 /* of the inner packet's */

#define VXLAN_PORT 4789
#define VXLAN_LINUX_PORT 8472 /* the kernel's default before IANA's (flannel) */
#define GENEVE_PORT 6081
#define ETH_P_TEB 0x6558 /* transparent Ethernet bridging: GRE, Geneve */
#define GRE_CSUM 0x8000
#define GRE_KEY 0x2000
#define GRE_SEQ 0x1000

/* enum tunnel_kind: what encapsulates (0: nothing pktpath knows). */
#define TUNNEL_VXLAN 1
#define TUNNEL_GENEVE 2
#define TUNNEL_GRE 3
#define TUNNEL_IPIP 4

/* Where an encapsulated packet's inside starts: `frame` at its Ethernet
 * header (NULL when it has none: IP-in-IP, GRE of IP), `packet` at its IP
 * header; what it is, and its VNI or GRE key (read when `want_id`). */
struct tunnel_inner {
	unsigned char *frame;
	unsigned char *packet;
	__u8 kind;
	bool has_id;
	__u32 id;
};

/* The 24-bit VNI of a VXLAN or Geneve header at `hdr` (bytes 4 to 6). */
static __always_inline __u32 tunnel_vni(unsigned char *hdr)
{
	__u8 b[3] = {};
	read_bytes(b, 3, hdr + 4);
	return ((__u32)b[0] << 16) | ((__u32)b[1] << 8) | b[2];
}

static __always_inline bool tunnel_inner_at(const struct packet_view *v, struct tunnel_inner *in, bool want_id)
{
	unsigned char *nh = v->start;
	if (v->l2) {
		__u16 proto;
		nh += ether_network_offset(v->start, &proto);
		if (proto != ETH_P_IP && proto != ETH_P_IPV6)
			return false;
	}
	__u8 vhl = 0;
	read_bytes(&vhl, 1, nh);
	__u8 l4proto;
	unsigned char *l4;
	if ((vhl >> 4) == 4) {
		__be16 frag = 0;
		read_bytes(&l4proto, 1, nh + 9);
		read_bytes(&frag, 2, nh + 6);
		if (bpf_ntohs(frag) & IP_OFFSET)
			return false;
		l4 = nh + (vhl & 0xf) * 4;
	} else if ((vhl >> 4) == 6) {
		read_bytes(&l4proto, 1, nh + 6);
		l4 = nh + 40;
	} else {
		return false;
	}
	in->frame = 0;
	in->has_id = false;
	in->id = 0;
	switch (l4proto) {
	case IPPROTO_UDP: {
		__be16 dport = 0;
		read_bytes(&dport, 2, l4 + 2);
		__u16 port = bpf_ntohs(dport);
		if (port == VXLAN_PORT || port == VXLAN_LINUX_PORT) {
			in->frame = l4 + 8 + 8;
			in->kind = TUNNEL_VXLAN;
		} else if (port == GENEVE_PORT) {
			__u8 optlen = 0;
			__be16 proto = 0;
			read_bytes(&optlen, 1, l4 + 8);
			read_bytes(&proto, 2, l4 + 8 + 2);
			if (bpf_ntohs(proto) != ETH_P_TEB)
				return false;
			in->frame = l4 + 8 + 8 + (optlen & 0x3f) * 4;
			in->kind = TUNNEL_GENEVE;
		} else {
			return false;
		}
		if (want_id) {
			in->id = tunnel_vni(l4 + 8);
			in->has_id = true;
		}
		break;
	}
	case IPPROTO_GRE: {
		__be16 hdr[2] = {};
		read_bytes(hdr, sizeof(hdr), l4);
		__u16 flags = bpf_ntohs(hdr[0]), proto = bpf_ntohs(hdr[1]);
		unsigned char *after = l4 + 4 + (flags & GRE_CSUM ? 4 : 0) + (flags & GRE_KEY ? 4 : 0) + (flags & GRE_SEQ ? 4 : 0);
		if (proto == ETH_P_TEB)
			in->frame = after;
		else if (proto == ETH_P_IP || proto == ETH_P_IPV6)
			in->packet = after;
		else
			return false;
		in->kind = TUNNEL_GRE;
		if (want_id && (flags & GRE_KEY)) {
			__be32 key = 0;
			read_bytes(&key, 4, l4 + 4 + (flags & GRE_CSUM ? 4 : 0));
			in->id = bpf_ntohl(key);
			in->has_id = true;
		}
		break;
	}
	case IPPROTO_IPIP:
	case IPPROTO_IPV6:
		in->packet = l4;
		in->kind = TUNNEL_IPIP;
		break;
	default:
		return false;
	}
	if (in->frame) {
		__u16 proto;
		in->packet = in->frame + ether_network_offset(in->frame, &proto);
	}
	return true;
}

/* Runs the inner filters on an encapsulated packet; false for one that is not. */
static __always_inline bool inner_match(struct sk_buff *skb)
{
	struct packet_view v;
	struct tunnel_inner in;
	if (!packet_view(skb, &v) || !tunnel_inner_at(&v, &in, false))
		return false;
	__u32 scratch[FILTER_SCRATCH_WORDS];
	if (CONFIG.flags & CONFIG_INNER_L2) {
		if (!in.frame)
			return false;
		__u32 skip = (__u32)(in.frame - v.start);
		__u32 caplen = v.caplen > skip ? v.caplen - skip : 0;
		filter_scratch(scratch, in.frame, caplen, v.wirelen > skip ? v.wirelen - skip : 0, true);
		if (!FILTER_REGION_SIZED(FILTER_MAGIC_INNER_L2, INNER_REGION_INSNS, in.frame, scratch))
			return false;
	}
	if (CONFIG.flags & CONFIG_INNER_L3) {
		__u32 skip = (__u32)(in.packet - v.start);
		__u32 caplen = v.caplen > skip ? v.caplen - skip : 0;
		filter_scratch(scratch, in.packet, caplen, v.wirelen > skip ? v.wirelen - skip : 0, true);
		if (!FILTER_REGION_SIZED(FILTER_MAGIC_INNER_L3, INNER_REGION_INSNS, in.packet, scratch))
			return false;
	}
	return true;
}

#endif
