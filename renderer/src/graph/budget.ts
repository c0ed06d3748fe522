/**
 * Which edges a big graph draws at rest: the `budget` strongest by |weight| (the rest come on
 * demand: a hovered, selected or pinned node's links). Selection by a threshold found on a
 * sorted copy of |weight| (typed-array sort: ~0.1 s for 1M), ties broken by index.
 */
export function strongestEdges(weight: ArrayLike<number>, budget: number): Uint8Array {
  const E = weight.length;
  const keep = new Uint8Array(E);
  if (budget >= E) return keep.fill(1);
  if (budget <= 0) return keep;
  const abs = new Float32Array(E);
  for (let e = 0; e < E; e++) abs[e] = Math.abs(weight[e]);
  const sorted = abs.slice().sort();
  const cut = sorted[E - budget];
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
