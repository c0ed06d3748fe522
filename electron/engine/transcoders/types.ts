/**
 * The public shape of a loaded transcoder set (per-layer PLT or cross-layer CLT), whatever
 * the on-disk layout (circuit-tracer safetensors, GemmaScope npz, CLT folder).
 */
import type { TensorInfo } from '../checkpoint/tensor.ts';

export type TranscoderKind = 'plt' | 'clt';

/** Which on-disk layout the set was read from (informational). */
export type TranscoderLayout = 'circuit-tracer' | 'gemmascope' | 'clt';

export type TranscoderActivation = { kind: 'jumprelu' } | { kind: 'relu' } | { kind: 'topk'; k: number };

/**
 * The tensors of one layer as stored (names as in the file, e.g. `W_enc_3`,
 * `activation_function.threshold`; shapes before any re-orientation).
 */
export interface LayerTensors {
  W_enc: TensorInfo;
  b_enc: TensorInfo;
  /** PLT [d_t, d] or [d, d_t]; CLT [d_t, L−l, d]. */
  W_dec: TensorInfo;
  b_dec: TensorInfo;
  threshold?: TensorInfo;
  W_skip?: TensorInfo;
  k?: TensorInfo;
}

export type LayerTensorRole = keyof LayerTensors;

/** Where W_enc's bytes are, and whether they are stored [d, d_t] instead of [d_t, d]. */
export type EncoderInfo = TensorInfo & { encoderTransposed: boolean };

export interface TranscoderSet {
  readonly kind: TranscoderKind;
  readonly layout: TranscoderLayout;
  /** The folder the set was loaded from (absolute). */
  readonly dir: string;
  /** config.yaml (absolute) or null when the folder has none (bare GemmaScope npz tree). */
  readonly configFile: string | null;
  readonly modelName?: string;
  readonly nLayers: number;
  readonly dModel: number;
  /** Widest layer's d_t; equal to every entry of `dTranscoderPerLayer` when they agree. */
  readonly dTranscoder: number;
  readonly dTranscoderPerLayer: readonly number[];
  /** Hook names without the `blocks.{l}.` prefix, e.g. 'ln2.hook_normalized', 'hook_mlp_out'. */
  readonly readHook: string;
  readonly writeHook: string;
  readonly activation: TranscoderActivation;
  /** True when at least one layer has W_skip (see `skipFloat32`). */
  readonly hasSkip: boolean;

  /** The files holding layer l's tensors (absolute), for messages and cache keys. */
  layerFiles(l: number): readonly string[];
  /** Layer l's tensors as stored. */
  layerTensors(l: number): LayerTensors;
  /** A cheap stable key of the set's content: file names, sizes and mtimes. */
  contentKey(): string;

  encoderInfo(l: number): EncoderInfo;
  /** W_enc of layer l as [d_t, d] row-major (pre = x·W_encᵀ + b_enc). */
  encoderFloat32(l: number): Float32Array;
  /**
   * W_enc of layer l in its stored orientation (`encoderInfo(l).encoderTransposed`: [d, d_t]),
   * into `out` when given.
   */
  encoderStoredFloat32(l: number, out?: Float32Array): Float32Array;
  /** Rows of W_enc [n, d] for the given features, reading only their bytes where the storage allows. */
  encoderRowsFloat32(l: number, featureIdx: readonly number[]): Float32Array;
  /** b_enc [d_t]. */
  encoderBiasFloat32(l: number): Float32Array;
  /** JumpReLU threshold [d_t], or null when the set's activation is not JumpReLU. */
  thresholdFloat32(l: number): Float32Array | null;
  /** b_dec [d]: PLT the layer's decoder bias; CLT the bias of output layer l. */
  decoderBiasFloat32(l: number): Float32Array;
  /** W_skip [d, d] (applied x·W_skipᵀ), or null. */
  skipFloat32(l: number): Float32Array | null;
  /**
   * Decoder rows of the given features, reading only their bytes where the storage allows:
   * PLT [n, d]; CLT [n, L−l, d] (slot j writes layer l+j).
   */
  decoderRowsFloat32(l: number, featureIdx: readonly number[]): Float32Array;
  close(): void;
}
