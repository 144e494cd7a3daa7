// SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0)
/*
 * Runs an injected pcap filter region on a packet handed in with
 * BPF_PROG_TEST_RUN, and returns its verdict: the tests hold the translation
 * against libpcap's own interpreter with it. The L3 variant starts after the
 * Ethernet header.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "include/filter.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define ETH_HLEN 14

extern void *bpf_cast_to_kern_ctx(void *obj) __ksym;

static __always_inline __u32 run(struct __sk_buff *ctx, __u32 skip, bool l3, bool prefetch)
{
	struct sk_buff *skb = bpf_cast_to_kern_ctx(ctx);
	unsigned char *data = skb->data;
	__u32 len = skb->len;
	__u32 scratch[FILTER_SCRATCH_WORDS];

	if (len < skip)
		return 0;
	filter_scratch(scratch, data + skip, len - skip, len - skip, prefetch);
	if (l3)
		return FILTER_REGION(FILTER_MAGIC_L3, data + skip, scratch);
	return FILTER_REGION(FILTER_MAGIC_L2, data + skip, scratch);
}

/* With the prefetch, as the probes run it, and without, so both paths of
 * every translated load are held against libpcap. */
SEC("tc")
int filter_test_l2(struct __sk_buff *ctx)
{
	return run(ctx, 0, false, true);
}

SEC("tc")
int filter_test_l3(struct __sk_buff *ctx)
{
	return run(ctx, ETH_HLEN, true, true);
}

SEC("tc")
int filter_test_l2_slow(struct __sk_buff *ctx)
{
	return run(ctx, 0, false, false);
}

SEC("tc")
int filter_test_l3_slow(struct __sk_buff *ctx)
{
	return run(ctx, ETH_HLEN, true, false);
}
