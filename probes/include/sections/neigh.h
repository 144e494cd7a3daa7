/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * The neighbour section (--output-neigh): one step of ARP or NDP resolution,
 * at the neigh:* tracepoints (probes/route.bpf.c). Its TS half:
 * src/output/sections/neigh.ts.
 */
#ifndef PKTPATH_SECTION_NEIGH_H
#define PKTPATH_SECTION_NEIGH_H

#define SECTION_NEIGH 13

/* neigh_section.event: which tracepoint. */
enum neigh_event {
	NEIGH_EVENT_CREATE = 1,
	NEIGH_EVENT_UPDATE = 2,
	NEIGH_EVENT_UPDATE_DONE = 3,
	NEIGH_EVENT_TIMER = 4,
	NEIGH_EVENT_SEND_DONE = 5,
	NEIGH_EVENT_SEND_DEAD = 6,
	NEIGH_EVENT_RELEASE = 7,
};

enum neigh_flags {
	NEIGH_HAS_OLD_STATE = 1 << 0, /* neigh_update: old_state is the state before it */
	NEIGH_HAS_ERROR = 1 << 1,     /* the point passes an error (0 or -errno) */
};

struct neigh_section {
	__u8 address[16];  /* the neighbour's protocol address (primary_key), network byte order */
	__u8 lladdr[8];    /* its link-layer address, lladdr_len bytes of it */
	__u32 ifindex;
	__s32 error;       /* NEIGH_HAS_ERROR */
	__u32 probes;      /* solicitations sent (neighbour.probes) */
	__u8 event;        /* enum neigh_event */
	__u8 family;       /* 4 (ARP) or 6 (NDP) */
	__u8 state;        /* NUD_* bits */
	__u8 old_state;    /* NEIGH_HAS_OLD_STATE */
	__u8 lladdr_len;   /* 0: unknown (the entry is not resolved) */
	__u8 flags;        /* enum neigh_flags */
	__u8 _pad[6];
};

#ifndef PKTPATH_LAYOUT_ONLY
#include "section.h"

#define NEIGH_SPACE SECTION_SPACE(struct neigh_section, 1)

/* The states in which neighbour.ha holds the link-layer address (NUD_VALID). */
#define NEIGH_NUD_VALID (0x80 | 0x40 | 0x02 | 0x10 | 0x04 | 0x08)

/* The family (4, 6; 0 for another table) of table `tbl`, and the address at `key` into `address`. */
static __always_inline __u8 neigh_address(const struct neigh_table *tbl, const void *key, __u8 address[16])
{
	int family = BPF_CORE_READ(tbl, family);
	__u8 f = family == 2 /* AF_INET */ ? 4 : family == 10 /* AF_INET6 */ ? 6 : 0;
	if (f == 4)
		bpf_probe_read_kernel(address, 4, key);
	else if (f == 6)
		bpf_probe_read_kernel(address, 16, key);
	return f;
}

/* The section from neighbour `n` of device `dev` at `event`; `lladdr`: the address an update sets (NULL: n's own, when valid). */
static __always_inline void section_neigh(void *at, __u8 event, const struct neighbour *n, const struct net_device *dev,
					  const __u8 address[16], __u8 family, const __u8 *lladdr, int state, int old_state,
					  bool has_error, int error)
{
	struct neigh_section *s = section_open(at, SECTION_NEIGH, sizeof(*s));
	__builtin_memset(s, 0, sizeof(*s));
	__builtin_memcpy(s->address, address, 16);
	s->event = event;
	s->family = family;
	s->ifindex = BPF_CORE_READ(dev, ifindex);
	s->probes = BPF_CORE_READ(n, probes.counter);
	s->state = state;
	if (old_state >= 0) {
		s->old_state = old_state;
		s->flags |= NEIGH_HAS_OLD_STATE;
	}
	if (has_error) {
		s->error = error;
		s->flags |= NEIGH_HAS_ERROR;
	}
	__u8 len = BPF_CORE_READ(dev, addr_len);
	if (len > sizeof(s->lladdr))
		len = sizeof(s->lladdr);
	const __u8 *from = lladdr ? lladdr : (state & NEIGH_NUD_VALID) ? (const __u8 *)n->ha : 0;
	if (from && len && bpf_probe_read_kernel(s->lladdr, len & 7 ? len & 7 : 8, from) == 0)
		s->lladdr_len = len;
}

#endif /* PKTPATH_LAYOUT_ONLY */
#endif
