/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * The verdict section: what a traced BPF program returned (fexit), and where
 * a redirect it asked for goes, read from the kernel's bpf_redirect_info
 * before the caller acts on it. Decoded by src/decode/verdict.ts, named by
 * src/output/verdict.ts (the same section the inference of src/trace/verdicts.ts fills).
 */
#ifndef PKTPATH_SECTION_VERDICT_H
#define PKTPATH_SECTION_VERDICT_H

#include "section.h"

#define VERDICT_SECTION_SPACE(on) SECTION_SPACE(struct verdict_section, on)

/* Before 6.11 the redirect target is a per-CPU variable; since, it lives in
 * the task's bpf_net_context. Whichever this kernel lacks resolves to
 * nothing and its branch is dead code for the verifier. */
extern struct bpf_redirect_info bpf_redirect_info __ksym __weak;

struct task_struct___net_context {
	struct bpf_net_context *bpf_net_context;
} __attribute__((preserve_access_index));

static __always_inline struct bpf_redirect_info *redirect_info(void)
{
	if (bpf_core_field_exists(struct task_struct___net_context, bpf_net_context)) {
		struct task_struct___net_context *t = (void *)bpf_get_current_task_btf();
		struct bpf_net_context *nc = t->bpf_net_context;
		return nc ? &nc->ri : 0;
	}
	if (&bpf_redirect_info)
		return bpf_this_cpu_ptr(&bpf_redirect_info);
	return 0;
}

/* Fills the section at `at` for a program that returned `retval`; a redirect
 * (`redirected`) to a device by its ifindex names it (a redirect through a
 * map holds a key instead: left unnamed). */
static __always_inline void section_verdict(struct event *e, void *at, __s32 retval, bool redirected)
{
	struct verdict_section *v = section_open(at, SECTION_VERDICT, sizeof(*v));
	v->retval = retval;
	v->redirect_ifindex = 0;
	v->redirect_flags = 0;
	v->_pad = 0;
	if (redirected) {
		struct bpf_redirect_info *ri = redirect_info();
		if (ri && ri->map_id == 0) {
			v->redirect_ifindex = ri->tgt_index;
			v->redirect_flags = ri->flags;
		}
	}
	e->flags |= EVENT_HAS_VERDICT;
}

#endif
