/**
 * The engine-level frozen intervention: run the frozen replacement model (attention
 * patterns, norm scales and all other MLP outputs held at this prompt's values) with some
 * sources scaled, and read every requested target's pre-activation.
 */
import type { PreparedPrompt } from './attribute.ts';

/** A direction target reads `direction` · the unembedding input (a caller's target, target-spec.ts). */
export type TargetRef =
  | { kind: 'feature'; active: number }
  | { kind: 'logit'; tokenId: number }
  | { kind: 'direction'; direction: Float32Array };

/**
 * `columnScale(col)` scales source column `col` (active feature, error l·T+p, token):
 * 1 leaves it, 0 ablates it; the default leaves every source as it is.
 */
export async function frozenTargetValues(
  prepared: PreparedPrompt,
  targets: readonly TargetRef[],
  columnScale: (column: number) => number = () => 1,
): Promise<Float64Array> {
  const { cache, space, targets: tb } = prepared;
  const frozen = await prepared.runner.frozenForward(columnScale);
  const d = cache.d;
  const out = new Float64Array(targets.length);
  targets.forEach((t, k) => {
    if (t.kind === 'logit' || t.kind === 'direction') {
      const u = t.kind === 'logit' ? tb.logitDirection(t.tokenId) : t.direction;
      const h = frozen.unembedIn.subarray((cache.T - 1) * d, cache.T * d);
      let v = 0;
      for (let i = 0; i < d; i++) v += u[i] * h[i];
      out[k] = v;
      return;
    }
    const l = space.featureLayer[t.active];
    const p = space.featurePosition[t.active];
    const residual = prepared.targets.readsResidPre ? frozen.residPre[l] : frozen.residMid[l];
    const x = tb.readInput(l, residual, p);
    const w = prepared.encoderRows[t.active];
    let v = prepared.encoderBias[t.active];
    for (let i = 0; i < d; i++) v += w[i] * x[i];
    out[k] = v;
  });
  return out;
}
