/**
 * Parsers of the values users type on the command line. Pure; each bad value
 * is a UsageError with one line naming the flag, before anything touches the kernel.
 */
import { type Addr, parseAddress } from '../decode/addr.js';
import { protocolNumber } from '../decode/protocols.js';
import { linearRegExp } from '../regress/patterns.js';
import { escapeText } from '../output/escape.js';

/** The user's input is wrong: one line, exit 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

export function parseIp(flag: string, text: string): Addr {
  const a = parseAddress(text.trim());
  if (!a) throw new UsageError(`${flag}: '${text}' is not an IPv4 or IPv6 address`);
  return { ...a, text: text.trim() };
}

/** A protocol name (tcp, udp, icmp, icmp6, sctp) or number. */
export function parseProto(flag: string, text: string): number {
  const t = text.trim().toLowerCase();
  const named = protocolNumber(t);
  if (named !== undefined) return named;
  if (/^\d+$/.test(t) && Number(t) <= 255) return Number(t);
  throw new UsageError(`${flag}: '${text}' is not a protocol (tcp, udp, icmp, icmp6, sctp or 0-255)`);
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

export function parseRange(flag: string, text: string, min: number, max: number): number {
  const n = parseCount(flag, text);
  if (n < min || n > max) throw new UsageError(`${flag}: '${text}' is out of range (${min}-${max})`);
  return n;
}

const UNITS: Record<string, number> = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 };

/**
 * The one size grammar: bytes, or a number with K, M, G or T (powers of 1024;
 * `KiB`, `kb` and `k` alike), e.g. `100M`, `1.5G`.
 */
export function parseByteSize(flag: string, text: string, example = '100M'): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?$/i.exec(text.trim());
  if (!m) throw new UsageError(`${flag}: '${text}' is not a size (e.g. ${example})`);
  const bytes = Math.floor(Number(m[1]) * UNITS[m[2]!.toLowerCase()]!);
  if (bytes < 1) throw new UsageError(`${flag}: '${text}' is less than 1 byte`);
  if (!Number.isSafeInteger(bytes)) throw new UsageError(`${flag}: '${text}' is too large`);
  return bytes;
}

/** A ring buffer size: 4K to 1G, rounded up to a power of two (what the kernel takes). */
export function parseRingSize(flag: string, text: string): number {
  const bytes = parseByteSize(flag, text, '16M');
  if (bytes < 4096 || bytes > 2 ** 30) throw new UsageError(`${flag}: ${text} is out of range (4K-1G)`);
  let size = 4096;
  while (size < bytes) size *= 2;
  return size;
}

export function parseChoice<T extends string>(flag: string, text: string, choices: readonly T[]): T {
  if ((choices as readonly string[]).includes(text)) return text as T;
  throw new UsageError(`${flag}: '${text}' is not one of ${choices.join(', ')}`);
}

/** A comma-separated list of choices, at least one. */
export function parseChoices<T extends string>(flag: string, text: string, choices: readonly T[]): Set<T> {
  const out = new Set<T>();
  for (const part of text.split(',').map((s) => s.trim()).filter(Boolean)) out.add(parseChoice(flag, part, choices));
  if (out.size === 0) throw new UsageError(`${flag}: name at least one of ${choices.join(', ')}`);
  return out;
}

/** Kernel module names, comma-separated, at least one (as /sys/module names them: letters, digits, _ and -). */
export function parseModules(flag: string, text: string): string[] {
  const out = [...new Set(text.split(',').map((s) => s.trim()).filter(Boolean))];
  if (out.length === 0) throw new UsageError(`${flag}: name at least one kernel module (e.g. nf_conntrack,vxlan)`);
  const bad = out.find((m) => !/^[A-Za-z0-9_-]{1,55}$/.test(m));
  if (bad !== undefined) throw new UsageError(`${flag}: '${escapeText(bad)}' is not a kernel module's name (letters, digits, _ and -)`);
  return out.map((m) => m.replace(/-/g, '_'));
}

/** --filter-non-skb-funcs: kernel function names, comma-separated (pwru's list; repeatable here). */
export function parseFunctionNames(flag: string, given: string | string[]): string[] {
  const out = [...new Set([given].flat().flatMap((t) => t.split(',')).map((s) => s.trim()).filter(Boolean))];
  if (out.length === 0) throw new UsageError(`${flag}: name at least one kernel function (e.g. fib_validate_source)`);
  const bad = out.find((f) => !/^[A-Za-z_][A-Za-z0-9_.]{0,127}$/.test(f));
  if (bad !== undefined) throw new UsageError(`${flag}: '${escapeText(bad)}' is not a kernel function's name (letters, digits, _ and .)`);
  return out;
}

/**
 * A regular expression matched against whole names (`anchored`), or found anywhere in them, as pwru's
 * --filter-func; in time linear in the name (src/regress/patterns.ts), as the names may come from a trace.
 */
export function parseRegex(flag: string, text: string, anchored = true): RegExp {
  try {
    return linearRegExp(text, anchored);
  } catch (e) {
    throw new UsageError(`${flag}: '${text}' ${(e as Error).message}`);
  }
}

/** VALUE or VALUE/MASK, decimal or 0x-hex, 32 bits. */
export function parseMark(flag: string, text: string): { value: number; mask: number } {
  const m = /^\s*(0x[0-9a-f]+|\d+)\s*(?:\/\s*(0x[0-9a-f]+|\d+)\s*)?$/i.exec(text);
  const num = (t: string) => (t.toLowerCase().startsWith('0x') ? parseInt(t, 16) : Number(t));
  if (!m || num(m[1]!) > 0xffffffff || (m[2] !== undefined && num(m[2]) > 0xffffffff)) {
    throw new UsageError(`${flag}: '${text}' is not VALUE[/MASK] (32-bit numbers, e.g. 0x10/0xff)`);
  }
  const mask = m[2] !== undefined ? num(m[2]) : 0xffffffff;
  return { value: (num(m[1]!) & mask) >>> 0, mask: mask >>> 0 };
}
