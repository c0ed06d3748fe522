/**
 * Emits the forward graph of a decoder-only transformer from a ModelConfig and its tensor
 * names. Every quantity attribution needs is a named graph output (hook names as in
 * tests/golden/README.md), so a caller fetches exactly the hooks it wants.
 *
 * Layout: one sequence, no batch dimension: `input_ids` int64 [T]; activations [T, d].
 */
import type { GraphBuilder } from '../onnx/graph-builder.ts';
import type { ModelConfig } from './config.ts';
import type { AttentionWeights, MlpWeights, ModelWeights, NormWeights } from './family.ts';
import { ropeInverseFrequencies } from './rope.ts';

/** Supplies initializers for checkpoint tensors (shape-checked) and derived constants. */
export interface WeightSource {
  tensor(name: string, shape: readonly number[]): string;
  /**
   * A tensor stored elsewhere (e.g. a transcoder file), decoded with `decode` (into `out` when
   * the caller streams it into a reused array). Registered under `name`, so graphs share it.
   */
  decoded(name: string, shape: readonly number[], decode: (out?: Float32Array) => Float32Array): string;
  /** A float32 constant computed from checkpoint tensors, e.g. Gemma's (1 + w). */
  derived(name: string, shape: readonly number[], compute: () => Float32Array): string;
  readFloat32(name: string, shape: readonly number[]): Float32Array;
}

const ONNX_FLOAT = 1;

export interface ForwardGraphValues {
  /** hook name → graph value name (before being exposed as outputs) */
  hooks: Map<string, string>;
  positions: string;
}

/** The two MLP write points a transcoder may use. */
export type MlpWritePoint = 'mlp.hook_out' | 'hook_mlp_out';

/**
 * Lets a caller rewrite a layer's MLP output at a write point (closed-loop interventions add
 * their decoder deltas there); `hooks` holds every hook of the layer computed so far.
 */
export type MlpRewrite = (
  layer: number,
  point: MlpWritePoint,
  value: string,
  ctx: { hooks: Map<string, string>; positions: string },
) => string;

/**
 * Lets a caller replace a layer's attention pattern ([H, T, T], post-softmax) before it weights
 * the values (closed-loop interventions with frozen attention feed the prompt's patterns);
 * the returned value is what `hook_pattern` exposes and what the layer uses.
 */
export type PatternRewrite = (layer: number, pattern: string) => string;

/**
 * Which part of the model a forward graph holds. Big checkpoints run as one graph per layer
 * (weights streamed per layer); small ones as one graph.
 */
export interface ForwardLayout {
  /** First layer of the graph (default 0). From a later layer the graph's input is `resid_in` [T, d]. */
  from?: number;
  /** One past its last layer (default: all). With every layer, the graph ends at the final norm. */
  to?: number;
  /**
   * 'gather' (default): `input_ids` [T] through the whole embedding matrix; 'rows': the input
   * `token_embeddings` [T, d] holds the prompt's embedding rows, read by the caller (a 256k
   * vocabulary's embedding is never fed whole).
   */
  embedding?: 'gather' | 'rows';
  /** 'graph' (default): logits in the graph; 'none': the graph ends at `unembed.hook_in` (logit-head.ts). */
  head?: 'graph' | 'none';
}

/** Input names of layered forward graphs. */
export const forwardInputs = { ids: 'input_ids', tokenEmbeddings: 'token_embeddings', residIn: 'resid_in' };

