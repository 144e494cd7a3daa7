/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * The records pktpath probes send to user space, and the configuration user
 * space gives them. This header is the one definition of that layout:
 * src/decode/layout.ts mirrors it (held by test/unit/layout.test.ts). The
 * optional sections a run asks for (--output-skb-queue, ...) each define
 * their own struct and kind in their helper (sections/NAME.h), mirrored by
 * one TS module (src/output/sections/).
 */
#ifndef PKTPATH_EVENT_H
#define PKTPATH_EVENT_H

#define PKTPATH_EVENT_VERSION 1

/* Indices of the per-CPU track_stats counters. */
enum track_stat {
	TRACK_ADDED = 0, /* skbs that matched and are followed */
	TRACK_FREED = 1, /* followed skbs forgotten when freed */
	TRACK_STALE = 2, /* entries dropped: their address held another skb (freed where no probe saw it) */
	TRACK_MOVED = 3, /* followed on when their data moved to another buffer (pskb_expand_head) */
	TRACK_BY_STACK = 4, /* taken up as seen on the kernel stack of a followed skb (--filter-track-skb-by-stackid) */
	TRACK_COPIED = 5, /* clones and copies of followed skbs, seen made (fexit on skb_clone, skb_copy, ...) */
	TRACK_STATS = 6,
};

/* What kind of record a ring entry is (first u32 of every record). */
enum record_type {
	RECORD_EVENT = 1,
};

/* event.flags: which optional parts of an event hold data. */
enum event_flags {
	EVENT_HAS_TUPLE   = 1 << 0, /* tuple was parsed from IPv4/IPv6 headers */
	EVENT_HAS_STACK   = 1 << 1, /* stack_id names an entry of the stacks map */
	EVENT_HAS_REASON  = 1 << 2, /* drop_reason is valid (kfree_skb) */
	EVENT_HAS_CALLER  = 1 << 3, /* caller is the address that freed/handled the skb */
	EVENT_HAS_NF_HOOK = 1 << 4, /* hook/pf are a netfilter hook and family */
	EVENT_HAS_TC_DIR  = 1 << 5, /* hook is a tc direction (0 ingress, 1 egress) */
	EVENT_HAS_PACKET  = 1 << 6, /* cap_len packet bytes follow the event */
	EVENT_HAS_CT      = 1 << 7, /* ct holds the packet's conntrack entry (or a lookup's result) */
	EVENT_HAS_OWN_SRC_MAC = 1 << 8, /* tc egress: the frame's Ethernet source is the device's own address */
	EVENT_HAS_FUNC    = 1 << 9, /* func_ip is the probed kernel function (function probes) */
	EVENT_HAS_VERDICT = 1 << 10, /* the record has a verdict section (BPF program exits) */
};

/* Every section after the event starts with this head: its kind and its
 * length, so that a reader finds each section where it is, and skips kinds
 * it does not know. Lengths are multiples of 8 (sections hold u64s). */
struct section_head {
	__u16 kind;        /* enum section_kind, or a SECTION_* of sections/NAME.h */
	__u16 len;         /* bytes, this head included */
	__u32 _pad;
};

/* The kinds of the sections a point writes of its own; the optional ones
 * number theirs from 8 up, in their helpers. */
enum section_kind {
	SECTION_CT = 1,
	SECTION_VERDICT = 2,
};

/* ct.source: where the conntrack view came from. */
enum ct_source {
	CT_SOURCE_NFCT = 1,   /* skb->_nfct, at a netfilter hook after conntrack ran */
	CT_SOURCE_LOOKUP = 2, /* bpf_skb_ct_lookup() on the packet's tuple, at tc */
};

/* event.vlan: a tag is there (an id may be 0: a priority tag). */
#define VLAN_TAGGED 0x8000
#define VLAN_VID_MASK 0x0fff

#define CT_CTINFO_UNTRACKED 7   /* IP_CT_UNTRACKED: no entry, on purpose (notrack) */
#define CT_CTINFO_NONE 0xff     /* lookups have no ctinfo: see dir and status */

/* Addresses are in network byte order; IPv4 uses the first 4 bytes. */
struct tuple {
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport;     /* host byte order */
	__u16 dport;     /* host byte order */
	__u8 l3;         /* 4, 6, or 0 when the packet is not IP */
	__u8 l4proto;    /* IPPROTO_* */
	__u8 tcp_flags;  /* FIN=0x01 SYN=0x02 RST=0x04 PSH=0x08 ACK=0x10 URG=0x20 ECE=0x40 CWR=0x80 */
	__u8 _pad;
};

