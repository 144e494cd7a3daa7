/**
 * Clock offsets per node, NTP-style, from paired packets: a packet cannot
 * arrive before it left, so a pair sent by A at a and received by B at b
 * says offset(A) − offset(B) ≤ b − a. Pairs in both directions bound the
 * difference from both sides; chains through other nodes bound it too (the
 * tightest bounds are shortest paths over these difference constraints,
 * Bellman-Ford from the reference node). Each node's offset is the middle of
 * its bounds, its uncertainty half their width; with one side unbounded the
 * offset is the least correction that orders its pairs (0 when they already
 * are) and the uncertainty unknown (null); with no pair at all, 0 and null. No
 * assumption that clocks agree.
 */

/** The tightest bound per ordered pair of nodes: offset(from) − offset(to) ≤ bound. */
export class OffsetBounds {
  /** `${from},${to}` → the least (arrival − departure) seen. */
  private readonly tightest = new Map<string, { from: number; to: number; c: number }>();
  readonly pairsOf: number[];

  constructor(readonly nodes: number) {
    this.pairsOf = new Array<number>(nodes).fill(0);
  }

  /** A packet sent by `from` at `depT` and received by `to` at `arrT`, each on its own clock (ns). */
  add(from: number, to: number, depT: number, arrT: number): void {
    this.pairsOf[from]!++;
    this.pairsOf[to]!++;
    const k = `${from},${to}`;
    const c = arrT - depT;
    const was = this.tightest.get(k);
    if (was === undefined || c < was.c) this.tightest.set(k, { from, to, c });
  }

  get constraints(): Array<{ from: number; to: number; c: number }> {
    return [...this.tightest.values()];
  }
}

export interface NodeOffset {
  /** Added to the node's times, ns. */
  offsetNs: number;
  /** Half the width of its bounds, ns; null when a side is unbounded. */
  uncertaintyNs: number | null;
  /** Its bounds were inconsistent (a clock stepped during the trace, or a pair was wrong): the offset is their middle all the same. */
  inconsistent: boolean;
}

/** Shortest distances from `src` over edges u→v of weight w (Bellman-Ford; Infinity where unreachable, -Infinity on a negative cycle). */
function shortest(n: number, src: number, edges: ReadonlyArray<{ u: number; v: number; w: number }>): number[] {
  const d = new Array<number>(n).fill(Infinity);
  d[src] = 0;
  for (let i = 0; i < n; i++) {
    let changed = false;
    for (const { u, v, w } of edges) {
      if (d[u]! + w < d[v]!) {
        d[v] = d[u]! + w;
        changed = true;
      }
    }
    if (!changed) return d;
  }
  // Still relaxing after n rounds: what a negative cycle reaches has no shortest path.
  for (const { u, v, w } of edges) if (d[u]! + w < d[v]!) d[v] = -Infinity;
  return d;
}

/**
 * Each node's offset relative to `reference` (whose offset is 0): with
 * x = offset(node) − offset(reference), a constraint x_from − x_to ≤ c is an
 * edge to → from of weight c; x's upper bound is the shortest path from the
 * reference, its lower bound minus the shortest path back.
 */
export function solveOffsets(bounds: OffsetBounds, reference: number): NodeOffset[] {
  const n = bounds.nodes;
  const cs = bounds.constraints;
  const upper = shortest(n, reference, cs.map(({ from, to, c }) => ({ u: to, v: from, w: c })));
  const back = shortest(n, reference, cs.map(({ from, to, c }) => ({ u: from, v: to, w: c })));
  return upper.map((hi, i) => {
    if (i === reference) return { offsetNs: 0, uncertaintyNs: 0, inconsistent: false };
    const lo = -back[i]!;
    // A negative cycle (pairs that contradict each other) leaves a bound at the wrong infinity.
    const inconsistent = hi === -Infinity || lo === Infinity || lo > hi;
    const loKnown = Number.isFinite(lo);
    const hiKnown = Number.isFinite(hi);
    if (loKnown && hiKnown) return { offsetNs: Math.round((lo + hi) / 2), uncertaintyNs: inconsistent ? null : Math.ceil((hi - lo) / 2), inconsistent };
    // One side bounded: the least correction within it (none, when the clocks already order the pairs).
    if (loKnown) return { offsetNs: Math.max(0, lo), uncertaintyNs: null, inconsistent };
    if (hiKnown) return { offsetNs: Math.min(0, hi), uncertaintyNs: null, inconsistent };
    return { offsetNs: 0, uncertaintyNs: null, inconsistent };
  });
}
