/** Numbers of the kernel's BPF ABI (include/uapi/linux/bpf.h) that libbpf 1.1 does not name for us. */

export const ProgType = {
  KPROBE: 2,
  SCHED_CLS: 3,
  RAW_TRACEPOINT: 17,
  TRACING: 26,
  NETFILTER: 32,
} as const;

export const AttachType = {
  TRACE_RAW_TP: 23,
  TRACE_FENTRY: 24,
  PERF_EVENT: 41,
  TRACE_KPROBE_MULTI: 42,
  NETFILTER: 45,
  TCX_INGRESS: 46,
  TCX_EGRESS: 47,
} as const;
