/**
 * Token predictions of features: the top and bottom k entries of W_dec[f]·W_Uᵀ (the decoder
 * direction read straight through the unembedding, no final norm), as circuit-tracer's and
 * Neuronpedia's feature files show them.
 *
 * PLT: W_dec[f] of the feature's layer. CLT: a feature writes to every layer m ≥ its own; we
 * use the decoder slot of the LAST layer it writes (slot L−1−l, writing layer L−1), the one
 * closest to the unembedding.
 *
 * Computed by a tiny ONNX graph (Gemm + two TopK) over batches of decoder rows, so a vocabulary
 * of 256k × thousands of features runs at BLAS speed.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { OpenedModel } from '../model/open-model.ts';
import { cacheKey, defaultCacheRoot, getOrCompile } from '../onnx/compile-cache.ts';
import { GraphBuilder } from '../onnx/graph-builder.ts';
import { createSession, ort, releaseSession, runSession, type SessionOptions } from '../runtime/session.ts';
import type { TranscoderSet } from '../transcoders/types.ts';

export interface LogitLensRows {
  topIds: Int32Array;
  topValues: Float32Array;
  bottomIds: Int32Array;
  bottomValues: Float32Array;
  k: number;
}

/** W_U as [V, d] float32: lm_head, or the (tied) embedding. */
export function unembeddingFloat32(model: OpenedModel): Float32Array {
  return model.tensors.readFloat32(model.weightNames.lmHead ?? model.weightNames.embed);
}

/** Decoder directions [n, d] of the given features of layer l (CLT: last written layer). */
export function decoderDirections(set: TranscoderSet, l: number, features: readonly number[]): Float32Array {
  const d = set.dModel;
  const rows = set.decoderRowsFloat32(l, features);
  if (set.kind === 'plt') return rows;
  const slots = set.nLayers - l;
  const out = new Float32Array(features.length * d);
  for (let i = 0; i < features.length; i++) {
    out.set(rows.subarray((i * slots + slots - 1) * d, (i * slots + slots) * d), i * d);
  }
  return out;
}

function compileLens(k: number, cacheRoot: string): string {
  const key = cacheKey({ kind: 'logit-lens', k });
  const entry = getOrCompile(cacheRoot, key, (dir) => {
    const g = new GraphBuilder('logit-lens');
    const dec = g.input('dec', 'float32', ['n', 'd']);
    const wu = g.input('wu', 'float32', ['v', 'd']);
    const logits = g.op('Gemm', [dec, wu], { transB: { i: 1 } });
    const kk = g.constInt64([k]);
    const [tv, ti] = g.opMulti('TopK', [logits, kk], 2, {
      axis: { i: -1 },
      largest: { i: 1 },
      sorted: { i: 1 },
    });
    const [bv, bi] = g.opMulti('TopK', [logits, kk], 2, {
      axis: { i: -1 },
      largest: { i: 0 },
      sorted: { i: 1 },
    });
    g.output(tv, 'top_values', 'float32', ['n', k]);
    g.output(ti, 'top_ids', 'int64', ['n', k]);
    g.output(bv, 'bottom_values', 'float32', ['n', k]);
    g.output(bi, 'bottom_ids', 'int64', ['n', k]);
    fs.writeFileSync(path.join(dir, 'model.onnx'), g.serialize());
  });
  return entry.modelPath;
}

export class LogitLens {
  private constructor(
    private readonly session: ort.InferenceSession,
    private readonly wu: ort.Tensor,
    readonly k: number,
    readonly d: number,
  ) {}

  static async create(
    unembedding: Float32Array,
    vocab: number,
    d: number,
    k: number,
    opts: SessionOptions & { cacheRoot?: string } = {},
  ): Promise<LogitLens> {
    const kk = Math.min(k, vocab);
    const modelPath = compileLens(kk, opts.cacheRoot ?? defaultCacheRoot());
    const { session } = await createSession(modelPath, opts);
    return new LogitLens(session, new ort.Tensor('float32', unembedding, [vocab, d]), kk, d);
  }

  /** Rows [n, d] → top/bottom k ids and values per row. */
  async run(directions: Float32Array): Promise<LogitLensRows> {
    const n = directions.length / this.d;
    const out = await runSession(this.session, {
      dec: new ort.Tensor('float32', directions, [n, this.d]),
      wu: this.wu,
    });
    const ids = (t: ort.Tensor) => Int32Array.from(t.data as BigInt64Array, (x) => Number(x));
    return {
      topIds: ids(out.top_ids),
      topValues: out.top_values.data as Float32Array,
      bottomIds: ids(out.bottom_ids),
      bottomValues: out.bottom_values.data as Float32Array,
      k: this.k,
    };
  }

  async close(): Promise<void> {
    await releaseSession(this.session);
  }
}
