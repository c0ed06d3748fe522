/** Rotary embedding frequencies (half-split layout), with Llama-3 frequency scaling. */
import type { RopeConfig } from './config.ts';

/** inv_freq[i] = θ^(−2i/d), computed in float32 as the reference implementations do. */
export function ropeInverseFrequencies(headDim: number, rope: RopeConfig): Float32Array {
  const half = headDim / 2;
  const inv = new Float32Array(half);
  for (let i = 0; i < half; i++) {
    const exponent = Math.fround(Math.fround(2 * i) / headDim);
    inv[i] = Math.fround(1 / Math.fround(rope.theta ** exponent));
  }
  const s = rope.llama3;
  if (!s) return inv;
  const lowWavelength = s.originalMaxPositions / s.lowFreqFactor;
  const highWavelength = s.originalMaxPositions / s.highFreqFactor;
  for (let i = 0; i < half; i++) {
    const wavelength = (2 * Math.PI) / inv[i];
    if (wavelength < highWavelength) continue;
    if (wavelength > lowWavelength) {
      inv[i] = inv[i] / s.factor;
    } else {
      const smooth =
        (s.originalMaxPositions / wavelength - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
      inv[i] = (1 - smooth) * (inv[i] / s.factor) + smooth * inv[i];
    }
  }
  return inv;
}
