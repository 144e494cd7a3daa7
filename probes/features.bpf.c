// SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0)
/*
 * Smallest programs of each kind, loaded one at a time by `pktpath doctor` to
 * learn what the running kernel allows. ip_rcv is only a well-known target.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("kprobe/ip_rcv")
int feature_kprobe(void *ctx)
{
	return 0;
}

SEC("kprobe.multi/ip_rcv")
int feature_kprobe_multi(void *ctx)
{
	return 0;
}

SEC("fentry/ip_rcv")
int feature_fentry(void *ctx)
{
	return 0;
}

SEC("raw_tp/netif_receive_skb")
int feature_raw_tp(void *ctx)
{
	return 0;
}
