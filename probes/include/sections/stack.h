/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * The stack section: the id of the kernel stack in the stacks map
 * (--output-stack). Symbolized by src/trace/stacks.ts, formatted by
 * src/output/stack.ts. bpf_get_stackid is the costliest step of a probe:
 * it runs last, and only for records that are sent.
 */
#ifndef PKTPATH_SECTION_STACK_H
#define PKTPATH_SECTION_STACK_H

static __always_inline void section_stack(struct event *e, void *ctx, bool allowed)
{
	e->stack_id = -1;
	if (!allowed || !(CONFIG.flags & CONFIG_STACK))
		return;
	long id = bpf_get_stackid(ctx, &stacks, 0);
	if (id >= 0) {
		e->stack_id = id;
		e->flags |= EVENT_HAS_STACK;
	}
}

#endif
