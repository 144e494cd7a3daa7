/**
 * The kernel's clock → the wall clock. The probes stamp records with
 * bpf_ktime_get_ns (CLOCK_MONOTONIC); a record's `time` is that plus the
 * wall clock's lead over it, read once as the trace starts. Read as two
 * separate clocks at two moments (the process's start time and a monotonic
 * reading), two pktpath processes disagreed by tens of µs; here the wall
 * clock is read between two monotonic readings, several times, and the
 * narrowest bracket is kept: its middle is the instant, half its width the
 * uncertainty (well under a µs on a quiet machine). The header carries it.
 */
import { c } from '../bpf/native/libc.js';
import type { JsonClock } from '../output/json.js';
import { formatTime } from '../output/format.js';

const CLOCK_REALTIME = 0;

export interface ClockAnchor {
  /** One instant on the kernel's clock (CLOCK_MONOTONIC) and on the wall clock, ns. */
  monoNs: bigint;
  wallNs: bigint;
  /** How far apart the two readings may be, ns. */
  uncertaintyNs: number;
}

/** One reading: monotonic before, wall clock, monotonic after. */
export type Bracket = readonly [before: bigint, wall: bigint, after: bigint];

/** The narrowest bracket's instant on both clocks; the first of equals. */
export function tightestBracket(readings: readonly Bracket[]): ClockAnchor {
  let best: Bracket | null = null;
  for (const r of readings) if (r[2] >= r[0] && (best === null || r[2] - r[0] < best[2] - best[0])) best = r;
  if (best === null) throw new Error('clock: no reading where the monotonic clock went forward');
  const width = best[2] - best[0];
  return { monoNs: best[0] + width / 2n, wallNs: best[1], uncertaintyNs: Number((width + 1n) / 2n) };
}

const ts = Buffer.alloc(16);
function wallNow(): bigint {
  if (c.clock_gettime(CLOCK_REALTIME, ts) !== 0) throw new Error('clock_gettime(CLOCK_REALTIME) failed');
  return ts.readBigInt64LE(0) * 1_000_000_000n + ts.readBigInt64LE(8);
}

/** Reads the two clocks `samples` times (the first readings warm the calls up) and keeps the narrowest bracket. */
export function readClockAnchor(samples = 24): ClockAnchor {
  const readings: Bracket[] = [];
  for (let i = 0; i < samples; i++) {
    // libuv's hrtime is CLOCK_MONOTONIC, read without a foreign call: the bracket is the wall clock's one call.
    const before = process.hrtime.bigint();
    const wall = wallNow();
    readings.push([before, wall, process.hrtime.bigint()]);
  }
  return tightestBracket(readings);
}

/** The header's `clock`. */
export function clockJson(a: ClockAnchor): JsonClock {
  return { kernel: 'monotonic', kernel_ns: a.monoNs.toString(), time: formatTime(a.wallNs), uncertainty_ns: a.uncertaintyNs };
}
