/**
 * The encoder rows [n, d] of a layer's active features (their feature targets' read vectors).
 *
 * Where the forward keeps the layer's encoder resident — decoded in host memory, or in a GPU's —
 * the rows are gathered from it by a one-node graph on the forward's provider: no file is read.
 * Otherwise they are read from the transcoder files. That matters for encoders stored [d, d_t]
 * (GemmaScope's W_enc): a feature's row is then a column, and reading 30-odd columns means
 * reading the whole matrix (16384 × 2304 float32, 151 MB a layer at gemma-2-2b: ~1–2 s a
 * prompt over 26 layers here).
 */
import { encoderWeightKey } from '../model/transcoder-encoder.ts';
import type { WeightFeeder } from '../model/weight-feeder.ts';
import { WEIGHT_INPUT_PREFIX } from '../model/weight-source.ts';
import { GraphBuilder } from '../onnx/graph-builder.ts';
import type { ProviderName } from '../runtime/providers.ts';
import { createSession, ort, releaseSession, runSession, type SessionOptions } from '../runtime/session.ts';
import { checkFeatureIndices } from '../transcoders/transcoder-set.ts';
import type { TranscoderSet } from '../transcoders/types.ts';

/** Gather of rows (W_enc [d_t, d]) or of columns, transposed to rows (W_enc [d, d_t]). */
function gatherGraph(transposed: boolean): Uint8Array {
  const g = new GraphBuilder(transposed ? 'encoder-columns' : 'encoder-rows');
  g.input('w', 'float32', ['a', 'b']);
  g.input('features', 'int32', ['n']);
  const picked = g.op('Gather', ['w', 'features'], { axis: { i: transposed ? 1 : 0 } });
  const rows = transposed ? g.op('Transpose', [picked], { perm: { ints: [1, 0] } }) : picked;
  g.output(rows, 'rows', 'float32', ['n', transposed ? 'a' : 'b']);
  return g.serialize();
}

export class EncoderRows {
  private readonly sessions = new Map<boolean, Promise<ort.InferenceSession>>();
  /** Rows gathered from resident encoders, and rows read from files (figures for tests and reports). */
  readonly counts = { gathered: 0, read: 0 };

  constructor(
    private readonly set: TranscoderSet,
    private readonly feeder: WeightFeeder,
    private readonly sessionOpts: SessionOptions & { provider: ProviderName },
  ) {}

  private session(transposed: boolean): Promise<ort.InferenceSession> {
    let s = this.sessions.get(transposed);
    if (!s) {
      s = createSession(gatherGraph(transposed), this.sessionOpts).then((o) => o.session);
      this.sessions.set(transposed, s);
    }
    return s;
  }

  /** Rows of `features` (valid indices of layer l), in their order, as [features.length, d]. */
  async rows(l: number, features: readonly number[]): Promise<Float32Array> {
    // The forward graph's input holding layer l's W_enc, in its stored orientation.
    const input = `${WEIGHT_INPUT_PREFIX}${encoderWeightKey(l)}`;
    if (!features.length || !this.feeder.isResident(input)) {
      this.counts.read += features.length;
      return this.set.encoderRowsFloat32(l, features);
    }
    const info = this.set.encoderInfo(l);
    // Checked as a file read checks them: a gather on a GPU does not check its indices.
    checkFeatureIndices(l, features, this.set.dTranscoderPerLayer[l], info.sourceFile, info.name);
    const session = await this.session(info.encoderTransposed);
    const { rows } = await runSession(session, {
      w: this.feeder.feeds([input])[input],
      features: new ort.Tensor('int32', Int32Array.from(features), [features.length]),
    });
    this.counts.gathered += features.length;
    return rows.data as Float32Array;
  }

  async release(): Promise<void> {
    const sessions = await Promise.allSettled(this.sessions.values());
    this.sessions.clear();
    await Promise.all(sessions.map((s) => (s.status === 'fulfilled' ? releaseSession(s.value) : undefined)));
  }
}
