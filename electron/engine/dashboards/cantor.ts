/**
 * Cantor pairing of (layer, feature index): circuit-tracer names feature files and graph
 * nodes' `feature` field with it (`(l + f)(l + f + 1)/2 + f`), and its frontend inverts it.
 */
export function cantorPair(layer: number, index: number): number {
  const s = layer + index;
  return (s * (s + 1)) / 2 + index;
}

export function cantorUnpair(z: number): { layer: number; index: number } {
  let w = Math.floor((Math.sqrt(8 * z + 1) - 1) / 2);
  // guard float rounding for large z
  while ((w * (w + 1)) / 2 > z) w--;
  while (((w + 1) * (w + 2)) / 2 <= z) w++;
  const index = z - (w * (w + 1)) / 2;
  return { layer: w - index, index };
}
