/**
 * Consistency checks: a layer's tensors against each other (b_enc length vs W_enc, W_dec
 * orientation, CLT decoder slots = L−l, threshold length, W_skip [d, d]), and a whole set
 * against the model it is used with (width, layer count, hooks).
 */
import path from 'node:path';
import { isFloatDType } from '../checkpoint/dtype.ts';
import type { TensorInfo } from '../checkpoint/tensor.ts';
import { EngineError } from '../errors.ts';
import { gemmaScopePattern } from './discover.ts';
import type { LayerTensors, TranscoderKind, TranscoderSet } from './types.ts';

export interface LayerGeometry {
  dTranscoder: number;
  dModel: number;
  /** W_enc stored [d, d_t]. */
  encoderTransposed: boolean;
  /** PLT W_dec stored [d, d_t] (always false for a CLT). */
  decoderTransposed: boolean;
}

export interface OrientationDefaults {
  encoderTransposed: boolean;
  decoderTransposed: boolean;
}

/**
 * Most features one layer may have (d_sae / d_t). Published transcoders have up to 2^18 per
 * layer; a larger width is refused at load, before any weight is read (an npz of zeros with a
 * huge d_sae otherwise passes and drives a trace to gigabytes).
 */
export const MAX_FEATURES_PER_LAYER = 2 ** 20;

const shapeStr = (info: TensorInfo): string => `[${info.shape.join(', ')}]`;
const where = (info: TensorInfo) => ({ file: info.sourceFile, tensor: info.name });
const numel = (info: TensorInfo): number => info.shape.reduce((a, b) => a * b, 1);

/** false: stored [dT, d]; true: stored [d, dT]; null: neither. dT == d → the layout's default. */
function orient(info: TensorInfo, dT: number, d: number, byDefault: boolean): boolean | null {
  if (info.shape.length !== 2) return null;
  const [a, b] = info.shape;
  const normal = a === dT && b === d;
  const transposed = a === d && b === dT;
  if (normal && transposed) return byDefault;
  if (normal) return false;
  if (transposed) return true;
  return null;
}

/**
 * Check one layer's tensors against each other. `nLayers` is the set's layer count (a CLT
 * decoder of layer l must have L−l slots). Returns the layer's geometry when consistent.
 */
