/** Names people type: the closest known one, for "did you mean" in errors. */

/** The closest of `known` to `name` when it is close enough to be a typo; null otherwise. */
export function didYouMean(name: string, known: Iterable<string>): string | null {
  let best: string | null = null;
  let bestDist = Infinity;
  for (const k of known) {
    const d = editDistance(name, k);
    if (d < bestDist) {
      bestDist = d;
      best = k;
    }
  }
  return best !== null && bestDist <= Math.max(2, Math.floor(name.length / 4)) ? best : null;
}

/** Levenshtein distance. */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}
