/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * The pcap filter: two regions of no-op instructions, one for packets that
 * start at their Ethernet header (L2) and one for packets that start at their
 * IP header (L3). Before load, user space overwrites each region with the
 * tcpdump expression translated to eBPF (src/filter), in place, so no other
 * instruction moves. The register contract is in src/filter/cbpf-to-ebpf.ts.
 */
#ifndef PKTPATH_FILTER_H
#define PKTPATH_FILTER_H

/* Instructions per region. The tracepoint object is built with 1024 as well
 * (its 17 programs verify noticeably faster with less to walk), and with
 * this, the widest, for filters that need more (src/trace/builds.ts). */
#ifndef FILTER_REGION_INSNS
#define FILTER_REGION_INSNS 4096
#endif
#define FILTER_MAGIC_L2 0x70706c32 /* marks the start of the L2 region */
#define FILTER_MAGIC_L3 0x70706c33

/* Scratch layout shared with the translator (in 32-bit words): M[16], caplen,
 * wirelen, a load buffer, how many of the packet's first bytes the prefetch
 * holds, and the prefetch itself. */
#define FILTER_SCRATCH_WORDS 36
#define FILTER_CAPLEN 16
#define FILTER_WIRELEN 17
#define FILTER_PREFETCHED 19
#define FILTER_PREFETCH 20
#define FILTER_PREFETCH_BYTES 64

/* Sets up the scratch for a run: the lengths, and the packet's first bytes
 * copied once (`prefetch`), so that most filter loads cost no helper call.
 * M[] is left as it is: classic programs store before they load (the kernel
 * refuses those that do not), and the prefetch is written by the copy.
 * Reading past the linear data is harmless: only the captured bytes count. */
static __always_inline void filter_scratch(__u32 *scratch, const void *start, __u32 caplen, __u32 wirelen, bool prefetch)
{
	scratch[FILTER_CAPLEN] = caplen;
	scratch[FILTER_WIRELEN] = wirelen;
	scratch[FILTER_PREFETCHED] = 0;
	if (prefetch && bpf_probe_read_kernel(&scratch[FILTER_PREFETCH], FILTER_PREFETCH_BYTES, start) == 0)
		scratch[FILTER_PREFETCHED] = caplen < FILTER_PREFETCH_BYTES ? caplen : FILTER_PREFETCH_BYTES;
}

#define __stringify_1(x) #x
#define __stringify(x) __stringify_1(x)

/* r8 = the data (packet start; the skb for skb_expr.h and skb_meta.h), r9 = scratch; the region leaves its result in r0. Only
 * the two operands are not clobbered, so the compiler must place them in
 * registers the region does not touch before reading them. */
#define FILTER_REGION_SIZED(magic, insns, data, scratch)                         \
	({                                                                           \
		unsigned long __d = (unsigned long)(data);                           \
		unsigned long __s = (unsigned long)(scratch);                        \
		asm volatile("r8 = %[d]\n\t"                                         \
			     "r9 = %[s]\n\t"                                         \
			     "r0 = " __stringify(magic) "\n\t"                       \
			     ".rept " __stringify(insns) " - 1\n\t"                  \
			     "goto +0\n\t"                                           \
			     ".endr\n\t"                                             \
			     "%[d] = r0\n\t"                                         \
			     : [d] "+r"(__d), [s] "+r"(__s)                          \
			     :                                                       \
			     : "r0", "r3", "r4", "r5", "r6", "r7", "r8", "r9", "memory"); \
		__d;                                                                 \
	})

#define FILTER_REGION(magic, data, scratch) FILTER_REGION_SIZED(magic, FILTER_REGION_INSNS, data, scratch)

#endif
