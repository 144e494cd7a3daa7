/**
 * TraceConfig: what the user asked for, validated. Everything here is pure;
 * each bad value becomes a UsageError with a one-line message before anything
 * touches the kernel.
 */
import { parseAddress } from '../decode/addr.js';
import { type FlagFilter, combineExpression } from '../filter/expression.js';
import { type OutputFileOptions, type RawOutputFileOptions, parseOutputFileOptions } from './output-options.js';

export interface Addr {
  l3: 4 | 6;
  bytes: Uint8Array;
  text: string;
}

export type TimestampMode = 'none' | 'current' | 'relative' | 'absolute';
export type ColorMode = 'auto' | 'always' | 'never';
export type Family = 'tracepoints' | 'tc' | 'netfilter' | 'funcs';
export const FAMILIES: readonly Family[] = ['tracepoints', 'tc', 'netfilter', 'funcs'];
export type Backend = 'auto' | 'tracepoint' | 'kprobe' | 'kprobe-multi' | 'fentry';
export const BACKENDS: readonly Backend[] = ['auto', 'tracepoint', 'kprobe', 'kprobe-multi', 'fentry'];

export interface OutputConfig {
  tuple: boolean;
  meta: boolean;
  stack: boolean;
  caller: boolean;
  tcpFlags: boolean;
  /** --output-ct: conntrack state in text lines (JSON carries it whenever known). */
  ct: boolean;
  json: boolean;
  file: string | null;
  limitLines: number;
  timestamp: TimestampMode;
  color: ColorMode;
  /** Rotation, pcapng, grouping. */
  files: OutputFileOptions;
}

export interface FilterConfig {
  /** tcpdump expression (the user's, ANDed with the classic flags'); '' for none. */
  expression: string;
  /** --filter-netns as given: a path, a name under /run/netns, or inode:N. */
  netns: string | null;
  /** --filter-ifname, resolved in that namespace (or pktpath's own). */
  ifname: string | null;
  mark: { value: number; mask: number } | null;
  trackSkb: boolean;
}

export interface TraceConfig {
  filter: FilterConfig;
  output: OutputConfig;
  families: Set<Family>;
  backend: Backend;
  /** Which observation points to attach (full-name match). */
  filterFunc: RegExp | null;
  /** Ring buffer size in bytes (power of two). */
  ringSize: number;
  /** Stop after this many seconds (0: until a signal). */
  duration: number;
}

export class UsageError extends Error {
  override name = 'UsageError';
}

export function parseIp(flag: string, text: string): Addr {
  const a = parseAddress(text.trim());
  if (!a) throw new UsageError(`${flag}: '${text}' is not an IPv4 or IPv6 address`);
  return { ...a, text: text.trim() };
}

export const PROTOCOLS: Record<string, number> = { icmp: 1, tcp: 6, udp: 17, icmp6: 58, sctp: 132 };

export function parseProto(text: string): number {
  const t = text.trim().toLowerCase();
  if (t in PROTOCOLS) return PROTOCOLS[t]!;
  if (/^\d+$/.test(t) && Number(t) <= 255) return Number(t);
  throw new UsageError(`--filter-proto: '${text}' is not a protocol (tcp, udp, icmp, icmp6, sctp or 0-255)`);
}

export function parsePort(flag: string, text: string): number {
  const t = text.trim();
  if (!/^\d+$/.test(t) || Number(t) < 1 || Number(t) > 65535) {
    throw new UsageError(`${flag}: '${text}' is not a port (1-65535)`);
  }
  return Number(t);
}

export function parseCount(flag: string, text: string): number {
  const t = text.trim();
  if (!/^\d+$/.test(t)) throw new UsageError(`${flag}: '${text}' is not a non-negative whole number`);
  return Number(t);
}

/** Sizes like 16M, 512K, 1G, or bytes; rounded up to a power of two of at least one page. */
export function parseSize(flag: string, text: string): number {
  const m = /^(\d+)([kmg]i?b?)?$/i.exec(text.trim());
  if (!m) throw new UsageError(`${flag}: '${text}' is not a size (e.g. 16M)`);
  const unit = (m[2] ?? '').toLowerCase()[0];
  const mult = unit === 'k' ? 1 << 10 : unit === 'm' ? 1 << 20 : unit === 'g' ? 1 << 30 : 1;
  const bytes = Number(m[1]) * mult;
  if (bytes < 4096 || bytes > 1 << 30) throw new UsageError(`${flag}: ${text} is out of range (4K-1G)`);
  let size = 4096;
  while (size < bytes) size *= 2;
  return size;
}

export function parseChoice<T extends string>(flag: string, text: string, choices: readonly T[]): T {
  if ((choices as readonly string[]).includes(text)) return text as T;
  throw new UsageError(`${flag}: '${text}' is not one of ${choices.join(', ')}`);
}

export function parseFamilies(text: string): Set<Family> {
  const out = new Set<Family>();
  for (const part of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    out.add(parseChoice('--attach', part, FAMILIES));
  }
  if (out.size === 0) throw new UsageError('--attach: name at least one of ' + FAMILIES.join(', '));
  return out;
}

export function parseRegex(flag: string, text: string): RegExp {
  try {
    return new RegExp(`^(?:${text})$`);
  } catch (e) {
    throw new UsageError(`${flag}: '${text}' is not a regular expression: ${(e as Error).message}`);
  }
}

