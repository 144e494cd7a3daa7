/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * The traced BPF program running on this CPU (--filter-track-bpf-helpers):
 * at its entry, once its packet matched, observe() keeps the entry record's
 * core here; its exit forgets it. The kernel functions its helper calls land
 * in (bpf_redirect, htab_map_update_elem, ...) send that core again, so a
 * helper's record is of the program's packet. Sound because a tc or XDP
 * program runs to its end on one CPU with nothing else of the kind between
 * (softirq, or BH disabled: no other program's run nests inside it).
 */
#ifndef PKTPATH_PROG_RUN_H
#define PKTPATH_PROG_RUN_H

struct prog_run {
	__u64 active;       /* a matched run is under way */
	struct event core;  /* its entry's record */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct prog_run);
} prog_runs SEC(".maps");

static __always_inline struct prog_run *prog_run(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&prog_runs, &zero);
}

/* At a traced program's entry and exit: no run (a matching entry starts one). */
static __always_inline void prog_run_end(void)
{
	if (!(CONFIG.flags & CONFIG_PROG_RUN))
		return;
	struct prog_run *r = prog_run();
	if (r)
		r->active = 0;
}

/* observe(), for an entry whose packet matched. */
static __always_inline void prog_run_begin(const struct event *e, bool entry)
{
	if (!entry || !(CONFIG.flags & CONFIG_PROG_RUN))
		return;
	struct prog_run *r = prog_run();
	if (!r)
		return;
	__builtin_memcpy(&r->core, e, sizeof(*e));
	r->active = 1;
}

/* A helper's record, `space` bytes of sections after the run's core; NULL when no run is under way (or the ring is full). */
static __always_inline struct event *prog_run_event(__u32 space)
{
	struct prog_run *r = prog_run();
	if (!r || !r->active)
		return 0;
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e) + space, 0);
	if (!e) {
		count(&lost, 0);
		return 0;
	}
	__builtin_memcpy(e, &r->core, sizeof(*e));
	e->flags &= EVENT_HAS_TUPLE;
	e->point_id = CONFIG.point_id;
	e->ts_ns = bpf_ktime_get_ns();
	e->stack_id = -1;
	e->caller = 0;
	e->func_ip = 0;
	e->cap_len = 0;
	e->cap_orig_len = 0;
	e->cap_offset = sizeof(*e) + space;
	return e;
}

#endif
