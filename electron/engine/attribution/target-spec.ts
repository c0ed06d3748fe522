/**
 * Attribution targets chosen by the caller, in place of the top logits (circuit-tracer's
 * `attribution_targets`). Each target is a direction at the unembedding's input (the final
 * norm's output), and its value is that direction · the unembedding input at the last position:
 *
 *   - `{token}`: u_k − mean_v u_v, the demeaned logit of one token (as the default targets);
 *   - `{label, weights: {tok: c}}`: Σ c·(u_k − mean), e.g. {" Austin": 1, " Dallas": −1} is the
 *     logit difference. The map is linear, so its edges are the same combination of the tokens' edges;
 *   - `{label, vector}`: any direction of d_model floats (not demeaned).
 *
 * Each target becomes a logit node. A token target keeps its token id (the node id is the same
 * as in a default graph); a combination or vector target gets the virtual id vocab + k (k its
 * index in the list), as circuit-tracer gives custom targets `vocab_size + position`.
 *
 * Influence weights (the `probability` of the logit node, its `token_prob` in graph JSON).
 * circuit-tracer (circuit_tracer/attribution/targets.py, `AttributionTargets`) weights token
 * targets by their softmax probability (`_compute_logit_vecs`) and custom targets by the
 * probability the caller gives (`CustomTarget.prob`, `_from_tuple`). Here likewise:
 *   - a token: its softmax probability;
 *   - any target with `weight`: that weight (circuit-tracer's CustomTarget.prob);
 *   - a combination without `weight`: the summed probability of its positive-coefficient tokens
 *     (the probability of the answers it argues for);
 *   - a vector without `weight`: 1 / (number of targets), a uniform weight, there being no probability.
 */
import { EngineError } from '../errors.ts';

export type AttributionTargetSpec =
  | { token: string | number; weight?: number }
  | { label: string; weights: Readonly<Record<string, number>>; weight?: number }
  | { label: string; vector: Float32Array; weight?: number };

/** At most this many targets (each is one backward row and one logit node). */
export const MAX_TARGETS = 256;
/** Terms of one weighted combination at most. */
export const MAX_TARGET_TERMS = 1024;

/** Token strings ↔ ids for resolving targets. */
export interface TargetVocabulary {
  /** Size of the model's vocabulary (logits). */
  size: number;
  /** The one token id that `text` is, or an explanation of why it is not one token. */
  tokenOf(text: string): number | { error: string };
  name(id: number): string;
}

/** A target in terms of the model: a combination of token directions, or a raw direction. */
export interface ResolvedTarget {
  /** Real token id (token targets), else vocab + index (circuit-tracer's virtual index). */
  tokenId: number;
  /** The node's label: the token string, or the given label. */
  label: string;
  /** u-direction terms (token and combination targets). */
  terms: { tokenId: number; coefficient: number }[] | null;
  /** Raw direction at the unembedding input (vector targets). */
  vector: Float32Array | null;
  /** Caller-given influence weight, if any. */
  weight: number | null;
}

function targetError(k: number, spec: unknown, message: string): never {
  const s = spec as { label?: unknown; token?: unknown } | null;
  const name =
    s && typeof s.label === 'string'
      ? ` (${JSON.stringify(s.label)})`
      : s && (typeof s.token === 'string' || typeof s.token === 'number')
        ? ` (token ${JSON.stringify(s.token)})`
        : '';
  throw new EngineError('argument', `target ${k}${name}: ${message}`, { field: `targets[${k}]` });
}

function tokenId(k: number, spec: unknown, token: unknown, vocab: TargetVocabulary, what: string): number {
  if (typeof token === 'number') {
    if (!Number.isInteger(token) || token < 0 || token >= vocab.size)
      targetError(k, spec, `${what} id ${token} is not in [0, ${vocab.size})`);
    return token;
  }
  if (typeof token !== 'string' || token === '')
    targetError(k, spec, `${what} must be a non-empty string or a token id`);
  const id = vocab.tokenOf(token);
  if (typeof id !== 'number') targetError(k, spec, `${what} ${JSON.stringify(token)} ${id.error}`);
  return id;
}

