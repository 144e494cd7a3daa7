/**
 * One filter path: the classic --filter-* flags become a tcpdump expression,
 * ANDed with the user's own, then compiled by libpcap for both the L2 and the
 * L3 variant and translated to eBPF.
 */
import type { Addr } from '../decode/addr.js';
import { protocolName } from '../decode/protocols.js';
import { FILTER_REGION_INSNS } from './inject.js';
import type { EbpfInsn } from '../bpf/insn.js';
import { type CbpfInsn, compileL2L3, translateForRegion } from './pcap.js';

export interface FlagFilter {
  srcIp?: Addr;
  dstIp?: Addr;
  ip?: Addr;
  proto?: number;
  srcPort?: number;
  dstPort?: number;
  port?: number;
}

/** The tcpdump expression equivalent to the classic flags ('' when none is set). */
export function flagsToExpression(f: FlagFilter): string {
  const parts: string[] = [];
  // "ip"/"ip6" before "host": the flags name IP addresses, so ARP for that address is not a match.
  const family = (a: Addr) => (a.l3 === 4 ? 'ip' : 'ip6');
  if (f.srcIp) parts.push(`${family(f.srcIp)} src host ${f.srcIp.text}`);
  if (f.dstIp) parts.push(`${family(f.dstIp)} dst host ${f.dstIp.text}`);
  if (f.ip) parts.push(`${family(f.ip)} host ${f.ip.text}`);
  if (f.proto !== undefined) parts.push(protocolName(f.proto) ?? `(ip proto ${f.proto} or ip6 proto ${f.proto})`);
  if (f.srcPort) parts.push(`src port ${f.srcPort}`);
  if (f.dstPort) parts.push(`dst port ${f.dstPort}`);
  if (f.port) parts.push(`port ${f.port}`);
  return parts.join(' and ');
}

/** The user's expression (positional words) ANDed with the flags' ('' when there is no filter at all). */
export function combineExpression(words: string[], flags: FlagFilter): string {
  const user = words.join(' ').trim();
  const fromFlags = flagsToExpression(flags);
  if (user && fromFlags) return `(${user}) and ${fromFlags}`;
  return user || fromFlags;
}

export interface CompiledFilter {
  expression: string;
  /** `ebpf` reads packet bytes as every kernel allows, `direct` in place (PacketLoads: 6.17+, never longer). */
  l2: { cbpf: CbpfInsn[]; ebpf: EbpfInsn[]; direct: EbpfInsn[] };
  l3: { cbpf: CbpfInsn[]; ebpf: EbpfInsn[]; direct: EbpfInsn[] };
  /** Said to the user, e.g. when the expression can only match frames with a link-layer header. */
  notes: string[];
}

const REJECT_ALL: CbpfInsn[] = [{ code: 0x06, jt: 0, jf: 0, k: 0 }];

/**
 * Compiles both variants (src/filter/pcap.ts). An expression that libpcap
 * refuses at L2 is an error; one it accepts at L2 only (arp, ether host …)
 * matches nothing where packets have no link-layer header, and the notes say so.
 */
export function compileFilter(expression: string): CompiledFilter {
  const { l2, l3, l3Refusal } = compileL2L3(expression, 'filter');
  const notes = l3Refusal === null ? [] : [`filter '${expression}' needs a link-layer header (${l3Refusal}): it matches nothing at points ` +
    'where packets have none (netfilter hooks and tracepoints before the Ethernet header is built)'];
  const [t2, t3] = translateForRegion(expression, [l2, l3 ?? REJECT_ALL], { label: 'filter', room: FILTER_REGION_INSNS }, ['copy', 'direct']);
  return {
    expression,
    l2: { cbpf: l2, ebpf: t2!.copy, direct: t2!.direct },
    l3: { cbpf: l3 ?? REJECT_ALL, ebpf: t3!.copy, direct: t3!.direct },
    notes,
  };
}
