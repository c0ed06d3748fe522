/**
 * Feature detail records ("dashboards"), with the field names of attribution.md §6 — the
 * ones circuit-tracer's feature files and Neuronpedia use — plus a few extra fields of ours
 * (marked below) that the ecosystem's readers ignore.
 */

export interface FeatureExample {
  /** Token strings of the context (centred on the max token, clipped at window edges). */
  tokens: string[];
  /** The feature's activation at each context token. */
  tokens_acts_list: number[];
  /** Index in `tokens` of the token the example was selected for (its max). */
  train_token_ind: number;
  /** True when another example of the same feature has the identical token context. */
  is_repeated_datapoint: boolean;
  /** Extra: token ids of `tokens` (absent in imported files that lack them). */
  token_ids?: number[];
}

export interface ExampleGroup {
  quantile_name: string;
  examples: FeatureExample[];
}

export interface QuantileValue {
  quantile: number;
  value: number;
}

export interface ActivationHistogram {
  /** B + 1 edges, ascending; bins are [e_i, e_{i+1}) except the last, which is closed. */
  bin_edges: number[];
  /** B counts of positive activations (estimates when `exact` is false). */
  counts: number[];
  /** True when every positive activation was counted (none subsampled). */
  exact: boolean;
}

export interface FeatureRecord {
  /** Feature index within its layer. */
  index: number;
  /** Extra: the transcoder layer (PLT) or source layer (CLT). */
  layer: number;
  /** Extra: Cantor pairing of (layer, index), circuit-tracer's file name for the feature. */
  feature: number;
  examples_quantiles: ExampleGroup[];
  /** Token strings promoted most by the decoder direction (W_dec[f]·W_Uᵀ), best first. */
  top_logits: string[];
  /** Token strings suppressed most, most negative first. */
  bottom_logits: string[];
  /** Extra: ids and values parallel to top_logits / bottom_logits. */
  top_logit_ids?: number[];
  top_logit_values?: number[];
  bottom_logit_ids?: number[];
  bottom_logit_values?: number[];
  /** Smallest activation over every token seen (0 whenever the feature was ever inactive). */
  act_min: number;
  act_max: number;
  /** Quantiles of the positive activations. */
  quantile_values: QuantileValue[];
  histogram: ActivationHistogram | null;
  /** Fraction of tokens (BOS excluded) where the activation is > 0. */
  activation_frequency: number;
  /** Extra: number of tokens with a > 0, and the number of tokens seen. */
  activation_count?: number;
  token_count?: number;
}

export const TOP_ACTIVATIONS = 'Top activations';
export const DEFAULT_QUANTILES: readonly number[] = [0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999];