export function emitTransformerForward(
  g: GraphBuilder,
  cfg: ModelConfig,
  names: ModelWeights,
  weights: WeightSource,
  rewriteMlp?: MlpRewrite,
  rewritePattern?: PatternRewrite,
  layout: ForwardLayout = {},
): ForwardGraphValues {
  const d = cfg.hiddenSize;
  const from = layout.from ?? 0;
  const to = layout.to ?? cfg.nLayers;
  const hooks = new Map<string, string>();
  const hook = (name: string, value: string) => {
    hooks.set(name, value);
    return value;
  };

  let x: string;
  let embedW: string | undefined;
  if (from > 0) x = g.input(forwardInputs.residIn, 'float32', ['T', d]);
  else if (layout.embedding === 'rows') x = g.input(forwardInputs.tokenEmbeddings, 'float32', ['T', d]);
  else {
    embedW = weights.tensor(names.embed, [cfg.vocabSize, d]);
    x = g.gather(embedW, g.input(forwardInputs.ids, 'int64', ['T']));
  }
  const T = g.gather(g.op('Shape', [x]), g.constInt64([0], [])); // x is [T, d] whatever came in
  const positions = g.op('Range', [g.constInt64([0], []), T, g.constInt64([1], [])]);

  // ---- embeddings ----
  if (from === 0) {
    if (cfg.embedScale !== undefined) x = g.mul(x, g.scalar(Math.fround(cfg.embedScale)));
    hook('hook_embed', x);
    if (names.posEmbed) {
      const pos = g.gather(weights.tensor(names.posEmbed, [cfg.maxPositions, d]), positions);
      hook('hook_pos_embed', pos);
      x = g.add(x, pos);
    }
  }

  // ---- shared attention inputs: rotary tables and masks ----
  let cos: string | undefined;
  let sin: string | undefined;
  if (cfg.rope) {
    const inv = ropeInverseFrequencies(cfg.headDim, cfg.rope);
    const posF = g.unsqueeze(g.cast(positions, ONNX_FLOAT), [1]);
    const freqs = g.mul(posF, g.constFloat(inv, [1, inv.length]));
    const emb = g.concat([freqs, freqs], 1);
    cos = g.op('Cos', [emb]);
    sin = g.op('Sin', [emb]);
  }
  const masks = new Map<number | undefined, string>();
  const maskFor = (window: number | undefined): string => {
    let m = masks.get(window);
    if (m) return m;
    const diff = g.sub(g.unsqueeze(positions, [1]), g.unsqueeze(positions, [0]));
    m = g.op('GreaterOrEqual', [diff, g.constInt64([0], [])]);
    if (window !== undefined) m = g.op('And', [m, g.op('Less', [diff, g.constInt64([window], [])])]);
    masks.set(window, m);
    return m;
  };

  // ---- norms: expose the frozen scale and the normalized input ----
  const norm = (input: string, w: NormWeights, hookPrefix: string) => {
    let centered = input;
    if (cfg.normKind === 'layer') centered = g.sub(input, g.reduceMean(input, [-1]));
    const ms = g.reduceMean(g.mul(centered, centered), [-1]);
    const scale = g.reciprocal(g.sqrt(g.add(ms, g.scalar(cfg.normEps))));
    const normalized = g.mul(centered, scale);
    hook(`${hookPrefix}.hook_scale`, g.reshape(scale, [-1]));
    hook(`${hookPrefix}.hook_normalized`, normalized);
    let out = g.mul(normalized, gain(w.weight));
    if (w.bias) out = g.add(out, weights.tensor(w.bias, [d]));
    return out;
  };
  const gain = (name: string, size = d) =>
    cfg.normGainOffset === 0
      ? weights.tensor(name, [size])
      : weights.derived(`${name}+1`, [size], () =>
          weights.readFloat32(name, [size]).map((v) => Math.fround(1 + v)),
        );
  const softcap = (v: string, cap: number | undefined) =>
    cap === undefined ? v : g.mul(g.tanh(g.div(v, g.scalar(cap))), g.scalar(cap));

  const attention = (h: string, aw: AttentionWeights, layer: number) => {
    const H = cfg.nHeads;
    const KV = cfg.nKvHeads;
    const hd = cfg.headDim;
    const p = `blocks.${layer}.attn`;
    let q: string;
    let k: string;
    let v: string;
    if (aw.kind === 'fused-conv1d') {
      const qkv = g.linear(h, weights.tensor(aw.qkv, [d, 3 * d]), weights.tensor(aw.qkvBias, [3 * d]), false);
      [q, k, v] = g.split(qkv, [d, d, d], 1);
    } else {
      const bias = (n: string | undefined, size: number) => (n ? weights.tensor(n, [size]) : undefined);
      q = g.linear(h, weights.tensor(aw.q, [H * hd, d]), bias(aw.qBias, H * hd));
      k = g.linear(h, weights.tensor(aw.k, [KV * hd, d]), bias(aw.kBias, KV * hd));
      v = g.linear(h, weights.tensor(aw.v, [KV * hd, d]), bias(aw.vBias, KV * hd));
    }
    q = g.reshape(q, [0, H, hd]);
    k = g.reshape(k, [0, KV, hd]);
    v = g.reshape(v, [0, KV, hd]);
    if (aw.kind === 'separate' && aw.qNorm && aw.kNorm) {
      const headNorm = (t: string, w: string, scaleHook: string, heads: number) => {
        const scale = g.reciprocal(g.sqrt(g.add(g.reduceMean(g.mul(t, t), [-1]), g.scalar(cfg.normEps))));
        hook(scaleHook, g.reshape(scale, [0, heads]));
        return g.mul(g.mul(t, scale), weights.tensor(w, [hd]));
      };
      q = headNorm(q, aw.qNorm, `${p}.hook_q_scale`, H);
      k = headNorm(k, aw.kNorm, `${p}.hook_k_scale`, KV);
    }
    q = g.transpose(q, [1, 0, 2]); // [H, T, hd]
    k = g.transpose(k, [1, 0, 2]); // [KV, T, hd]
    v = g.transpose(v, [1, 0, 2]);
    if (cos && sin) {
      const rotate = (t: string) => {
        const [a, b] = g.split(t, [hd / 2, hd / 2], -1);
        return g.concat([g.op('Neg', [b]), a], -1);
      };
      q = g.add(g.mul(q, cos), g.mul(rotate(q), sin));
      k = g.add(g.mul(k, cos), g.mul(rotate(k), sin));
    }
    // GQA: query head j reads kv head j // (H/KV): group the query heads under their kv head.
    const groups = H / KV;
    const q4 = g.reshape(q, [KV, groups, -1, hd]);
    const kT = g.unsqueeze(g.transpose(k, [0, 2, 1]), [1]); // [KV, 1, hd, T]
    let scores = g.mul(g.matmul(q4, kT), g.scalar(cfg.attentionScale)); // [KV, G, T, T]
    scores = softcap(scores, cfg.attnSoftcap);
    scores = g.where(maskFor(cfg.slidingWindows[layer]), scores, g.scalar(Number.NEGATIVE_INFINITY));
    let pattern = g.softmax(scores, -1);
    if (rewritePattern) {
      const used = hook(`${p}.hook_pattern`, rewritePattern(layer, g.reshape(pattern, [H, -1, 0])));
      pattern = g.reshape(used, [KV, groups, 0, -1]);
    } else hook(`${p}.hook_pattern`, g.reshape(pattern, [H, -1, 0]));
    const z = g.matmul(pattern, g.unsqueeze(v, [1])); // [KV, G, T, hd]
    const zFlat = g.reshape(g.transpose(g.reshape(z, [H, -1, hd]), [1, 0, 2]), [0, H * hd]);
    if (aw.kind === 'fused-conv1d') {
      return g.linear(zFlat, weights.tensor(aw.o, [d, d]), weights.tensor(aw.oBias, [d]), false);
    }
    const oBias = aw.oBias ? weights.tensor(aw.oBias, [d]) : undefined;
    return g.linear(zFlat, weights.tensor(aw.o, [d, H * hd]), oBias);
  };

  const geluTanh = (t: string) => {
    const cube = g.mul(g.mul(t, t), t);
    const inner = g.mul(g.add(t, g.mul(cube, g.scalar(0.044715))), g.scalar(Math.sqrt(2 / Math.PI)));
    return g.mul(g.mul(t, g.scalar(0.5)), g.add(g.tanh(inner), g.scalar(1)));
  };

  const mlp = (h: string, mw: MlpWeights) => {
    const m = cfg.intermediateSize;
    if (mw.kind === 'conv1d') {
      const up = g.linear(h, weights.tensor(mw.fcIn, [d, m]), weights.tensor(mw.fcInBias, [m]), false);
      return g.linear(
        geluTanh(up),
        weights.tensor(mw.fcOut, [m, d]),
        weights.tensor(mw.fcOutBias, [d]),
        false,
      );
    }
    const gate = g.linear(h, weights.tensor(mw.gate, [m, d]));
    const up = g.linear(h, weights.tensor(mw.up, [m, d]));
    const act = cfg.mlpActivation === 'silu' ? g.mul(gate, g.op('Sigmoid', [gate])) : geluTanh(gate);
    return g.linear(g.mul(act, up), weights.tensor(mw.down, [d, m]));
  };

  names.layers.forEach((lw, l) => {
    if (l < from || l >= to) return;
    const p = `blocks.${l}`;
    hook(`${p}.hook_resid_pre`, x);
    let attnOut = attention(norm(x, lw.ln1, `${p}.ln1`), lw.attn, l);
    if (lw.lnPostAttn) attnOut = norm(attnOut, lw.lnPostAttn, `${p}.ln1_post`);
    hook(`${p}.hook_attn_out`, attnOut);
    x = hook(`${p}.hook_resid_mid`, g.add(x, attnOut));
    const mlpIn = hook(`${p}.mlp.hook_in`, norm(x, lw.ln2, `${p}.ln2`));
    let mlpOut = mlp(mlpIn, lw.mlp);
    if (rewriteMlp) mlpOut = rewriteMlp(l, 'mlp.hook_out', mlpOut, { hooks, positions });
    hook(`${p}.mlp.hook_out`, mlpOut);
    if (lw.lnPostFf) mlpOut = norm(mlpOut, lw.lnPostFf, `${p}.ln2_post`);
    if (rewriteMlp) mlpOut = rewriteMlp(l, 'hook_mlp_out', mlpOut, { hooks, positions });
    hook(`${p}.hook_mlp_out`, mlpOut);
    x = hook(`${p}.hook_resid_post`, g.add(x, mlpOut));
  });

  if (to < cfg.nLayers) return { hooks, positions };
  const finalOut = hook('unembed.hook_in', norm(x, names.finalNorm, 'ln_final'));
  if (layout.head === 'none') return { hooks, positions };
  const unembed = names.lmHead
    ? weights.tensor(names.lmHead, [cfg.vocabSize, d])
    : (embedW ?? weights.tensor(names.embed, [cfg.vocabSize, d]));
  // Mean unembedding row: logit targets read u_k − mean_v u_v (a constant, folded once).
  hook('unembed.mean_row', g.reduceMean(unembed, [0], false));
  const logitsPre = hook('logits_pre_softcap', g.linear(finalOut, unembed));
  hook('logits', softcap(logitsPre, cfg.finalSoftcap));
  return { hooks, positions };
}
