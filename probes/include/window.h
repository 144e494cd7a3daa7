/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * --filter-non-skb-funcs: functions that take no skb are reported while a
 * wanted skb's function is running on their CPU (pwru#560's window), each
 * record tied to that skb. The fentry observer of an skb function opens its
 * CPU's window on a wanted skb; the function's fexit closes it. Calls of the
 * same skb nest (a depth); another skb's function takes the window over, and
 * the outer call's rest is then outside it. What the window cannot tell: a
 * function run by an interrupt in the middle (it is reported as under the
 * skb), and a task moved to another CPU inside the skb's function (its
 * process context is preemptible there: rare on the packet path).
 */
#ifndef PKTPATH_WINDOW_H
#define PKTPATH_WINDOW_H

static __always_inline struct cpu_window *cpu_window(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&cpu_windows, &zero);
}

static __always_inline void window_open(struct sk_buff *skb)
{
	struct cpu_window *w = cpu_window();
	if (!w)
		return;
	if (w->skb == (__u64)skb && w->depth) {
		w->depth++;
	} else {
		w->skb = (__u64)skb;
		w->depth = 1;
	}
}

static __always_inline void window_close(__u64 skb)
{
	struct cpu_window *w = cpu_window();
	if (!w || w->skb != skb || !w->depth)
		return;
	if (--w->depth == 0)
		w->skb = 0;
}

/* The skb whose function this CPU is in; 0 outside any. */
static __always_inline __u64 window_skb(void)
{
	struct cpu_window *w = cpu_window();
	return w && w->depth ? w->skb : 0;
}

#endif
