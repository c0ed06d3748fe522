/** Next-token distribution at the last position, softmax accumulated in float64. */
export interface TopToken {
  tokenId: number;
  logit: number;
  prob: number;
}

export function topNextTokens(logits: Float32Array, T: number, vocab: number, k: number): TopToken[] {
  const row = logits.subarray((T - 1) * vocab, T * vocab);
  let max = Number.NEGATIVE_INFINITY;
  for (const v of row) if (v > max) max = v;
  let sum = 0;
  for (const v of row) sum += Math.exp(v - max);
  const order = Array.from({ length: vocab }, (_, i) => i).sort((a, b) => row[b] - row[a] || a - b);
  return order.slice(0, Math.min(k, vocab)).map((i) => ({
    tokenId: i,
    logit: row[i],
    prob: Math.exp(row[i] - max) / sum,
  }));
}
