/**
 * --filter-tunnel-pcap-l2/-l3: tcpdump expressions on what a tunnel carries,
 * compiled by libpcap and translated like the outer filter, for the probes'
 * tunnel regions (probes/include/tunnel.h): L2 runs on the inner Ethernet
 * frame (VXLAN, Geneve, GRE of Ethernet), L3 on the inner IP packet.
 */
import type { EbpfInsn } from '../bpf/insn.js';
import { TranslateError, translate } from './cbpf-to-ebpf.js';
import { FilterSyntaxError, LinkType, compilePcap } from './pcap.js';

export const TUNNEL_REGION_INSNS = 512;
export const TUNNEL_MAGIC = { l2: 0x7070746c, l3: 0x70707433 } as const;

export interface TunnelFilter {
  l2: { expression: string; ebpf: EbpfInsn[] } | null;
  l3: { expression: string; ebpf: EbpfInsn[] } | null;
}

function compileOne(flag: string, expression: string, linkType: typeof LinkType.ETHERNET | typeof LinkType.RAW) {
  let ebpf: EbpfInsn[];
  try {
    ebpf = translate(compilePcap(expression, linkType));
  } catch (e) {
    if (e instanceof FilterSyntaxError || e instanceof TranslateError) throw new FilterSyntaxError(`${flag} '${expression}': ${e.message}`);
    throw e;
  }
  if (ebpf.length > TUNNEL_REGION_INSNS) {
    throw new FilterSyntaxError(`${flag} '${expression}': it needs ${ebpf.length} eBPF instructions; the probes have room for ${TUNNEL_REGION_INSNS}`);
  }
  return { expression, ebpf };
}

/** Compiles the inner filters asked for; throws FilterSyntaxError naming the flag. */
export function compileTunnelFilter(l2: string | null, l3: string | null): TunnelFilter | null {
  if (l2 === null && l3 === null) return null;
  return {
    l2: l2 === null ? null : compileOne('--filter-tunnel-pcap-l2', l2, LinkType.ETHERNET),
    l3: l3 === null ? null : compileOne('--filter-tunnel-pcap-l3', l3, LinkType.RAW),
  };
}
