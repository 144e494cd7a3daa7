/**
 * One filter path: the classic --filter-* flags become a tcpdump expression,
 * ANDed with the user's own, then compiled by libpcap for both the L2 and the
 * L3 variant and translated to eBPF.
 */
import type { Addr } from '../decode/addr.js';
import { protocolName } from '../decode/protocols.js';
import { translate } from './cbpf-to-ebpf.js';
import { FILTER_REGION_INSNS } from './inject.js';
import type { EbpfInsn } from '../bpf/insn.js';
import { type CbpfInsn, FilterSyntaxError, LinkType, compilePcap } from './pcap.js';

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

/** Quotes the part of the expression libpcap's message names, when it names one. */
function locate(expression: string, message: string): string {
  const m = /'([^']+)'|"([^"]+)"/.exec(message);
  const token = m?.[1] ?? m?.[2];
  if (token) {
    const at = expression.indexOf(token);
    if (at >= 0) return ` (at column ${at + 1}: '${token}')`;
  }
  return '';
}

/**
 * Compiles both variants. An expression that libpcap refuses at L2 is an
 * error; one it accepts at L2 only (arp, ether host …) matches nothing where
 * packets have no link-layer header, and the notes say so.
 */
export function compileFilter(expression: string): CompiledFilter {
  const notes: string[] = [];
  // libpcap's optimiser takes time that grows faster than the expression: bounded before it starts.
  const terms = countTerms(expression);
  if (terms > MAX_TERMS) {
    throw new FilterTooLarge(`filter: ${terms} terms; pktpath compiles at most ${MAX_TERMS} (joined by and/or), ` +
      'and far fewer fit in a probe: narrow it, e.g. with a network (net 192.0.2.0/24) or a port range (portrange 1000-2000)');
  }
  let l2: CbpfInsn[];
  try {
    l2 = compilePcap(expression, LinkType.ETHERNET);
  } catch (e) {
    if (e instanceof FilterSyntaxError) {
      throw new FilterSyntaxError(`filter '${expression}': ${e.message}${locate(expression, e.message)}`);
    }
    throw e;
  }
  let l3: CbpfInsn[];
  try {
    l3 = compilePcap(expression, LinkType.RAW);
  } catch (e) {
    if (!(e instanceof FilterSyntaxError)) throw e;
    l3 = REJECT_ALL;
    notes.push(`filter '${expression}' needs a link-layer header (${e.message}): it matches nothing at points ` +
      'where packets have none (netfilter hooks and tracepoints before the Ethernet header is built)');
  }
  const both = (cbpf: CbpfInsn[]) => ({ cbpf, ebpf: translate(cbpf), direct: translate(cbpf, 'direct') });
  const compiled = { expression, l2: both(l2), l3: both(l3), notes };
  const size = Math.max(compiled.l2.ebpf.length, compiled.l3.ebpf.length);
  if (size > FILTER_REGION_INSNS) {
    throw new FilterTooLarge(`filter: it needs ${size} eBPF instructions; the probes have room for ${FILTER_REGION_INSNS}: ` +
      'narrow it, e.g. with a network (net 192.0.2.0/24) or a port range (portrange 1000-2000)');
  }
  return compiled;
}

/** More terms than this are refused before libpcap sees them (200 mixed terms compile in about 2 s). */
export const MAX_TERMS = 200;

/** The expression cannot become a probe's filter: it is too large (the user's to narrow). */
export class FilterTooLarge extends Error {
  override name = 'FilterTooLarge';
}

/** Primitives joined by and/or, counted from the words alone. */
export function countTerms(expression: string): number {
  return expression.split(/\b(?:and|or)\b|&&|\|\|/).length;
}
