/**
 * tcpdump expressions → classic BPF, compiled by libpcap itself (bound in
 * src/bpf/native/libpcap.ts), so pktpath filters mean exactly what they mean
 * to tcpdump. The one front end of every filter given as an expression: the
 * live filter, the inner-packet filters and `show`'s filter on recorded
 * events take the same bound on terms, the same fallback where a link-layer
 * header is needed, the same errors (one line naming the flag and the
 * expression) and, for the probes, the same translation and region check.
 */
import type { EbpfInsn } from '../bpf/insn.js';
import { type CbpfInsnRaw, libpcap } from '../bpf/native/libpcap.js';
import { type PacketLoads, TranslateError, translate } from './cbpf-to-ebpf.js';

/** One classic BPF instruction (struct bpf_insn). */
export type CbpfInsn = CbpfInsnRaw;

/** Link types pktpath compiles for: frames with an Ethernet header, or packets starting at the IP header. */
export const LinkType = { ETHERNET: 1, RAW: 12 } as const;
export type LinkTypeValue = (typeof LinkType)[keyof typeof LinkType];

/** tcpdump's default: every byte of a packet may be read. */
const SNAPLEN = 262144;
const NETMASK_UNKNOWN = 0xffffffff;

/** An expression pktpath cannot use: the user's to change (one line, naming the flag). */
export class FilterError extends Error {
  override name = 'FilterError';
}

/** libpcap (or the translation to eBPF) refused the expression. */
export class FilterSyntaxError extends FilterError {
  override name = 'FilterSyntaxError';
}

/** The expression cannot become a probe's filter: it is too large (the user's to narrow). */
export class FilterTooLarge extends FilterError {
  override name = 'FilterTooLarge';
}

/** What an expression is compiled for. */
export interface PcapTarget {
  /** What the expression came with, for messages: `filter`, or the option that gave it. */
  label: string;
  linkType: LinkTypeValue;
  /** The bytes of a packet the program may read. */
  snaplen?: number;
}

/** More terms than this are refused before libpcap sees them (200 mixed terms compile in about 2 s). */
export const MAX_TERMS = 200;

const NARROW = 'narrow it, e.g. with a network (net 192.0.2.0/24) or a port range (portrange 1000-2000)';

/** Primitives joined by and/or, counted from the words alone. */
export function countTerms(expression: string): number {
  return expression.split(/\b(?:and|or)\b|&&|\|\|/).length;
}

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

/** libpcap's message for an expression it refuses at a link type; null when it compiles. */
function compileRaw(expression: string, t: PcapTarget): CbpfInsn[] | { error: string } {
  const r = libpcap().compile(t.linkType, t.snaplen ?? SNAPLEN, expression, NETMASK_UNKNOWN);
  return 'error' in r ? r : r.insns;
}

/** Compiles for one link type; throws FilterTooLarge past MAX_TERMS, FilterSyntaxError with libpcap's message. */
export function compilePcap(expression: string, target: PcapTarget): CbpfInsn[] {
  // libpcap's optimiser takes time that grows faster than the expression: bounded before it starts.
  const terms = countTerms(expression);
  if (terms > MAX_TERMS) {
    throw new FilterTooLarge(`${target.label}: ${terms} terms; pktpath compiles at most ${MAX_TERMS} (joined by and/or), ` +
      `and far fewer fit in a probe: ${NARROW}`);
  }
  const r = compileRaw(expression, target);
  if ('error' in r) throw new FilterSyntaxError(`${target.label} '${expression}': ${r.error}${locate(expression, r.error)}`);
  return r;
}

/** An expression for packets with a link-layer header (`l2`) and without (`l3`). */
export interface L2L3Programs {
  l2: CbpfInsn[];
  /** Null when libpcap refuses it without one (arp, ether host …); `l3Refusal` says why. */
  l3: CbpfInsn[] | null;
  l3Refusal: string | null;
}

/**
 * Compiles for both link types: refused with an Ethernet header, the
 * expression is an error; refused without one only, it matches nothing where
 * packets have none.
 */
export function compileL2L3(expression: string, label: string): L2L3Programs {
  const l2 = compilePcap(expression, { label, linkType: LinkType.ETHERNET });
  const l3 = compileRaw(expression, { label, linkType: LinkType.RAW });
  return 'error' in l3 ? { l2, l3: null, l3Refusal: l3.error } : { l2, l3, l3Refusal: null };
}

/** A probe's region for a filter: what it is for and how many eBPF instructions it holds. */
export interface ProbeRegion {
  label: string;
  room: number;
}

/**
 * Classic programs of one expression translated for a probe's region, in
 * each way asked for; FilterTooLarge when the longest does not fit.
 */
export function translateForRegion<M extends PacketLoads>(expression: string, programs: readonly CbpfInsn[][], region: ProbeRegion,
  loads: readonly M[]): Array<Record<M, EbpfInsn[]>> {
  let out: Array<Record<M, EbpfInsn[]>>;
  try {
    out = programs.map((p) => Object.fromEntries(loads.map((l) => [l, translate(p, l)])) as Record<M, EbpfInsn[]>);
  } catch (e) {
    if (e instanceof TranslateError) throw new FilterSyntaxError(`${region.label} '${expression}': ${e.message}`);
    throw e;
  }
  const size = Math.max(...out.flatMap((o) => loads.map((l) => o[l].length)));
  if (size > region.room) {
    throw new FilterTooLarge(`${region.label}: it needs ${size} eBPF instructions; the probes have room for ${region.room}: ${NARROW}`);
  }
  return out;
}

/** Runs a classic program on a packet with libpcap's interpreter: the verdict tcpdump would give. */
export function pcapVerdict(program: CbpfInsn[], packet: Uint8Array, wireLen = packet.length): number {
  return libpcap().filter(program, packet, wireLen);
}
