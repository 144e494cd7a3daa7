/**
 * Two lists aligned by a key: the pairs of indices of a common subsequence,
 * as `diff` takes them for a flow's paths and a packet's hops. The longest
 * one while its table of lengths is small; past that, in time near linear in
 * the lists, whatever a trace holds.
 */

/**
 * The largest table of common-subsequence lengths built, in cells (rows ×
 * columns left to align). n·m ≤ 4M means √(n·m) ≤ 2,000, so the table costs
 * at most 1,000 cells per element (n·m = √(n·m)² ≤ 2,000·(n+m)/2), and its
 * lengths fit 16 bits (at most 16 MiB, for one row of 4M columns).
 */
export const TABLE_CELLS = 4_000_000;

type Pairs = Array<[number, number]>;

/** Pairs of indices of a common subsequence by key, in order: a longest one while the table fits. */
export function align<T>(a: readonly T[], b: readonly T[], key: (x: T) => string): Pairs {
  // Keys as small integers, compared in one step; b's first, so that a's keys b lacks get none.
  const ids = new Map<string, number>();
  const kb = b.map((x) => {
    const k = key(x);
    let id = ids.get(k);
    if (id === undefined) ids.set(k, (id = ids.size));
    return id;
  });
  // An element of a whose key b lacks is in no common subsequence, and its row of the table equals the
  // next one: the table's walk steps over it and no other choice changes, so it is left out. (Not so
  // for b's: where lengths tie, the walk skips a's element first, and a b-only column decides ties.)
  const rows: number[] = [];
  const ka: number[] = [];
  for (let i = 0; i < a.length; i++) {
    const id = ids.get(key(a[i]!));
    if (id === undefined) continue;
    rows.push(i);
    ka.push(id);
  }
  const pairs: Pairs = [];
  alignRange(ka, 0, ka.length, kb, 0, kb.length, pairs, true);
  for (const p of pairs) p[0] = rows[p[0]]!;
  return pairs;
}

/**
 * Aligns ka[a0, a1) with kb[b0, b1), appending to `pairs`: a common start
 * first (the table's walk pairs it too), then the table where it fits, else
 * anchors (once, `anchor`) or the first match ahead.
 */
function alignRange(ka: readonly number[], a0: number, a1: number, kb: readonly number[], b0: number, b1: number, pairs: Pairs, anchor: boolean): void {
  while (a0 < a1 && b0 < b1 && ka[a0] === kb[b0]) pairs.push([a0++, b0++]);
  if ((a1 - a0) * (b1 - b0) <= TABLE_CELLS) fromTable(ka, a0, a1, kb, b0, b1, pairs);
  else if (anchor) anchored(ka, a0, a1, kb, b0, b1, pairs);
  else firstAhead(ka, a0, a1, kb, b0, b1, pairs);
}

/** A longest common subsequence from the table of lengths; where lengths tie, a's element is skipped first. */
function fromTable(ka: readonly number[], a0: number, a1: number, kb: readonly number[], b0: number, b1: number, pairs: Pairs): void {
  const n = a1 - a0;
  const m = b1 - b0;
  if (n === 0 || m === 0) return;
  const w = m + 1;
  const len = new Uint16Array((n + 1) * w);
  for (let i = n - 1; i >= 0; i--) {
    const x = ka[a0 + i];
    for (let j = m - 1, c = i * w + j; j >= 0; j--, c--) {
      len[c] = x === kb[b0 + j] ? len[c + w + 1]! + 1 : Math.max(len[c + w]!, len[c + 1]!);
    }
  }
  for (let i = 0, j = 0; i < n && j < m;) {
    if (ka[a0 + i] === kb[b0 + j]) pairs.push([a0 + i++, b0 + j++]);
    else if (len[(i + 1) * w + j]! >= len[i * w + j + 1]!) i++;
    else j++;
  }
}

/**
 * Past the table: the keys found once on each side are anchors (as patience
 * diff takes them), the longest run of them in the same order on both sides
 * is kept, and what lies between two anchors is aligned on its own.
 */
function anchored(ka: readonly number[], a0: number, a1: number, kb: readonly number[], b0: number, b1: number, pairs: Pairs): void {
  const countA = new Map<number, number>();
  const inB = new Map<number, number>();
  for (let i = a0; i < a1; i++) countA.set(ka[i]!, (countA.get(ka[i]!) ?? 0) + 1);
  // A key seen twice in b is marked -1.
  for (let j = b0; j < b1; j++) inB.set(kb[j]!, inB.has(kb[j]!) ? -1 : j);
  const ai: number[] = [];
  const bj: number[] = [];
  for (let i = a0; i < a1; i++) {
    const at = inB.get(ka[i]!);
    if (countA.get(ka[i]!) === 1 && at !== undefined && at >= 0) {
      ai.push(i);
      bj.push(at);
    }
  }
  let i = a0;
  let j = b0;
  for (const x of longestIncreasing(bj)) {
    alignRange(ka, i, ai[x]!, kb, j, bj[x]!, pairs, false);
    pairs.push([ai[x]!, bj[x]!]);
    i = ai[x]! + 1;
    j = bj[x]! + 1;
  }
  alignRange(ka, i, a1, kb, j, b1, pairs, false);
}

/** Indices of a longest strictly increasing run of `v` (patience sorting: n log n). */
function longestIncreasing(v: readonly number[]): number[] {
  const tails: number[] = [];
  const prev = new Int32Array(v.length);
  for (let x = 0; x < v.length; x++) {
    let lo = 0;
    let hi = tails.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (v[tails[mid]!]! < v[x]!) lo = mid + 1;
      else hi = mid;
    }
    prev[x] = lo > 0 ? tails[lo - 1]! : -1;
    tails[lo] = x;
  }
  const out = new Array<number>(tails.length);
  for (let x = tails.length > 0 ? tails[tails.length - 1]! : -1, k = tails.length - 1; x >= 0; x = prev[x]!, k--) out[k] = x;
  return out;
}

/** Each of a's elements in turn paired with the first of its key ahead in b: linear, each key's positions passed once. */
function firstAhead(ka: readonly number[], a0: number, a1: number, kb: readonly number[], b0: number, b1: number, pairs: Pairs): void {
  const positions = new Map<number, { at: number[]; next: number }>();
  for (let j = b0; j < b1; j++) {
    const p = positions.get(kb[j]!);
    if (p) p.at.push(j);
    else positions.set(kb[j]!, { at: [j], next: 0 });
  }
  let j = b0;
  for (let i = a0; i < a1 && j < b1; i++) {
    const p = positions.get(ka[i]!);
    if (!p) continue;
    while (p.next < p.at.length && p.at[p.next]! < j) p.next++;
    if (p.next === p.at.length) continue;
    j = p.at[p.next++]! + 1;
    pairs.push([i, j - 1]);
  }
}
