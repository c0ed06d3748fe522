/**
 * The backward's source blocks built on the GPU, once per prompt. The host would otherwise fill
 * every write layer's dense [T, d, n] block (each column a·W_dec written with a stride of n;
 * 113 MB at gemma-2-2b's shape, 0.1–0.4 s here), fold the frozen post-feed-forward norm into a
 * second copy (another pass) and upload both. Here it uploads the compact description instead —
 * the distinct decoder rows and error vectors [R, d], and per block column its row and
 * coefficient (sources.ts `WriteLayerBlock`) — and one graph on the backward's provider gathers,
 * scales, transposes and folds them into the blocks the backward graphs take, kept in device
 * memory (`preferredOutputLocation`).
 *
 *   sources_l        = transpose(coef_l ⊙ rows_l[row_index_l], [0, 2, 1])            [T, d, n_l]
 *   sources_folded_l = sources_l ⊙ (post_scale_l[p] · post_gain_l[k])  (WriteLayerBlock.folded)
 */
import { GraphBuilder } from '../onnx/graph-builder.ts';
import type { ProviderName } from '../runtime/providers.ts';
import { createSession, ort, releaseSession, runSession, type SessionOptions } from '../runtime/session.ts';
import { linearInputs } from './linear-model.ts';
import type { SourceSpace } from './sources.ts';

/** Per layer, which block the backward graphs take: plain, folded (post-feed-forward norm), or none. */
export type SourceBlockKind = 'sources' | 'folded' | null;

export function sourceBuilderGraph(kinds: readonly SourceBlockKind[], d: number): Uint8Array {
  const g = new GraphBuilder('source-builder');
  for (const [l, kind] of kinds.entries()) {
    if (!kind) continue;
    const rows = g.input(`rows_${l}`, 'float32', [`r_${l}`, d]);
    const index = g.input(`row_index_${l}`, 'int32', ['T', `n_${l}`]);
    const coef = g.input(`coef_${l}`, 'float32', ['T', `n_${l}`]);
    const gathered = g.gather(rows, index, 0); // [T, n, d]
    const scaled = g.mul(gathered, g.unsqueeze(coef, [2]));
    let block = g.transpose(scaled, [0, 2, 1]); // [T, d, n]
    if (kind === 'folded') {
      const scale = g.unsqueeze(g.input(`post_scale_${l}`, 'float32', ['T']), [1, 2]); // [T, 1, 1]
      const gain = g.unsqueeze(g.input(`post_gain_${l}`, 'float32', [d]), [1]); // [d, 1]
      block = g.mul(block, g.mul(scale, gain)); // [T, d, 1]: scale[p] · gain[k], as the host folds
      g.output(block, linearInputs.foldedSources(l), 'float32', ['T', d, `n_${l}`]);
    } else {
      g.output(block, linearInputs.sources(l), 'float32', ['T', d, `n_${l}`]);
    }
  }
  return g.serialize();
}

export class DeviceSourceBuilder {
  private session?: Promise<ort.InferenceSession>;

  constructor(
    private readonly sessionOpts: SessionOptions & { provider: ProviderName },
    private readonly d: number,
  ) {}

  /**
   * The blocks `kinds` names, at the prompt's full length, as the session leaves them: in device
   * memory on a GPU provider. `postScale[l]` [T] and `postGain[l]` [d] for the folded layers.
   */
  async build(
    space: SourceSpace,
    kinds: readonly SourceBlockKind[],
    postScale: readonly (Float32Array | undefined)[],
    postGain: readonly (Float32Array | undefined)[],
  ): Promise<Record<string, ort.Tensor>> {
    this.session ??= createSession(sourceBuilderGraph(kinds, this.d), {
      ...this.sessionOpts,
      keepOutputsOnDevice: true,
    }).then((o) => o.session);
    const session = await this.session;
    const feeds: Record<string, ort.Tensor> = {};
    for (const [l, kind] of kinds.entries()) {
      if (!kind) continue;
      const b = space.blocks[l];
      feeds[`rows_${l}`] = new ort.Tensor('float32', b.rows, [b.rows.length / this.d, this.d]);
      feeds[`row_index_${l}`] = new ort.Tensor('int32', b.rowIndex, [b.T, b.n]);
      feeds[`coef_${l}`] = new ort.Tensor('float32', b.coef, [b.T, b.n]);
      if (kind !== 'folded') continue;
      const scale = postScale[l];
      const gain = postGain[l];
      if (!scale || !gain) throw new Error(`layer ${l}: no post-feed-forward norm to fold into its sources`);
      feeds[`post_scale_${l}`] = new ort.Tensor('float32', scale.subarray(0, b.T), [b.T]);
      feeds[`post_gain_${l}`] = new ort.Tensor('float32', gain, [this.d]);
    }
    return runSession(session, feeds);
  }

  async release(): Promise<void> {
    const s = this.session;
    this.session = undefined;
    const session = await s?.catch(() => undefined);
    if (session) await releaseSession(session);
  }
}
