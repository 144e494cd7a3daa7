/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * The benchmarks' partial builds (bench/cost.ts): the same programs,
 * returning at a stage of the path a packet the filter does not want takes,
 * so that the bench can say where its nanoseconds go. -DPKTPATH_FLOOR
 * returns at once (the kernel's dispatch alone); -DPKTPATH_STOP=n at stage
 * n. The compiler must keep the rest (user space injects the filter into
 * it); the verifier knows the branch and drops it.
 */
#ifndef PKTPATH_BENCH_H
#define PKTPATH_BENCH_H

enum bench_stage {
	STAGE_START = 0,           /* the program's first step */
	STAGE_BEFORE_PACKET = 1,   /* past the namespace, device and mark checks, before the packet is located */
	STAGE_PACKET_LOCATED = 2,  /* its start and lengths read from the sk_buff, before the filter runs */
};

static __always_inline bool bench_stops_at(enum bench_stage stage)
{
#if defined(PKTPATH_FLOOR) || defined(PKTPATH_STOP)
#ifdef PKTPATH_FLOOR
	__u32 stop = stage == STAGE_START;
#else
	__u32 stop = stage == PKTPATH_STOP;
#endif
	asm volatile("" : "+r"(stop));
	return stop;
#else
	return false;
#endif
}

#endif
