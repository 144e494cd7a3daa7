/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * The return value section (--output-retval): what a traced kernel function
 * returned, in a record of its own sent at the function's exit (fexit), tied
 * to the entry's record. At entry observe() keeps the record's core for the
 * call (the `calls` map, by task and function) when the packet matched; the
 * exit sends that core again with this section, without reading the skb
 * (the function may have freed it). Its TS half: src/output/sections/retval.ts.
 */
#ifndef PKTPATH_SECTION_RETVAL_H
#define PKTPATH_SECTION_RETVAL_H

#define SECTION_RETVAL 15

struct retval_section {
	__u64 value;       /* the return register, read by the function's BTF type in user space */
	__u64 duration_ns; /* since the entry's record: the entry is the record of that time, skb and function */
};

#ifndef PKTPATH_LAYOUT_ONLY
#include "section.h"

/* A call in flight: the task and the function. A function that runs again
 * inside itself on the same task keeps only the inner call's entry. */
struct call_key {
	__u64 task;
	__u64 func;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192); /* user space makes it one entry when the section is not asked for */
	__type(key, struct call_key);
	__type(value, struct event);
} calls SEC(".maps");

/* The map update takes its value from a map (5.10 refuses ring memory there). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct event);
} call_scratch SEC(".maps");

/* At a function's entry, once the packet matched: keep the record's core for the exit. */
static __always_inline void retval_keep(const struct event *e, __u32 site_flags)
{
	if (!(site_flags & EVENT_HAS_FUNC) || !SECTION_WANTED(SECTION_RETVAL))
		return;
	__u32 zero = 0;
	struct event *copy = bpf_map_lookup_elem(&call_scratch, &zero);
	if (!copy)
		return;
	__builtin_memcpy(copy, e, sizeof(*e));
	struct call_key key = { .task = bpf_get_current_task(), .func = e->func_ip };
	bpf_map_update_elem(&calls, &key, copy, BPF_ANY);
}

/* At a function's exit: the entry's core again, now, with what it returned. */
static __always_inline void retval_send(__u64 func_ip, __u64 value)
{
	struct call_key key = { .task = bpf_get_current_task(), .func = func_ip };
	struct event *entry = bpf_map_lookup_elem(&calls, &key);
	if (!entry) {
		/* A trampoline names the function after its endbr64 (IBT kernels), kprobe-multi before it. */
		key.func = func_ip - 4;
		entry = bpf_map_lookup_elem(&calls, &key);
		if (!entry)
			return;
	}
	const __u32 space = SECTION_SPACE(struct retval_section, 1);
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e) + space, 0);
	if (!e) {
		count(&lost, 0);
		bpf_map_delete_elem(&calls, &key);
		return;
	}
	__builtin_memcpy(e, entry, sizeof(*e));
	bpf_map_delete_elem(&calls, &key);
	__u64 now = bpf_ktime_get_ns();
	__u64 duration = now - e->ts_ns;
	e->flags &= EVENT_HAS_TUPLE | EVENT_HAS_CALLER | EVENT_HAS_FUNC;
	e->point_id = CONFIG.point_id;
	e->ts_ns = now;
	e->cpu = bpf_get_smp_processor_id();
	e->stack_id = -1;
	e->cap_len = 0;
	e->cap_orig_len = 0;
	e->cap_offset = sizeof(*e) + space;
	struct retval_section *r = section_open((void *)(e + 1), SECTION_RETVAL, sizeof(*r));
	r->value = value;
	r->duration_ns = duration;
	bpf_ringbuf_submit(e, 0);
}

#endif /* PKTPATH_LAYOUT_ONLY */
#endif