/* One direction of a conntrack entry. Addresses in network byte order. */
struct ct_tuple {
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport;    /* host byte order; 0 for protocols without ports */
	__u16 dport;
	__u8 l3;        /* 4, 6, or 0 for another family */
	__u8 l4proto;   /* IPPROTO_* */
	__u8 _pad[2];
};

/* SECTION_CT, at points that read conntrack (EVENT_HAS_CT: it holds an entry or a lookup's result) */
struct ct_section {
	__u64 id;        /* struct nf_conn address: the same for every packet of the connection */
	__u32 status;    /* IPS_* bits */
	__u32 mark;      /* 0 without CONFIG_NF_CONNTRACK_MARK */
	__s32 error;     /* CT_SOURCE_LOOKUP: 0 when found, else -errno (-ENOENT: no entry yet) */
	__u16 zone;      /* 0 without CONFIG_NF_CONNTRACK_ZONES */
	__u8 source;     /* enum ct_source */
	__u8 ctinfo;     /* CT_SOURCE_NFCT: enum ip_conntrack_info, CT_CTINFO_UNTRACKED; else CT_CTINFO_NONE */
	__u8 dir;        /* the packet's direction: 0 original, 1 reply */
	__u8 _pad[7];
	struct ct_tuple orig;
	struct ct_tuple reply;
};

/* SECTION_VERDICT: what a traced tc program returned (TC_ACT_*, TCX_*). */
struct verdict_section {
	__s32 retval;
	__u32 redirect_ifindex; /* TC_ACT_REDIRECT: bpf_redirect_info's target, 0 when unknown */
	__u32 redirect_flags;   /* its flags: BPF_F_INGRESS 1, BPF_F_NEIGH 2, BPF_F_PEER 4 */
	__u32 _pad;
};

struct event {
	__u32 type;        /* enum record_type */
	__u32 flags;       /* enum event_flags */
	__u64 ts_ns;       /* CLOCK_MONOTONIC */
	__u64 skb;         /* struct sk_buff address: identifies the packet */
	__u64 caller;      /* EVENT_HAS_CALLER */
	__u32 point_id;    /* index of the observation point, given by user space */
	__u32 cpu;
	__u32 pid;         /* thread group id of the current task */
	__u32 netns;       /* network namespace inode */
	__u32 mark;
	__u32 ifindex;
	__u32 len;         /* skb->len */
	__u32 mtu;         /* of skb->dev, 0 without a device */
	__s32 stack_id;    /* EVENT_HAS_STACK */
	__u32 drop_reason; /* EVENT_HAS_REASON: enum skb_drop_reason */
	__u16 protocol;    /* ethertype, host byte order */
	__u8 hook;         /* EVENT_HAS_NF_HOOK / EVENT_HAS_TC_DIR */
	__u8 pf;           /* EVENT_HAS_NF_HOOK: NFPROTO_* */
	__u16 vlan[2];     /* VLAN tags at this point, outer first: VLAN_TAGGED | id; 0: none */
	char comm[16];
	struct tuple tuple;
	__u32 cap_len;      /* EVENT_HAS_PACKET: bytes captured, at cap_offset */
	__u32 cap_orig_len; /* the packet's length from where the capture starts */
	__u8 cap_l2;        /* the capture starts at the Ethernet header (else the IP header) */
	__u8 _pad2;
	__u16 cap_offset;   /* where the packet bytes start, from the start of the record */
	__u32 _pad3;
	__u64 func_ip;      /* EVENT_HAS_FUNC: one program serves many functions (kprobe-multi) */
};

/*
 * A record is a struct event, then its sections, each behind a struct
 * section_head: first the point's own (a ct_section at points that read
 * conntrack: netfilter hooks, tc; a verdict_section at exits of traced BPF
 * programs), then the optional ones the run asks for, in the order of
 * observe(); then the captured packet bytes at cap_offset, where the sections
 * end. Points that know no conntrack (tracepoints) send records without
 * sections unless the run asks for some: most records are theirs, and the
 * ring holds more of them.
 */

