/**
 * --filter-tunnel-pcap-l2/-l3: tcpdump expressions on what a tunnel carries,
 * compiled by libpcap and translated like the outer filter, for the probes'
 * tunnel regions (probes/include/tunnel.h): L2 runs on the inner Ethernet
 * frame (VXLAN, Geneve, GRE of Ethernet), L3 on the inner IP packet.
 */
import type { EbpfInsn } from '../bpf/insn.js';
import { LinkType, type LinkTypeValue, compilePcap, translateForRegion } from './pcap.js';

export const INNER_REGION_INSNS = 512;
export const INNER_MAGIC = { l2: 0x7070746c, l3: 0x70707433 } as const;

/** One side's expression, translated; `option` names it in messages. */
export interface InnerSide {
  option: string;
  expression: string;
  ebpf: EbpfInsn[];
}

export interface InnerFilter {
  l2: InnerSide | null;
  l3: InnerSide | null;
}

function compileOne(option: string, expression: string, linkType: LinkTypeValue): InnerSide {
  const label = option;
  const [ebpf] = translateForRegion(expression, [compilePcap(expression, { label, linkType })], { label, room: INNER_REGION_INSNS }, ['copy']);
  return { option, expression, ebpf: ebpf!.copy };
}

/** Compiles the inner filters asked for; throws FilterError naming the flag. */
export function compileInnerFilter(l2: string | null, l3: string | null): InnerFilter | null {
  if (l2 === null && l3 === null) return null;
  return {
    l2: l2 === null ? null : compileOne('--filter-tunnel-pcap-l2', l2, LinkType.ETHERNET),
    l3: l3 === null ? null : compileOne('--filter-tunnel-pcap-l3', l3, LinkType.RAW),
  };
}
