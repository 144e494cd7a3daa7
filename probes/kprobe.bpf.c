// SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0)
/*
 * kprobe observers for kernel functions taking an skb: one program per
 * position of the skb among the arguments (user space sets it), attached to
 * many functions at once with kprobe-multi, or to each with a kprobe. The
 * function comes from bpf_get_func_ip(), the caller from the return address
 * on top of the stack at entry. Arguments are plain registers, untyped: every
 * field is read with bpf_probe_read_kernel (include/kread.h). Their returns
 * (--output-retval where fexit is refused or kprobes are asked for): a
 * kretprobe, or kprobe-multi with its return flag, sends what the function
 * returned, tied to the entry's record (include/sections/retval.h).
 */
#define PKTPATH_UNTYPED 1
/* A tracing program: it may print the skb from BTF (--output-skb). */
#define PKTPATH_TRACING 1
#include "include/observe.h"
#include <bpf/bpf_tracing.h>

/* The argument registers of x86-64 (pt_regs is the kernel's ABI there), each
 * loaded with a fixed-offset instruction: the verifier refuses context loads
 * through a computed pointer, which a switch over the position would become. */
#define REG_AT(ctx, field) ({ __u64 v; asm volatile("%0 = *(u64 *)(%1 + %2)" : "=r"(v) : "r"(ctx), "i"(__builtin_offsetof(struct pt_regs, field))); v; })

static __always_inline struct sk_buff *reg_arg(struct pt_regs *ctx, int n)
{
	switch (n) {
	case 0: return (struct sk_buff *)REG_AT(ctx, di);
	case 1: return (struct sk_buff *)REG_AT(ctx, si);
	case 2: return (struct sk_buff *)REG_AT(ctx, dx);
	case 3: return (struct sk_buff *)REG_AT(ctx, cx);
	case 4: return (struct sk_buff *)REG_AT(ctx, r8);
	default: return 0;
	}
}

#ifdef PKTPATH_NO_FUNC_IP
/* Before bpf_get_func_ip (5.15): the function from the probe's address, a
 * kprobe at its entry reporting the byte after the breakpoint. */
#define FUNC_IP(ctx) (REG_AT(ctx, ip) - 1)
#else
#define FUNC_IP(ctx) bpf_get_func_ip(ctx)
#endif

static __always_inline int on_function(struct pt_regs *ctx)
{
	struct sk_buff *skb = reg_arg(ctx, CONFIG.skb_arg);
	if (!skb)
		return 0;
	struct site site = {
		.point_id = CONFIG.point_id,
		.ctx = ctx,
		.flags = EVENT_HAS_FUNC,
		.func_ip = FUNC_IP(ctx),
		.stack_ok = true,
		/* At entry the return address is on top of the stack: the caller. */
		.caller_at = (void *)REG_AT(ctx, sp),
	};
	observe(skb, &site);
	return 0;
}

SEC("kprobe")
int pktpath_kprobe(struct pt_regs *ctx)
{
	return on_function(ctx);
}

SEC("kprobe.multi")
int pktpath_kprobe_multi(struct pt_regs *ctx)
{
	return on_function(ctx);
}

/* The return register, tied to the entry by the task and the function: in a
 * kretprobe bpf_get_func_ip names the function as it does at its entry
 * (5.15+; the builds before it are never loaded for returns). */
static __always_inline int on_return(struct pt_regs *ctx)
{
	retval_send(bpf_get_func_ip(ctx), REG_AT(ctx, ax));
	return 0;
}

SEC("kretprobe")
int pktpath_kretprobe(struct pt_regs *ctx)
{
	return on_return(ctx);
}

SEC("kretprobe.multi")
int pktpath_kretprobe_multi(struct pt_regs *ctx)
{
	return on_return(ctx);
}
