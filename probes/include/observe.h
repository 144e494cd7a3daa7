/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * What every observation point does with an skb: decide whether it is
 * wanted (match.h), and only then reserve a record, fill the core and each
 * section the configuration asks for (sections/), and send it. Each attach
 * family (tracepoint, function, tc, netfilter) is a thin wrapper around observe().
 */
#ifndef PKTPATH_OBSERVE_H
#define PKTPATH_OBSERVE_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "kread.h"
#include "event.h"
#include "maps.h"
#include "match.h"
#include "sections/ct.h"
#include "sections/l2.h"
#include "sections/packet.h"
#include "sections/stack.h"
#include "sections/tuple.h"
#include "sections/verdict.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Every skb, device and socket pointer the probes get is typed (BTF), so
 * fields are read with plain loads, which CO-RE relocates and the verifier
 * guards, not one bpf_probe_read_kernel() call each: it matters at millions
 * of packets a second. Packet bytes still need bpf_probe_read_kernel(). */

/* Where a probe stands and what it knows beyond the skb. */
struct site {
	void *ctx;          /* program context, for the stack and the ct lookup */
	struct net_device *dev; /* the device the point names, when it names one */
	__u32 flags;        /* EVENT_HAS_* the wrapper fills below */
	__u32 netns;        /* 0: derive from the skb */
	__u64 caller;
	__u32 drop_reason;
	__u8 hook;
	__u8 pf;
	__u8 ct;            /* enum site_ct: where this point learns the conntrack state */
	__u64 func_ip;      /* function probes: the function, EVENT_HAS_FUNC */
	bool stack_ok;      /* the program type may call bpf_get_stackid */
	bool l2_source;     /* tc egress: say whether the frame's source is the device's address */
	bool verdict;       /* a traced BPF program's exit: send its verdict (retval) */
	__s32 retval;
};

/* The filter runs first; nothing is reserved, read or captured for packets
 * that do not match. */
static __always_inline void observe(struct sk_buff *skb, const struct site *site)
{
	/* A point's own device argument is right even when skb->dev has already
	 * moved on (a veth hands the skb to its peer inside net_dev_xmit). */
	struct net_device *dev = site->dev ? site->dev : KREAD(skb, dev);
	__u32 netns = site->netns;

	if (!wanted(skb, dev, &netns))
		return;
	if (!netns)
		netns = skb_netns(skb, dev);

	/* Sizes must be constants for the verifier: site->ct is one after
	 * inlining, and CONFIG is frozen. */
	const __u32 section_space = CT_SECTION_SPACE(site->ct) + VERDICT_SECTION_SPACE(site->verdict);
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e) + section_space + CONFIG.snaplen, 0);
	if (!e) {
		count(&lost, 0);
		goto out;
	}

	e->type = RECORD_EVENT;
	e->flags = site->flags;
	e->ts_ns = bpf_ktime_get_ns();
	e->skb = (__u64)skb;
	e->caller = site->caller;
	e->point_id = CONFIG.point_id;
	e->cpu = bpf_get_smp_processor_id();
	e->func_ip = site->func_ip;
	e->netns = netns;
	e->mark = KREAD(skb, mark);
	e->ifindex = dev ? KREAD(dev, ifindex) : KREAD(skb, skb_iif);
	e->len = KREAD(skb, len);
	e->mtu = dev ? KREAD(dev, mtu) : 0;
	e->drop_reason = site->drop_reason;
	e->protocol = bpf_ntohs(KREAD(skb, protocol));
	e->hook = site->hook;
	e->pf = site->pf;
	e->_pad = 0;
	e->_pad2 = 0;
	e->_pad3 = 0;
	/* Dead code where the kernel refuses these helpers to the program type
	 * (netfilter on 6.12): the verifier never walks it. */
	if (!(CONFIG.flags & CONFIG_NO_TASK)) {
		e->pid = bpf_get_current_pid_tgid() >> 32;
		bpf_get_current_comm(e->comm, sizeof(e->comm));
	} else {
		e->pid = 0;
		__builtin_memset(e->comm, 0, sizeof(e->comm));
	}

	/* The sections; the stack last: it is the costliest. */
	bool is_ip = section_tuple(e, skb);
	if (site->ct != SITE_CT_NONE)
		section_ct(e, skb, site->ctx, site->ct, is_ip);
	else if (site->verdict)
		section_verdict(e, (void *)(e + 1), site->retval);
	if (site->l2_source)
		section_l2_source(e, skb, dev);
	section_packet(e, skb, (void *)(e + 1) + section_space);
	section_stack(e, site->ctx, site->stack_ok);

	/* User space polls the ring on a short timer: no wakeup per record. */
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
out:
	if ((CONFIG.flags & (CONFIG_TRACK | CONFIG_FREES)) == (CONFIG_TRACK | CONFIG_FREES))
		untrack(skb);
}

#endif
