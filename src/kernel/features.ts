/**
 * What the running kernel offers, read cheaply from its BTF (no
 * program is loaded). `pktpath doctor` goes further and tries each mechanism.
 */
import type { Btf } from '../bpf/btf/btf.js';

export interface KernelFeatures {
  /** BTF-typed tracepoints (tp_btf) need kernel BTF. */
  tracing: boolean;
  /** tcx links (Linux 6.6+). */
  tcx: boolean;
  /** BPF netfilter links (Linux 6.4+). */
  netfilter: boolean;
}

export function kernelFeatures(btf: Btf | null): KernelFeatures {
  const attachTypes = btf?.enumValues('bpf_attach_type');
  const names = new Set(attachTypes ? attachTypes.values() : []);
  return {
    tracing: btf !== null,
    tcx: names.has('BPF_TCX_INGRESS'),
    netfilter: names.has('BPF_NETFILTER'),
  };
}