export function checkLayerTensors(
  kind: TranscoderKind,
  layer: number,
  nLayers: number,
  t: LayerTensors,
  defaults: OrientationDefaults,
): { geometry: LayerGeometry | null; problems: EngineError[] } {
  const problems: EngineError[] = [];
  const bad = (info: TensorInfo, msg: string) =>
    problems.push(new EngineError('shape', `layer ${layer}: ${msg}`, where(info)));

  for (const info of [t.W_enc, t.b_enc, t.W_dec, t.b_dec, t.threshold, t.W_skip]) {
    if (info && !isFloatDType(info.dtype)) {
      problems.push(
        new EngineError(
          'dtype',
          `layer ${layer}: ${info.name} is ${info.dtype}, transcoder weights must be a float dtype`,
          where(info),
        ),
      );
    }
  }
  if (problems.length > 0) return { geometry: null, problems };
  if (t.b_enc.shape.length !== 1) bad(t.b_enc, `${t.b_enc.name} must be 1-D [d_t], got ${shapeStr(t.b_enc)}`);
  if (t.b_dec.shape.length !== 1) bad(t.b_dec, `${t.b_dec.name} must be 1-D [d], got ${shapeStr(t.b_dec)}`);
  if (problems.length > 0) return { geometry: null, problems };
  const dT = t.b_enc.shape[0];
  const d = t.b_dec.shape[0];
  if (dT > MAX_FEATURES_PER_LAYER) {
    problems.push(
      new EngineError(
        'bounds',
        `layer ${layer}: ${t.b_enc.name} declares ${dT} features, more than the ` +
          `${MAX_FEATURES_PER_LAYER} (2^20) per layer the engine accepts`,
        where(t.b_enc),
      ),
    );
    return { geometry: null, problems };
  }

  const enc = orient(t.W_enc, dT, d, defaults.encoderTransposed);
  if (enc === null) {
    if (t.W_enc.shape.length === 2 && t.W_enc.shape.includes(d)) {
      bad(
        t.b_enc,
        `${t.b_enc.name} has length ${dT} but ${t.W_enc.name} is ${shapeStr(t.W_enc)} ` +
          `(d = ${d} from ${t.b_dec.name}): expected ${t.W_enc.name} [${dT}, ${d}] or [${d}, ${dT}]`,
      );
    } else {
      bad(
        t.W_enc,
        `${t.W_enc.name} is ${shapeStr(t.W_enc)}, expected [${dT}, ${d}] or [${d}, ${dT}] ` +
          `(d_t = ${dT} from ${t.b_enc.name}, d = ${d} from ${t.b_dec.name})`,
      );
    }
  }

  let dec: boolean | null = false;
  if (kind === 'plt') {
    dec = orient(t.W_dec, dT, d, defaults.decoderTransposed);
    if (dec === null) {
      bad(
        t.W_dec,
        `${t.W_dec.name} is ${shapeStr(t.W_dec)}, expected [${dT}, ${d}] or [${d}, ${dT}] ` +
          `(d_t = ${dT} from ${t.b_enc.name}, d = ${d} from ${t.b_dec.name})`,
      );
    }
  } else {
    const s = t.W_dec.shape;
    const slots = nLayers - layer;
    if (s.length !== 3) {
      bad(
        t.W_dec,
        `${t.W_dec.name} must be [d_t, L−l, d] = [${dT}, ${slots}, ${d}], got ${shapeStr(t.W_dec)}`,
      );
    } else {
      if (s[0] !== dT) bad(t.W_dec, `${t.W_dec.name} has ${s[0]} rows but ${t.b_enc.name} has length ${dT}`);
      if (s[1] !== slots) {
        bad(
          t.W_dec,
          `${t.W_dec.name} has ${s[1]} output slots, expected L−l = ${nLayers}−${layer} = ${slots} ` +
            `(slot j writes layer l+j; the folder has ${nLayers} layers)`,
        );
      }
      if (s[2] !== d) bad(t.W_dec, `${t.W_dec.name} has width ${s[2]} but ${t.b_dec.name} has length ${d}`);
    }
  }

  if (t.threshold && numel(t.threshold) !== dT) {
    bad(
      t.threshold,
      `${t.threshold.name} is ${shapeStr(t.threshold)} but ${t.b_enc.name} has length ${dT} (one threshold per feature)`,
    );
  }
  if (t.W_skip && !(t.W_skip.shape.length === 2 && t.W_skip.shape[0] === d && t.W_skip.shape[1] === d)) {
    bad(t.W_skip, `${t.W_skip.name} is ${shapeStr(t.W_skip)}, expected [${d}, ${d}]`);
  }
  if (t.k && numel(t.k) !== 1) bad(t.k, `${t.k.name} must hold one value, got ${shapeStr(t.k)}`);

  if (problems.length > 0 || enc === null || dec === null) return { geometry: null, problems };
  return {
    geometry: { dTranscoder: dT, dModel: d, encoderTransposed: enc, decoderTransposed: dec },
    problems,
  };
}

/** What validateTranscodersForModel needs to know about the model. */
export interface ModelForTranscoders {
  nLayers: number;
  hiddenSize: number;
  family: string;
  /** Hook names (without `blocks.{l}.`) the engine can read from / write to for this model. */
  supportedHooks: readonly string[];
}

/** The file a layer beyond the set's last would be in (for 'missing layer' messages). */
function expectedLayerFile(set: TranscoderSet, l: number): string {
  if (set.layout === 'clt') return path.join(set.dir, `W_enc_${l}.safetensors`);
  if (set.layout === 'gemmascope') return gemmaScopePattern(set.dir, l);
  return path.join(set.dir, `layer_${l}.safetensors`);
}

