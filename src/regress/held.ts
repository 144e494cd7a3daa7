/**
 * What normalize, diff and assert hold of one trace at once, bounded: a
 * trace's distinct paths (normalize, diff: a flow is aligned as a whole, and
 * the normalised form is sorted) and every journey (assert: an expectation
 * counts them all). Past the bound the command stops at that line, exit 2,
 * rather than exhausting the heap minutes later. docs/REGRESS.md names it.
 */
import type { Ending } from './journey-shapes.js';

/**
 * The most held of one trace, in bytes of the paths' normalised JSON (as
 * pathBytes counts them). diff holds two traces and its changes: two traces
 * of 120 MiB whose every hop differs took 2.7 GB, within Node's default
 * heap of 4 GiB; two equal ones of 120 MiB, 1.1 GB.
 */
export const HELD_LIMIT_MIB = 128;
const HELD_LIMIT = HELD_LIMIT_MIB * 2 ** 20;

/** A hop raw or normalised: the text it carries. */
interface HeldHop {
  at: string;
  netns: string;
  iface: string;
  ct?: string;
  nat?: string;
  nft?: string;
  verdict?: string | { by: readonly string[] };
}

/** A string's length; 0 for anything else (a normalised trace is read with its fields unchecked). */
const len = (s: unknown) => (typeof s === 'string' ? s.length : 0);

/** About the bytes of a path's normalised JSON line: its text and the syntax around it. */
export function pathBytes(hops: readonly HeldHop[], end: Ending, ...more: unknown[]): number {
  let n = 96 + len(end.reason) + len(end.netns) + len(end.iface) + len(end.by) + more.reduce<number>((s, m) => s + len(m), 0);
  for (const h of hops) {
    n += 32 + len(h.at) + len(h.netns) + len(h.iface) + len(h.ct) + len(h.nat) + len(h.nft);
    if (typeof h.verdict === 'string') n += h.verdict.length;
    else if (h.verdict) n += 64 + h.verdict.by.reduce((s, b) => s + len(b) + 2, 0);
  }
  return n;
}

/** Bytes held of one trace, and what they are, for the line that says the bound was passed. */
export class Held {
  bytes = 0;

  constructor(private readonly what: string) {}

  /** Why reading stops here, or null while within the bound. */
  over(): string | null {
    return this.bytes > HELD_LIMIT
      ? `${this.what} pass ${HELD_LIMIT_MIB} MiB (as normalised JSON), the most pktpath holds of a trace (docs/REGRESS.md)`
      : null;
  }
}
