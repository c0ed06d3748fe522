/**
 * Node ids and derived fields of the circuit-tracer / Neuronpedia graph JSON
 * (attribution.md §6; circuit-tracer `frontend/graph_models.py`):
 *
 * | kind    | node_id            | feature          | layer  | jsNodeId          |
 * |---------|--------------------|------------------|--------|-------------------|
 * | feature | `{l}_{f}_{p}`      | cantor(l, f)     | `"l"`  | `{l}_{f}-0`       |
 * | error   | `{l}_-1_{p}`       | -1               | `"l"`  | `{l}_-1-{p}`      |
 * | token   | `E_{tok}_{p}`      | p                | `"E"`  | `E_{tok}-{p}`     |
 * | logit   | `{L+1}_{tok}_{T-1}`| tok              | `"L+1"`| `L_{tok}-{T-1}`   |
 *
 * Older files wrote error ids as `0_{l}_{p}` (which collides with a layer-0 feature id; only
 * feature_type tells them apart); the importer accepts and converts them. The error jsNodeId
 * `{l}_-1-{p}` is circuit-tracer's current form (older versions wrote `{l}_{p}-0`, which
 * aliased a feature's jsNodeId); a feature's jsNodeId is shared by that feature at every
 * position, by design (the frontend groups a feature across positions with it).
 */
import { EngineError } from '../errors.ts';

export type NodeKind = 'feature' | 'error' | 'token' | 'logit';

export const FEATURE_TYPE: Readonly<Record<NodeKind, string>> = {
  feature: 'cross layer transcoder',
  error: 'mlp reconstruction error',
  token: 'embedding',
  logit: 'logit',
};

export function kindOfFeatureType(featureType: string): NodeKind | undefined {
  switch (featureType) {
    case FEATURE_TYPE.feature:
      return 'feature';
    case FEATURE_TYPE.error:
      return 'error';
    case FEATURE_TYPE.token:
      return 'token';
    case FEATURE_TYPE.logit:
      return 'logit';
    default:
      return undefined;
  }
}

function checkIndex(x: number, name: string): void {
  if (!Number.isSafeInteger(x) || x < 0) {
    throw new EngineError('argument', `${name} must be a non-negative integer, got ${x}`, { field: name });
  }
}

/** Cantor pairing (l + f)(l + f + 1)/2 + f of a feature's (layer, index). */
export function cantorPair(layer: number, index: number): number {
  checkIndex(layer, 'layer');
  checkIndex(index, 'index');
  const s = layer + index;
  const v = (s * (s + 1)) / 2 + index;
  if (!Number.isSafeInteger(v)) {
    throw new EngineError('argument', `cantor pairing of (${layer}, ${index}) exceeds 2^53`, {
      field: 'feature',
    });
  }
  return v;
}

export const featureNodeId = (layer: number, index: number, pos: number) => `${layer}_${index}_${pos}`;
export const errorNodeId = (layer: number, pos: number) => `${layer}_-1_${pos}`;
export const legacyErrorNodeId = (layer: number, pos: number) => `0_${layer}_${pos}`;
export const embeddingNodeId = (tokenId: number, pos: number) => `E_${tokenId}_${pos}`;
/** `nLayers` is the model's layer count; a logit's layer is nLayers + 1. */
export const logitNodeId = (nLayers: number, tokenId: number, pos: number) =>
  `${nLayers + 1}_${tokenId}_${pos}`;

export const featureJsNodeId = (layer: number, index: number) => `${layer}_${index}-0`;
export const errorJsNodeId = (layer: number, pos: number) => `${layer}_-1-${pos}`;
export const embeddingJsNodeId = (tokenId: number, pos: number) => `E_${tokenId}-${pos}`;
export const logitJsNodeId = (tokenId: number, pos: number) => `L_${tokenId}-${pos}`;

export interface ParsedNodeId {
  kind: NodeKind;
  /** Feature / error: transcoder layer; token: -1; logit: nLayers + 1. */
  layer: number;
  /** Feature: feature index; error: -1; token and logit: vocabulary id. */
  index: number;
  /** Context position (ctx_idx). */
  position: number;
  /** The id used the older error form `0_{layer}_{pos}`. */
  legacy: boolean;
}

// Canonical non-negative decimal integers, at most 9 digits (so every value is exact).
const NUM = '(0|[1-9][0-9]{0,8})';
const RE_TRIPLE = new RegExp(`^${NUM}_${NUM}_${NUM}$`);
const RE_ERROR = new RegExp(`^${NUM}_-1_${NUM}$`);
const RE_EMBED = new RegExp(`^E_${NUM}_${NUM}$`);

/** Parses a node id given its feature_type; null when the id does not fit the type. */
export function parseNodeId(id: string, kind: NodeKind): ParsedNodeId | null {
  let m: RegExpExecArray | null;
  switch (kind) {
    case 'feature':
      m = RE_TRIPLE.exec(id);
      return m ? { kind, layer: +m[1], index: +m[2], position: +m[3], legacy: false } : null;
    case 'error':
      m = RE_ERROR.exec(id);
      if (m) return { kind, layer: +m[1], index: -1, position: +m[2], legacy: false };
      m = RE_TRIPLE.exec(id);
      return m && m[1] === '0' ? { kind, layer: +m[2], index: -1, position: +m[3], legacy: true } : null;
    case 'token':
      m = RE_EMBED.exec(id);
      return m ? { kind, layer: -1, index: +m[1], position: +m[2], legacy: false } : null;
    case 'logit':
      m = RE_TRIPLE.exec(id);
      return m ? { kind, layer: +m[1], index: +m[2], position: +m[3], legacy: false } : null;
  }
}

/** circuit-tracer's `process_token`: makes newlines, tabs and carriage returns visible. */
export function processToken(token: string): string {
  return token.replace(/\n/g, '⏎').replace(/\t/g, '→').replace(/\r/g, '↵');
}

/**
 * Python's `f"{p:.3f}"` (correct rounding of the exact binary value, ties to even). JS
 * `toFixed` agrees except on exact ties, which it rounds up; for |x| < 2^21 an exact tie at the
 * third decimal is an odd multiple of 1/16 (x·10⁴ ends in 5 and x is dyadic).
 */
export function formatFixed3(x: number): string {
  if (!Number.isFinite(x)) throw new EngineError('argument', `cannot format ${x}`, { field: 'token_prob' });
  const s16 = x * 16; // exact for |x| < 2^1019
  if (Number.isInteger(s16) && Math.abs(s16) % 2 === 1 && Math.abs(x) < 2 ** 21) {
    const scaled = Math.abs(x) * 1000; // exact: x·1000 = k + 0.5 with small k
    let n = Math.floor(scaled);
    if (n % 2 === 1) n += 1;
    const sign = x < 0 ? '-' : '';
    const int = Math.floor(n / 1000);
    const frac = String(n % 1000).padStart(3, '0');
    return `${sign}${int}.${frac}`;
  }
  if (Object.is(x, -0)) return '-0.000';
  return x.toFixed(3);
}

/** A logit's clerp: `Output " tok" (p=0.123)`. */
export function logitClerp(token: string, probability: number): string {
  return `Output "${processToken(token)}" (p=${formatFixed3(probability)})`;
}