/** Checks the specs against the model (vocabulary, d_model) and resolves their tokens. */
export function resolveTargetSpecs(
  specs: readonly AttributionTargetSpec[],
  vocab: TargetVocabulary,
  dModel: number,
): ResolvedTarget[] {
  if (!Array.isArray(specs) || specs.length === 0)
    throw new EngineError('argument', 'targets must be a non-empty list', { field: 'targets' });
  if (specs.length > MAX_TARGETS)
    throw new EngineError('argument', `at most ${MAX_TARGETS} targets, got ${specs.length}`, {
      field: 'targets',
    });
  const out: ResolvedTarget[] = [];
  const seenTokens = new Set<number>();
  const seenLabels = new Set<string>();
  specs.forEach((spec, k) => {
    if (typeof spec !== 'object' || spec === null) targetError(k, spec, 'must be an object');
    const s = spec as Record<string, unknown>;
    let weight: number | null = null;
    if (s.weight !== undefined && s.weight !== null) {
      if (typeof s.weight !== 'number' || !Number.isFinite(s.weight) || s.weight < 0)
        targetError(k, spec, `weight must be a finite number ≥ 0, got ${String(s.weight)}`);
      weight = s.weight;
    }
    const kinds = ['token', 'weights', 'vector'].filter((key) => s[key] !== undefined);
    if (kinds.length !== 1) targetError(k, spec, 'needs exactly one of "token", "weights" or "vector"');
    if (kinds[0] === 'token') {
      const id = tokenId(k, spec, s.token, vocab, 'token');
      if (seenTokens.has(id)) targetError(k, spec, `token ${id} is already a target`);
      seenTokens.add(id);
      out.push({
        tokenId: id,
        label: vocab.name(id),
        terms: [{ tokenId: id, coefficient: 1 }],
        vector: null,
        weight,
      });
      return;
    }
    if (typeof s.label !== 'string' || s.label.trim() === '')
      targetError(k, spec, 'needs a non-empty "label"');
    const label = s.label;
    if (seenLabels.has(label)) targetError(k, spec, 'another target has the same label');
    seenLabels.add(label);
    const virtual = vocab.size + k;
    if (kinds[0] === 'weights') {
      const w = s.weights;
      if (typeof w !== 'object' || w === null || Array.isArray(w))
        targetError(k, spec, '"weights" must be an object {token: coefficient}');
      const entries = Object.entries(w as Record<string, unknown>);
      if (entries.length === 0) targetError(k, spec, '"weights" is empty');
      if (entries.length > MAX_TARGET_TERMS)
        targetError(k, spec, `"weights" has ${entries.length} terms, at most ${MAX_TARGET_TERMS}`);
      const byId = new Map<number, number>();
      for (const [tok, c] of entries) {
        if (typeof c !== 'number' || !Number.isFinite(c))
          targetError(k, spec, `coefficient of ${JSON.stringify(tok)} must be a finite number`);
        const id = tokenId(k, spec, tok, vocab, 'weights token');
        if (byId.has(id)) targetError(k, spec, `weights name token ${id} twice`);
        byId.set(id, c);
      }
      if ([...byId.values()].every((c) => c === 0)) targetError(k, spec, 'every coefficient is 0');
      const terms = [...byId].map(([tokenId, coefficient]) => ({ tokenId, coefficient }));
      out.push({ tokenId: virtual, label, terms, vector: null, weight });
      return;
    }
    const v = s.vector;
    if (!(v instanceof Float32Array)) targetError(k, spec, '"vector" must be a Float32Array');
    if (v.length !== dModel)
      targetError(k, spec, `vector has ${v.length} entries, the model's d_model is ${dModel}`);
    if (!v.every(Number.isFinite)) targetError(k, spec, 'vector has a non-finite entry');
    if (v.every((x) => x === 0)) targetError(k, spec, 'vector is all zeros');
    out.push({ tokenId: virtual, label, terms: null, vector: v, weight });
  });
  return out;
}

/** A target's influence weight (see the file comment). `probs(id)` is the softmax probability. */
export function targetWeight(t: ResolvedTarget, nTargets: number, probs: (id: number) => number): number {
  if (t.weight !== null) return t.weight;
  if (t.vector) return 1 / nTargets;
  let w = 0;
  for (const { tokenId, coefficient } of t.terms ?? []) if (coefficient > 0) w += probs(tokenId);
  return w;
}

/**
 * Token strings resolved with a tokenizer (`encode` without special tokens must give exactly
 * one id), or, for a model folder without one, the `<id>` names that tokenNamer gives.
 */
export function targetVocabulary(
  size: number,
  tokenizer: {
    encode(text: string, o: { addSpecialTokens: boolean }): number[];
    tokenToString(id: number): string;
  } | null,
): TargetVocabulary {
  const bare = (text: string) => {
    const m = /^<(\d+)>$/.exec(text);
    return m ? Number(m[1]) : null;
  };
  return {
    size,
    tokenOf(text) {
      if (!tokenizer) {
        const id = bare(text);
        if (id === null || id >= size)
          return { error: 'is not a token: the model has no tokenizer, name tokens <id>' };
        return id;
      }
      const ids = tokenizer.encode(text, { addSpecialTokens: false });
      if (ids.length !== 1)
        return {
          error: `is ${ids.length} tokens (${ids.map((i) => JSON.stringify(tokenizer.tokenToString(i))).join(' ')}), not one`,
        };
      if (ids[0] >= size) return { error: `is token ${ids[0]}, beyond the model's vocabulary (${size})` };
      return ids[0];
    },
    name: (id) => (tokenizer ? tokenizer.tokenToString(id) : `<${id}>`),
  };
}

/**
 * The logit token ids of a graph that are real tokens (interventions track them), given the
 * trace's targets: every id without targets; the token targets' ids with them.
 */
export function realLogitTokens(
  logitTokenIds: ArrayLike<number>,
  targets: readonly object[] | null | undefined,
): number[] {
  const ids = Array.from(logitTokenIds);
  if (!targets) return ids;
  return ids.filter((_, k) => targets[k] !== undefined && 'token' in targets[k]);
}
