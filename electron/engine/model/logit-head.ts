/**
 * The unembedding, applied outside the layer graphs: logits = x·W_Uᵀ for a few residual rows,
 * in chunks of vocabulary rows decoded from the stored dtype one chunk at a time, so a 256k ×
 * 2304 unembedding (2.4 GB as float32) is never held whole unless it fits the resident budget.
 * The same pass sums the rows for the mean unembedding row (logit targets read u_k − mean_v u_v).
 */
import type { TensorStore } from '../checkpoint/tensor.ts';
import { GraphBuilder } from '../onnx/graph-builder.ts';
import { createSession, ort, releaseSession, runSession, type SessionOptions } from '../runtime/session.ts';

/** Vocabulary rows per streamed chunk are sized to about this many float32 bytes. */
export const HEAD_CHUNK_BYTES = 64 * 1024 * 1024;

function headGraph(): Uint8Array {
  const g = new GraphBuilder('logit-head');
  const x = g.input('x', 'float32', ['n', 'd']);
  const w = g.input('w', 'float32', ['c', 'd']);
  g.output(g.op('Gemm', [x, w], { transB: { i: 1 } }), 'logits', 'float32', ['n', 'c']);
  g.output(g.op('ReduceSum', [w, g.constInt64([0])], { keepdims: { i: 0 } }), 'row_sum', 'float32', ['d']);
  return g.serialize();
}

export interface LogitHeadOptions extends SessionOptions {
  /** Keep the decoded unembedding when it is at most this many bytes (else stream it per pass). */
  residentBytes?: number;
  /** Where a decoded unembedding is already held (the complete forward graph's input): shared, not decoded again. */
  residentValues?: () => Float32Array;
  chunkBytes?: number;
}

export class LogitHead {
  private resident?: Float32Array;
  private mean?: Float32Array;
  /** The reused chunk array of a streamed pass (fresh arrays would cost page faults per chunk). */
  private chunk?: Float32Array;

  private constructor(
    private readonly store: TensorStore,
    private readonly tensor: string,
    readonly vocab: number,
    readonly d: number,
    private readonly softcap: number | undefined,
    private readonly session: ort.InferenceSession,
    private readonly keep: boolean,
    private readonly chunkRows: number,
    private readonly shared: (() => Float32Array) | undefined,
  ) {}

  static async create(
    store: TensorStore,
    tensor: string,
    softcap: number | undefined,
    opts: LogitHeadOptions = {},
  ): Promise<LogitHead> {
    const [vocab, d] = store.info(tensor).shape;
    const { session } = await createSession(headGraph(), { ...opts, provider: opts.provider ?? 'cpu' });
    const keep =
      opts.residentValues !== undefined || vocab * d * 4 <= (opts.residentBytes ?? Number.POSITIVE_INFINITY);
    const chunkRows = Math.max(1, Math.floor((opts.chunkBytes ?? HEAD_CHUNK_BYTES) / (d * 4)));
    return new LogitHead(store, tensor, vocab, d, softcap, session, keep, chunkRows, opts.residentValues);
  }

  /** Rows [first, first + n) of the unembedding as float32 (valid until the next call). */
  private rows(first: number, n: number): Float32Array {
    const d = this.d;
    if (this.resident) return this.resident.subarray(first * d, (first + n) * d);
    this.chunk ??= new Float32Array(Math.min(this.chunkRows, this.vocab) * d);
    return this.store.readFloat32Range(this.tensor, first * d, this.chunk.subarray(0, n * d));
  }

  /**
   * Pre-softcap logits [n, V] of `x` ([n, d] rows). Also settles the mean unembedding row on
   * the first pass.
   */
  async logitsPre(x: Float32Array, n: number): Promise<Float32Array> {
    const { vocab: V, d } = this;
    if (this.keep && !this.resident) this.resident = this.shared?.() ?? this.store.readFloat32(this.tensor);
    const out = new Float32Array(n * V);
    const sum = this.mean ? undefined : new Float64Array(d);
    const single = this.resident !== undefined;
    const step = single ? V : this.chunkRows;
    const xt = new ort.Tensor('float32', x.subarray(0, n * d), [n, d]);
    for (let first = 0; first < V; first += step) {
      const c = Math.min(step, V - first);
      const w = this.rows(first, c);
      const fetch = sum ? ['logits', 'row_sum'] : ['logits'];
      const res = await runSession(this.session, { x: xt, w: new ort.Tensor('float32', w, [c, d]) }, fetch);
      const logits = res.logits.data as Float32Array;
      for (let r = 0; r < n; r++) out.set(logits.subarray(r * c, (r + 1) * c), r * V + first);
      if (sum) {
        const s = res.row_sum.data as Float32Array;
        for (let k = 0; k < d; k++) sum[k] += s[k];
      }
    }
    if (sum) this.mean = Float32Array.from(sum, (v) => v / V);
    return out;
  }

  /** Final (soft-capped where the model caps) logits of pre-softcap logits. */
  applySoftcap(pre: Float32Array): Float32Array {
    const cap = this.softcap;
    if (cap === undefined) return pre;
    return pre.map((v) => Math.tanh(v / cap) * cap);
  }

  /** The mean unembedding row [d] (one streamed pass if no logits were computed yet). */
  async meanRow(): Promise<Float32Array> {
    if (!this.mean) await this.logitsPre(new Float32Array(this.d), 1);
    return this.mean!;
  }

  async close(): Promise<void> {
    this.resident = undefined;
    this.chunk = undefined;
    await releaseSession(this.session);
  }
}