/* config.flags */
enum config_flags {
	CONFIG_STACK = 1 << 0,  /* capture the kernel stack (tracepoints only) */
	CONFIG_FILTER = 1 << 1, /* run the injected pcap filter (probes/include/filter.h) */
	CONFIG_MARK = 1 << 2,   /* (skb->mark & mark_mask) == mark */
	CONFIG_TRACK = 1 << 3,  /* follow matched skbs whatever their headers become */
	CONFIG_NO_TASK = 1 << 4, /* the program type may not ask for the current task (pid, comm) on this kernel */
	CONFIG_SKB_EXPR = 1 << 5, /* run the injected --filter-skb-expr (probes/include/skb_expr.h) */
	CONFIG_INNER_L2 = 1 << 6, /* run the injected filter on an encapsulated inner frame (inner_match) */
	CONFIG_INNER_L3 = 1 << 7, /* and on its inner packet */
	CONFIG_DUMP_SKB = 1 << 9, /* --output-skb (probes/include/sections/dump.h) */
	CONFIG_DUMP_SHINFO = 1 << 10, /* --output-skb-shared-info */
	CONFIG_DUMP_CB = 1 << 11, /* --output-skb-cb */
	CONFIG_DIRECT_LOADS = 1 << 12, /* the injected filter reads packet bytes in place: no prefetch (probes/include/filter.h) */
	CONFIG_NEIGH_ALL = 1 << 13, /* every neighbour event of the traced namespace, whatever the filter (probes/route.bpf.c) */
	CONFIG_XDP_EXPR = 1 << 14, /* run the injected --filter-xdp-expr on traced XDP programs' frames (probes/include/skb_expr.h) */
	CONFIG_PROG_RUN = 1 << 15, /* a traced program's entry keeps its run for its helpers' records (probes/include/prog_run.h) */
	CONFIG_TRACK_STACK = 1 << 16, /* --filter-track-skb-by-stackid: skbs seen on a followed skb's kernel stack are followed (track.h) */
	CONFIG_WINDOW = 1 << 17, /* --filter-non-skb-funcs: a function observer opens its CPU's window on a wanted skb (window.h) */
};

/* Read-only configuration of an object's programs, written by user space before load. */
struct config {
	__u32 point_id;     /* objects of one program; tracepoints have theirs in struct tp_point */
	__u32 flags;        /* enum config_flags */
	__s32 skb_arg;      /* functions: argument holding the skb */
	__u32 netns;        /* only packets in this network namespace (inode), 0: any */
	__u32 ifindex;      /* only packets on this device (of netns), 0: any */
	__u32 mark;         /* CONFIG_MARK */
	__u32 mark_mask;
	__u32 snaplen;      /* capture this many packet bytes per event (0: none) */
	__u32 nf_hooks;     /* nf_hook_slow: the hooks wanted, bit NFPROTO_IPV4 ? hook : 8 + hook (0: all) */
	__u32 sections;     /* bit k: write the optional section of kind k (sections/NAME.h) */
	__u16 dump_skb_room;    /* --output-skb: bytes of the skb's text (sections/dump.h; --set-percpu-buf) */
	__u16 dump_shinfo_room; /* --output-skb-shared-info: of its shared info's */
	__u16 skb_meta_bytes;   /* --output-skb-metadata: bytes of its values (sections/skb_meta.h) */
	__u16 xdp_meta_bytes;   /* --output-xdp-metadata: of its values (sections/xdp_meta.h) */
};

/* The tracepoint object carries one program per tracepoint; each reads its
 * own slot (probes/tracepoint.bpf.c). */
struct tp_point {
	__u32 point_id;
	__u32 frees;        /* this point frees the skb (kfree_skb, consume_skb): stop following it */
	__u32 silent;       /* an internal point: it only forgets the followed skbs it frees, and reports nothing */
	__s32 skb_arg;      /* the argument holding the skb */
	__s32 reason_arg;   /* the argument holding the drop reason, -1 if none */
	__s32 location_arg; /* the argument holding the caller address, -1 if none */
	__s32 dev_arg;      /* the argument holding the device, -1 if none */
};

/* The route object carries one program per route or neighbour tracepoint;
 * each reads its own slot (probes/route.bpf.c). */
struct route_point {
	__u32 point_id;
	__u32 kind;         /* enum route_point_kind of probes/route.bpf.c */
};

#endif
