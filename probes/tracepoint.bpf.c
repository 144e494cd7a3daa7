// SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0)
/*
 * One generic observer for every skb tracepoint. User space reads each
 * tracepoint's prototype from the running kernel's BTF (btf_trace_<name>),
 * sets the attach target and tells the probe which argument holds the skb,
 * the drop reason, the caller and the device. Branches for other argument
 * positions are dead code the verifier never walks.
 *
 * The object carries TP_SLOTS copies of the program, each reading its own
 * slot of TP_POINTS: a session loads all its tracepoints as one object, so
 * libbpf parses the kernel's BTF and relocates once, not once per point
 * (about 20 ms each). The slot index is a constant in each copy, so the
 * verifier still folds every setting.
 */
/* A tracing program: it may print the skb from BTF (--output-skb). */
#define PKTPATH_TRACING 1
/* Pointer fields read through an alias the verifier does not trust (kread.h);
 * tracepoint_nocast.bpf.o, for kernels before 6.2, reads them directly. */
#define PKTPATH_RDONLY_CAST 1
#include "include/observe.h"
#include "include/args.h"

#define TP_SLOTS 24

const volatile struct tp_point TP_POINTS[TP_SLOTS] SEC(".rodata.points") = {};

static __always_inline int on_tracepoint(__u64 *ctx, const volatile struct tp_point *point)
{
	struct sk_buff *skb = (struct sk_buff *)ctx_arg(ctx, point->skb_arg);
	if (!skb)
		return 0;
	/* A free --filter-func left out, attached for --filter-track-skb alone:
	 * it runs for every skb the machine frees there, and only forgets. */
	if (point->silent) {
		if (!bench_stops_at(STAGE_START) && (CONFIG.flags & CONFIG_TRACK))
			forget(skb);
		return 0;
	}

	struct site site = { .point_id = point->point_id, .frees = point->frees, .ctx = ctx, .stack_ok = true };
	if (point->reason_arg >= 0) {
		site.drop_reason = (__u32)ctx_arg(ctx, point->reason_arg);
		site.flags |= EVENT_HAS_REASON;
	}
	if (point->location_arg >= 0) {
		site.caller = ctx_arg(ctx, point->location_arg);
		site.flags |= EVENT_HAS_CALLER;
	}
	if (point->dev_arg >= 0)
		site.dev = (struct net_device *)ctx_arg(ctx, point->dev_arg);
	observe(skb, &site);
	return 0;
}

#define TP_PROGRAM(slot)                                           \
	SEC("tp_btf")                                              \
	int pktpath_tp_##slot(__u64 *ctx)                          \
	{                                                          \
		return on_tracepoint(ctx, &TP_POINTS[slot]);       \
	}

TP_PROGRAM(0)  TP_PROGRAM(1)  TP_PROGRAM(2)  TP_PROGRAM(3)  TP_PROGRAM(4)  TP_PROGRAM(5)
TP_PROGRAM(6)  TP_PROGRAM(7)  TP_PROGRAM(8)  TP_PROGRAM(9)  TP_PROGRAM(10) TP_PROGRAM(11)
TP_PROGRAM(12) TP_PROGRAM(13) TP_PROGRAM(14) TP_PROGRAM(15) TP_PROGRAM(16) TP_PROGRAM(17)
TP_PROGRAM(18) TP_PROGRAM(19) TP_PROGRAM(20) TP_PROGRAM(21) TP_PROGRAM(22) TP_PROGRAM(23)
