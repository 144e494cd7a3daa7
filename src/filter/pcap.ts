/**
 * tcpdump expressions → classic BPF, compiled by libpcap itself (bound in
 * src/bpf/native/libpcap.ts), so pktpath filters mean exactly what they mean to tcpdump.
 */
import { type CbpfInsnRaw, libpcap } from '../bpf/native/libpcap.js';

/** One classic BPF instruction (struct bpf_insn). */
export type CbpfInsn = CbpfInsnRaw;

/** Link types pktpath compiles for: frames with an Ethernet header, or packets starting at the IP header. */
export const LinkType = { ETHERNET: 1, RAW: 12 } as const;
export type LinkTypeValue = (typeof LinkType)[keyof typeof LinkType];

const SNAPLEN = 262144;
const NETMASK_UNKNOWN = 0xffffffff;

export class FilterSyntaxError extends Error {
  override name = 'FilterSyntaxError';
}

/** Compiles a tcpdump expression for a link type; throws FilterSyntaxError with libpcap's message. */
export function compilePcap(expression: string, linkType: LinkTypeValue): CbpfInsn[] {
  const r = libpcap().compile(linkType, SNAPLEN, expression, NETMASK_UNKNOWN);
  if ('error' in r) throw new FilterSyntaxError(r.error);
  return r.insns;
}

/** Runs a classic program on a packet with libpcap's interpreter: the verdict tcpdump would give. */
export function pcapVerdict(program: CbpfInsn[], packet: Uint8Array, wireLen = packet.length): number {
  return libpcap().filter(program, packet, wireLen);
}
