/**
 * Which edges a big graph draws at rest: the `budget` strongest by |weight| (the rest come on
 * demand: a hovered, selected or pinned node's links). Selection by a threshold: the
 * budget-th largest |weight|, found by quickselect on a copy (O(E); a full typed-array sort
 * of 1M weights took ~0.1 s), ties broken by index.
 */
export function strongestEdges(weight: ArrayLike<number>, budget: number): Uint8Array {
  const E = weight.length;
  const keep = new Uint8Array(E);
  if (budget >= E) return keep.fill(1);
  if (budget <= 0) return keep;
  const abs = new Float32Array(E);
  for (let e = 0; e < E; e++) abs[e] = Math.abs(weight[e]);
  const cut = kthSmallest(abs.slice(), E - budget);
  let above = 0;
  for (let e = 0; e < E; e++) if (abs[e] > cut) above++;
  let ties = budget - above;
  for (let e = 0; e < E; e++) {
    if (abs[e] > cut) keep[e] = 1;
    else if (abs[e] === cut && ties > 0) {
      keep[e] = 1;
      ties--;
    }
  }
  return keep;
}

/** The value at index k of `a` sorted ascending (reorders `a`; no NaN expected). */
export function kthSmallest(a: Float32Array, k: number): number {
  let lo = 0;
  let hi = a.length - 1;
  while (lo < hi) {
    // Median of three as the pivot: sorted or constant runs stay O(n).
    const mid = (lo + hi) >>> 1;
    const x = a[lo];
    const y = a[mid];
    const z = a[hi];
    const pivot = Math.max(Math.min(x, y), Math.min(Math.max(x, y), z));
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (a[i] < pivot) i++;
      while (a[j] > pivot) j--;
      if (i <= j) {
        const t = a[i];
        a[i] = a[j];
        a[j] = t;
        i++;
        j--;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return a[k];
  }
  return a[k];
}
