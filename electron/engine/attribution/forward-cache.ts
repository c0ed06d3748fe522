/**
 * Everything attribution needs from one forward pass of the real model: frozen patterns
 * and norm scales, transcoder read inputs, pre-activations and activations, MLP outputs
 * at the write hook, error terms, token vectors and the logits.
 */
import type { ForwardPass, HookValue } from '../model/forward-pass.ts';
import {
  type ActiveDecoderRows,
  type ActiveFeatures,
  activeFeatures,
  readActiveDecoderRows,
  reconstruct,
  reconstructionErrors,
} from '../model/replacement.ts';
import { transcoderHookNames } from '../model/transcoder-encoder.ts';
import type { TranscoderSet } from '../transcoders/types.ts';

export interface ForwardCache {
  tokenIds: number[];
  T: number;
  nLayers: number;
  d: number;
  vocab: number;
  patterns: Float32Array[];
  ln1Scale: Float32Array[];
  ln2Scale: Float32Array[];
  ln1PostScale?: Float32Array[];
  ln2PostScale?: Float32Array[];
  finalScale: Float32Array;
  /** Per layer [T, d]: the transcoder's input at its read hook. */
  readInputs: Float32Array[];
  /** Per layer [T, d_t]. */
  preActivations: Float32Array[];
  active: ActiveFeatures[];
  /**
   * Per source layer: the active features' decoder rows (read once for the reconstruction and
   * the source space). Set to null once the source space is built, to free them.
   */
  decoderRows: ActiveDecoderRows[] | null;
  /** Per layer [T, d]: mlp_out − reconstruction at the write hook; position 0 zero. */
  errors: Float32Array[];
  /** Per layer [d]: mlp_out − recon at position 0, a constant (never a node). */
  bosResidue: Float32Array[];
  /** [T, d]: each token's embedding as added to the residual. */
  tokenVectors: Float32Array;
  /** [T, d] constant position embeddings (GPT-2), else zeros. */
  positionEmbeddings: Float32Array;
  /** [V] final and pre-softcap logits at the last position (the only ones attribution reads). */
  logits: Float32Array;
  logitsPreSoftcap: Float32Array;
  unembedIn: Float32Array;
  unembedMean: Float32Array;
  /** Where the cache's time went (ms): the model's run, and the host's work on its outputs. */
  timingsMs: { run: number; activeFeatures: number; decoderRows: number; reconstruction: number };
}

export async function runForwardCache(
  fp: ForwardPass,
  set: TranscoderSet,
  tokenIds: number[],
): Promise<ForwardCache> {
  const cfg = fp.model.config;
  const L = cfg.nLayers;
  const hasPost = fp.model.weightNames.layers.some((l) => l.lnPostFf);
  const names: string[] = [
    'logits',
    'logits_pre_softcap',
    'unembed.hook_in',
    'unembed.mean_row',
    'ln_final.hook_scale',
    'hook_embed',
  ];
  if (fp.outputs.includes('hook_pos_embed')) names.push('hook_pos_embed');
  for (let l = 0; l < L; l++) {
    const p = `blocks.${l}`;
    names.push(`${p}.attn.hook_pattern`, `${p}.ln1.hook_scale`, `${p}.ln2.hook_scale`);
    if (hasPost) names.push(`${p}.ln1_post.hook_scale`, `${p}.ln2_post.hook_scale`);
    names.push(`${p}.${set.readHook}`, `${p}.${set.writeHook}`);
    names.push(transcoderHookNames(l).pre, transcoderHookNames(l).acts);
  }
  let clock = performance.now();
  const lap = () => {
    const now = performance.now();
    const ms = now - clock;
    clock = now;
    return ms;
  };
  const out = await fp.run(tokenIds, [...new Set(names)], { logitPositions: 'last' });
  const run = lap();
  const get = (n: string): HookValue => out.get(n)!;
  const T = tokenIds.length;
  const d = cfg.hiddenSize;
  const perLayer = (f: (l: number) => string) => Array.from({ length: L }, (_, l) => get(f(l)).data);
  const readInputs = perLayer((l) => `blocks.${l}.${set.readHook}`);
  const active = Array.from({ length: L }, (_, l) =>
    activeFeatures(get(transcoderHookNames(l).acts).data, T, set.dTranscoderPerLayer[l], l),
  );
  const mlpOut = perLayer((l) => `blocks.${l}.${set.writeHook}`);
  const activeMs = lap();
  const decoderRows = readActiveDecoderRows(set, active);
  const decoderRowsMs = lap();
  const recon = reconstruct(set, active, T, readInputs, decoderRows);
  const errors = reconstructionErrors(mlpOut, recon, d);
  // At BOS the whole MLP output (minus the skip term) is a constant: b_dec + this residue.
  const bosResidue = mlpOut.map((m, l) => m.slice(0, d).map((v, k) => v - recon[l][k]));
  const reconstruction = lap();
  const logits = get('logits');
  return {
    tokenIds,
    T,
    nLayers: L,
    d,
    vocab: logits.dims[1],
    patterns: perLayer((l) => `blocks.${l}.attn.hook_pattern`),
    ln1Scale: perLayer((l) => `blocks.${l}.ln1.hook_scale`),
    ln2Scale: perLayer((l) => `blocks.${l}.ln2.hook_scale`),
    ln1PostScale: hasPost ? perLayer((l) => `blocks.${l}.ln1_post.hook_scale`) : undefined,
    ln2PostScale: hasPost ? perLayer((l) => `blocks.${l}.ln2_post.hook_scale`) : undefined,
    finalScale: get('ln_final.hook_scale').data,
    readInputs,
    preActivations: perLayer((l) => transcoderHookNames(l).pre),
    active,
    decoderRows,
    errors,
    bosResidue,
    tokenVectors: get('hook_embed').data,
    positionEmbeddings: out.has('hook_pos_embed') ? get('hook_pos_embed').data : new Float32Array(T * d),
    logits: logits.data,
    logitsPreSoftcap: get('logits_pre_softcap').data,
    unembedIn: get('unembed.hook_in').data,
    unembedMean: get('unembed.mean_row').data,
    timingsMs: { run, activeFeatures: activeMs, decoderRows: decoderRowsMs, reconstruction },
  };
}