/** Raw option values as commander hands them over. */
export interface RawOptions extends RawOutputFileOptions {
  filterSrcIp?: string;
  filterDstIp?: string;
  filterIp?: string;
  filterProto?: string;
  filterSrcPort?: string;
  filterDstPort?: string;
  filterPort?: string;
  filterFunc?: string;
  filterNetns?: string;
  filterIfname?: string;
  filterMark?: string;
  filterTrackSkb?: boolean;
  outputTuple?: boolean;
  outputMeta?: boolean;
  outputStack?: boolean;
  outputCaller?: boolean;
  outputTcpFlags?: boolean;
  outputCt?: boolean;
  outputJson?: boolean;
  outputFile?: string;
  outputLimitLines?: string;
  timestamp?: string;
  color?: string;
  backend?: string;
  attach?: string;
  ringSize?: string;
  duration?: string;
}

/** VALUE or VALUE/MASK, decimal or 0x-hex, 32 bits. */
export function parseMark(text: string): { value: number; mask: number } {
  const m = /^\s*(0x[0-9a-f]+|\d+)\s*(?:\/\s*(0x[0-9a-f]+|\d+)\s*)?$/i.exec(text);
  const num = (t: string) => (t.toLowerCase().startsWith('0x') ? parseInt(t, 16) : Number(t));
  if (!m || num(m[1]!) > 0xffffffff || (m[2] !== undefined && num(m[2]) > 0xffffffff)) {
    throw new UsageError(`--filter-mark: '${text}' is not VALUE[/MASK] (32-bit numbers, e.g. 0x10/0xff)`);
  }
  const mask = m[2] !== undefined ? num(m[2]) : 0xffffffff;
  return { value: (num(m[1]!) & mask) >>> 0, mask: mask >>> 0 };
}

export function buildConfig(o: RawOptions, expression: string[]): TraceConfig {
  const filter: FlagFilter = {};
  if (o.filterSrcIp !== undefined) filter.srcIp = parseIp('--filter-src-ip', o.filterSrcIp);
  if (o.filterDstIp !== undefined) filter.dstIp = parseIp('--filter-dst-ip', o.filterDstIp);
  if (o.filterIp !== undefined) filter.ip = parseIp('--filter-ip', o.filterIp);
  if (o.filterProto !== undefined) filter.proto = parseProto(o.filterProto);
  if (o.filterSrcPort !== undefined) filter.srcPort = parsePort('--filter-src-port', o.filterSrcPort);
  if (o.filterDstPort !== undefined) filter.dstPort = parsePort('--filter-dst-port', o.filterDstPort);
  if (o.filterPort !== undefined) filter.port = parsePort('--filter-port', o.filterPort);
  const l3s = [filter.srcIp, filter.dstIp, filter.ip].filter(Boolean).map((a) => a!.l3);
  if (new Set(l3s).size > 1) throw new UsageError('the address filters mix IPv4 and IPv6: no packet can match');
  if ((filter.srcPort || filter.dstPort || filter.port) && filter.proto !== undefined &&
      ![6, 17, 132].includes(filter.proto)) {
    throw new UsageError('port filters need a protocol with ports (tcp, udp, sctp)');
  }

  const output: OutputConfig = {
    tuple: !!o.outputTuple,
    meta: !!o.outputMeta,
    stack: !!o.outputStack,
    caller: !!o.outputCaller,
    tcpFlags: !!o.outputTcpFlags,
    ct: !!o.outputCt,
    json: !!o.outputJson,
    file: o.outputFile ?? null,
    limitLines: o.outputLimitLines !== undefined ? parseCount('--output-limit-lines', o.outputLimitLines) : 0,
    timestamp: parseChoice('--timestamp', o.timestamp ?? 'none', ['none', 'current', 'relative', 'absolute'] as const),
    color: parseChoice('--color', o.color ?? 'auto', ['auto', 'always', 'never'] as const),
    files: parseOutputFileOptions(o),
  };
  if (output.file !== null && output.file.trim() === '') throw new UsageError('--output-file: the path is empty');

  if (o.filterIfname !== undefined && !/^[^\s/]{1,15}$/.test(o.filterIfname)) {
    throw new UsageError(`--filter-ifname: '${o.filterIfname}' is not an interface name`);
  }
  if (o.filterNetns !== undefined && o.filterNetns.trim() === '') throw new UsageError('--filter-netns: empty');

  return {
    filter: {
      expression: combineExpression(expression, filter),
      netns: o.filterNetns?.trim() ?? null,
      ifname: o.filterIfname ?? null,
      mark: o.filterMark !== undefined ? parseMark(o.filterMark) : null,
      trackSkb: !!o.filterTrackSkb,
    },
    output,
    families: parseFamilies(o.attach ?? 'tracepoints,tc,netfilter,funcs'),
    backend: parseChoice('--backend', o.backend ?? 'auto', BACKENDS),
    filterFunc: o.filterFunc !== undefined ? parseRegex('--filter-func', o.filterFunc) : null,
    ringSize: parseSize('--ring-size', o.ringSize ?? '16M'),
    duration: o.duration !== undefined ? parseCount('--duration', o.duration) : 0,
  };
}
