/**
 * --filter-tunnel-pcap-l2/-l3: tcpdump expressions on what a tunnel carries,
 * compiled by libpcap and translated like the outer filter, for the probes'
 * tunnel regions (probes/include/tunnel.h): L2 runs on the inner Ethernet
 * frame (VXLAN, Geneve, GRE of Ethernet), L3 on the inner IP packet.
 */
import type { EbpfInsn } from '../bpf/insn.js';
import { LinkType, type LinkTypeValue, compilePcap, translateForRegion } from './pcap.js';

export const TUNNEL_REGION_INSNS = 512;
export const TUNNEL_MAGIC = { l2: 0x7070746c, l3: 0x70707433 } as const;

export interface TunnelFilter {
  l2: { expression: string; ebpf: EbpfInsn[] } | null;
  l3: { expression: string; ebpf: EbpfInsn[] } | null;
}

function compileOne(label: string, expression: string, linkType: LinkTypeValue) {
  const [ebpf] = translateForRegion(expression, [compilePcap(expression, { label, linkType })], { label, room: TUNNEL_REGION_INSNS }, ['copy']);
  return { expression, ebpf: ebpf!.copy };
}

/** Compiles the inner filters asked for; throws FilterError naming the flag. */
export function compileTunnelFilter(l2: string | null, l3: string | null): TunnelFilter | null {
  if (l2 === null && l3 === null) return null;
  return {
    l2: l2 === null ? null : compileOne('--filter-tunnel-pcap-l2', l2, LinkType.ETHERNET),
    l3: l3 === null ? null : compileOne('--filter-tunnel-pcap-l3', l3, LinkType.RAW),
  };
}
