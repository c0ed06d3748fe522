/**
 * The backward's source blocks: their compact form (distinct rows, and per column a row and a
 * coefficient) and the graph that builds the dense blocks from it on a GPU (source-builder.ts),
 * run here on the CPU provider. Checked against the host's dense block and its fold of the
 * post-feed-forward norm (`foldSourceVectors` below: the fold written out plainly), for the demo's CLT (a feature written at several
 * layers) and PLT; the attribution tests check the host's blocks against the PyTorch goldens.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Attributor } from '../../../electron/engine/attribution/attribute.ts';
import {
  DeviceSourceBuilder,
  type SourceBlockKind,
} from '../../../electron/engine/attribution/source-builder.ts';
import { openModel } from '../../../electron/engine/model/open-model.ts';
import { loadTranscoderSet } from '../../../electron/engine/transcoders/load.ts';

/** The fold of the post-feed-forward norm written out plainly over a dense block [t, d, n]: v · scale[p] · gain[k]. */
function foldSourceVectors(
  vectors: Float32Array,
  t: number,
  d: number,
  n: number,
  scale: Float32Array,
  gain: Float32Array,
): Float32Array {
  const out = new Float32Array(t * d * n);
  for (let p = 0; p < t; p++) {
    for (let k = 0; k < d; k++) {
      const f = scale[p] * gain[k];
      const base = (p * d + k) * n;
      for (let j = 0; j < n; j++) out[base + j] = vectors[base + j] * f;
    }
  }
  return out;
}

const DEMO_DIR = path.resolve(import.meta.dirname, '../../../resources/models/gemma2-demo');
const IDS = [2, 651, 637, 576, 2029, 1751, 1234, 603, 99];

describe('source blocks', () => {
  for (const kind of ['clt', 'plt']) {
    it(`built from their compact form on a device equal the host's, plain and folded (${kind})`, async () => {
      const model = openModel(DEMO_DIR);
      const set = loadTranscoderSet(path.join(DEMO_DIR, 'transcoders', kind));
      const a = await Attributor.create(model, set);
      const builder = new DeviceSourceBuilder({ provider: 'cpu' }, model.config.hiddenSize);
      const folder = new DeviceSourceBuilder({ provider: 'cpu' }, model.config.hiddenSize);
      try {
        const { cache, space } = await a.prepare(IDS);
        const { T, d, nLayers: L } = cache;
        // Compact: each feature's decoder row once per write layer, whatever its positions.
        for (const [m, b] of space.blocks.entries()) {
          const distinct = new Set<string>();
          for (let f = 0; f < space.nActive; f++) {
            const s = space.featureLayer[f];
            if (s === m || (kind === 'clt' && s < m)) distinct.add(`${s}/${space.featureIndex[f]}`);
          }
          expect(b.rows.length / d, `layer ${m}`).toBe(distinct.size + T + 1);
        }
        const plain = await builder.build(space, new Array<SourceBlockKind>(L).fill('sources'), [], []);
        const gains = Array.from({ length: L }, (_, l) =>
          Float32Array.from({ length: d }, (_, k) => 1 + ((k * 7 + l) % 5) / 10),
        );
        const scales = cache.ln2PostScale!;
        const folded = await folder.build(space, new Array<SourceBlockKind>(L).fill('folded'), scales, gains);
        for (const [l, b] of space.blocks.entries()) {
          expect(plain[`sources_${l}`].dims).toEqual([T, d, b.n]);
          expect(plain[`sources_${l}`].data as Float32Array, `layer ${l}`).toEqual(b.vectors);
          const want = foldSourceVectors(b.vectors, T, d, b.n, scales[l], gains[l]);
          // The host's one-pass fold from the rows (the CPU backward's) is the same, exactly.
          expect(b.folded(scales[l], gains[l]), `layer ${l}`).toEqual(want);
          const got = folded[`sources_folded_${l}`].data as Float32Array;
          // The device rounds scale·gain to float32 before the product; the host does not: ≤ 1 ulp or so.
          let worst = 0;
          for (let i = 0; i < want.length; i++)
            worst = Math.max(worst, Math.abs(got[i] - want[i]) / Math.max(1e-30, Math.abs(want[i])));
          expect(worst, `layer ${l}`).toBeLessThan(3e-7);
          expect(want.some((v) => v !== 0)).toBe(true);
        }
      } finally {
        await builder.release();
        await folder.release();
        await a.close();
        set.close();
        model.close();
      }
    });
  }
});
