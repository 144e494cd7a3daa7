/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * The tunnel section (--output-tunnel): for a VXLAN, Geneve, GRE or IP-in-IP
 * packet, what encapsulates it, its VNI or GRE key, and the inner packet's
 * tuple, found where the inner filters find it (../tunnel.h). Packets that
 * are no tunnel carry the section with kind 0. Its TS half:
 * src/output/sections/tunnel.ts.
 */
#ifndef PKTPATH_SECTION_TUNNEL_H
#define PKTPATH_SECTION_TUNNEL_H

#define SECTION_TUNNEL 10

struct tunnel_section {
	__u8 kind;         /* TUNNEL_* of ../tunnel.h; 0: not a tunnel packet */
	__u8 has_vni;      /* vni holds the VXLAN/Geneve VNI or the GRE key */
	__u8 _pad[2];
	__u32 vni;
	struct tuple inner; /* l3 0: the inner packet is not IP (ARP inside VXLAN) */
};

#ifndef PKTPATH_LAYOUT_ONLY
#include "../tunnel.h"
#include "section.h"

#define TUNNEL_SPACE SECTION_SPACE(struct tunnel_section, SECTION_WANTED(SECTION_TUNNEL))

static __always_inline void section_tunnel(struct sk_buff *skb, void *at)
{
	if (!SECTION_WANTED(SECTION_TUNNEL))
		return;
	struct tunnel_section *t = section_open(at, SECTION_TUNNEL, sizeof(*t));
	__builtin_memset(t, 0, sizeof(*t));
	struct packet_view v;
	struct tunnel_inner in = {};
	if (!packet_view(skb, &v) || !tunnel_inner_at(&v, &in, true))
		return;
	t->kind = in.kind;
	t->has_vni = in.has_id;
	t->vni = in.id;
	if (parse_ip(in.packet, 0, &t->inner))
		__builtin_memset(&t->inner, 0, sizeof(t->inner));
}

#endif /* PKTPATH_LAYOUT_ONLY */
#endif