/**
 * Every reason the set does not fit the model (or itself), as EngineErrors: 'shape' for
 * internal inconsistencies, 'mismatch' for the model. Empty when it fits.
 */
export function transcoderModelProblems(set: TranscoderSet, model: ModelForTranscoders): EngineError[] {
  const problems: EngineError[] = [];
  const configFile = set.configFile ?? set.dir;

  // internal consistency
  for (let l = 0; l < set.nLayers; l++) {
    const t = set.layerTensors(l);
    const { geometry, problems: p } = checkLayerTensors(set.kind, l, set.nLayers, t, {
      encoderTransposed: false,
      decoderTransposed: false,
    });
    problems.push(...p);
    if (geometry && geometry.dModel !== set.dModel) {
      problems.push(
        new EngineError(
          'shape',
          `layer ${l}: ${t.b_dec.name} has length ${geometry.dModel} but the set's width is ${set.dModel}`,
          where(t.b_dec),
        ),
      );
    }
  }

  // width
  if (set.dModel !== model.hiddenSize && set.nLayers > 0) {
    const w = set.layerTensors(0).W_enc;
    problems.push(
      new EngineError(
        'mismatch',
        `transcoder width ${set.dModel} (${w.name} ${shapeStr(w)}) does not match the ${model.family} ` +
          `model's hidden size ${model.hiddenSize}`,
        where(w),
      ),
    );
  }

  // layer count
  if (set.nLayers < model.nLayers) {
    const missing =
      set.nLayers === model.nLayers - 1
        ? `layer ${set.nLayers}`
        : `layers ${set.nLayers}..${model.nLayers - 1}`;
    problems.push(
      new EngineError(
        'mismatch',
        `the transcoder set has ${set.nLayers} layers but the ${model.family} model has ${model.nLayers}: ` +
          `missing ${missing} (${configFile})`,
        { file: expectedLayerFile(set, set.nLayers), field: 'transcoders' },
      ),
    );
  } else if (set.nLayers > model.nLayers) {
    problems.push(
      new EngineError(
        'mismatch',
        `the transcoder set has ${set.nLayers} layers but the ${model.family} model has only ${model.nLayers} ` +
          `(${set.layerFiles(model.nLayers).join(', ')} has no layer to attach to)`,
        { file: configFile, field: 'transcoders' },
      ),
    );
  }

  // hooks
  const hookProblem = (hook: string, field: string) => {
    if (!model.supportedHooks.includes(hook)) {
      problems.push(
        new EngineError(
          'mismatch',
          `hook ${hook} is not supported for ${model.family} models (supported: ${model.supportedHooks.join(', ')})`,
          { file: configFile, field },
        ),
      );
    }
  };
  hookProblem(set.readHook, 'feature_input_hook');
  hookProblem(set.writeHook, 'feature_output_hook');
  return problems;
}

/** Throws the first of transcoderModelProblems (mentioning how many more there are). */
export function validateTranscodersForModel(set: TranscoderSet, model: ModelForTranscoders): void {
  const problems = transcoderModelProblems(set, model);
  if (problems.length === 0) return;
  const first = problems[0];
  if (problems.length === 1) throw first;
  const more = problems
    .slice(1)
    .map((p) => p.message)
    .join('; ');
  // EngineError appends "(file …, tensor …, field …)": drop it, the new error adds it back
  const suffix = [
    first.file ? `file ${first.file}` : '',
    first.tensor ? `tensor ${first.tensor}` : '',
    first.field ? `field ${first.field}` : '',
  ]
    .filter(Boolean)
    .join(', ');
  const base =
    suffix && first.message.endsWith(` (${suffix})`)
      ? first.message.slice(0, -(suffix.length + 3))
      : first.message;
  throw new EngineError(first.code, `${base} [and ${problems.length - 1} more: ${more}]`, {
    file: first.file,
    tensor: first.tensor,
    field: first.field,
  });
}
