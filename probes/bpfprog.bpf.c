// SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0)
/*
 * Observers of tc and XDP programs other tools loaded (--filter-trace-tc,
 * --filter-trace-xdp): trampoline programs run at the entry (fentry) and the
 * exit (fexit) of one such program, loaded for it (user space names the
 * target program and its main function). The kernel hands a tracing
 * program a tc program's struct __sk_buff * as the struct sk_buff it is,
 * BTF-typed; the exit also gets the verdict the program returned, after its
 * argument. With --filter-track-bpf-helpers the entry keeps the run of a
 * matching packet for the program's helper calls (include/prog_run.h), whose
 * kernel functions the helper programs below observe.
 */
#include "include/observe.h"
#include "include/args.h"

#define TC_ACT_REDIRECT 7 /* uapi linux/pkt_cls.h: a macro, not in BTF */

/* The site of a traced program's entry, or of its exit: the verdict it
 * returned follows its one argument; `redirect`: the code that means one. */
static __always_inline struct site program_site(__u64 *ctx, bool exit, __s32 redirect)
{
	struct site site = { .point_id = CONFIG.point_id, .ctx = ctx, .stack_ok = true, .run_begins = !exit };
	/* A run that did not match, or has ended, has no helper records. */
	prog_run_end();
	if (exit) {
		site.verdict = true;
		site.retval = (__s32)CTX_ARG(ctx, 1);
		site.redirected = site.retval == redirect;
	}
	return site;
}

static __always_inline int on_tc_program(__u64 *ctx, bool exit)
{
	struct sk_buff *skb = (struct sk_buff *)CTX_ARG(ctx, 0);
	if (!skb)
		return 0;
	struct site site = program_site(ctx, exit, TC_ACT_REDIRECT);
	observe(skb, &site);
	return 0;
}

/* The kernel hands a tracing program an XDP program's struct xdp_md * as the
 * struct xdp_buff it is. */
static __always_inline int on_xdp_program(__u64 *ctx, bool exit)
{
	struct xdp_buff *xdp = (struct xdp_buff *)CTX_ARG(ctx, 0);
	if (!xdp)
		return 0;
	struct site site = program_site(ctx, exit, XDP_REDIRECT);
	observe_frame(xdp, &site);
	return 0;
}

SEC("fentry")
int pktpath_prog_entry(__u64 *ctx)
{
	return on_tc_program(ctx, false);
}

SEC("fexit")
int pktpath_prog_exit(__u64 *ctx)
{
	return on_tc_program(ctx, true);
}

SEC("fentry")
int pktpath_xdp_entry(__u64 *ctx)
{
	return on_xdp_program(ctx, false);
}

SEC("fexit")
int pktpath_xdp_exit(__u64 *ctx)
{
	return on_xdp_program(ctx, true);
}

/*
 * Helper calls of a traced program, at the kernel function each lands in
 * (user space finds them in the program's translated instructions): a record
 * of the run's packet while a matching run is under way on this CPU. One
 * instance per function; the map operations' carry the map section.
 */
/* `op` is 0 for helpers that are no map operation: a constant once inlined,
 * as the ring's reservation size must be. */
static __always_inline void on_helper(struct bpf_map *map, enum bpfmap_op op, const void *key, const void *value)
{
	struct event *e = prog_run_event(op ? BPFMAP_SPACE : 0);
	if (!e)
		return;
	e->cpu = bpf_get_smp_processor_id();
	if (op)
		section_bpfmap((void *)(e + 1), map, op, key, value);
	bpf_ringbuf_submit(e, 0);
}

SEC("fentry")
int pktpath_helper(__u64 *ctx)
{
	on_helper(0, 0, 0, 0);
	return 0;
}

/* map_update_elem(map, key, value, flags) of a map's ops. */
SEC("fentry")
int pktpath_map_update(__u64 *ctx)
{
	on_helper((struct bpf_map *)CTX_ARG(ctx, 0), BPFMAP_UPDATE, (void *)CTX_ARG(ctx, 1), (void *)CTX_ARG(ctx, 2));
	return 0;
}

/* map_delete_elem(map, key). */
SEC("fentry")
int pktpath_map_delete(__u64 *ctx)
{
	on_helper((struct bpf_map *)CTX_ARG(ctx, 0), BPFMAP_DELETE, (void *)CTX_ARG(ctx, 1), 0);
	return 0;
}

/* map_lookup_elem(map, key) of maps the verifier does not inline: the value's address comes back. */
SEC("fexit")
int pktpath_map_lookup(__u64 *ctx)
{
	on_helper((struct bpf_map *)CTX_ARG(ctx, 0), BPFMAP_LOOKUP, (void *)CTX_ARG(ctx, 1), (void *)CTX_ARG(ctx, 2));
	return 0;
}

/* Hash maps' lookups inlined by the verifier call __htab_map_lookup_elem(map,
 * key), which returns the element: the value follows its key, rounded up to 8
 * bytes (kernel/bpf/hashtab.c, htab_elem_value). */
SEC("fexit")
int pktpath_htab_lookup(__u64 *ctx)
{
	struct bpf_map *map = (struct bpf_map *)CTX_ARG(ctx, 0);
	void *elem = (void *)CTX_ARG(ctx, 2);
	void *value = 0;
	if (elem) {
		__u32 key_size = BPF_CORE_READ(map, key_size);
		value = elem + bpf_core_field_offset(struct htab_elem, key) + ((key_size + 7) & ~7U);
	}
	on_helper(map, BPFMAP_LOOKUP, (void *)CTX_ARG(ctx, 1), value);
	return 0;
}
