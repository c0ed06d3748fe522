/** Visual encoding shared by the WebGL view, the subgraph and the exports. */
import type { NodeKind, ViewNode } from '../api/types.ts';
import { fmtProb } from '../util/format.ts';

export const COLORS = {
  feature: '#e07b24',
  featureFaint: '#f3c9a3',
  error: '#9ca3af',
  token: '#374151',
  logit: '#15803d',
  supernode: '#7c3aed',
  positive: '#2563eb',
  negative: '#dc2626',
  selected: '#0ea5e9',
  pinned: '#fde68a',
  marked: '#d946ef',
  dim: '#e5e7eb',
  background: '#ffffff',
  text: '#111827',
  /** Intervention highlight: rose (pale → strong), fell (pale → strong), the edited features. */
  rosePale: '#bbf7d0',
  rose: '#15803d',
  fellPale: '#fecaca',
  fell: '#b91c1c',
  edited: '#7c3aed',
  unchanged: '#e5e7eb',
} as const;

export type Glyph = 'circle' | 'diamond' | 'square';

export const GLYPH: Record<NodeKind | 'supernode', Glyph> = {
  feature: 'circle',
  error: 'diamond',
  token: 'square',
  logit: 'square',
  supernode: 'circle',
};

/** Display label of a node: its label, else a short name from what it is. */
export function nodeLabel(n: ViewNode): string {
  if (n.kind === 'token') return n.token ?? n.id;
  if (n.kind === 'logit') return n.label || `${JSON.stringify(n.token ?? '')} (p=${fmtProb(n.probability)})`;
  if (n.label) return n.label;
  if (n.autoLabel) return n.autoLabel;
  if (n.kind === 'error') return `err L${n.layer}@${n.position}`;
  return `L${n.layer}/${n.index}`;
}

/** Short label drawn in the graph (logits: the token and its probability). */
export function canvasLabel(n: ViewNode): string {
  if (n.kind === 'logit') return `${JSON.stringify(n.token ?? '')} ${fmtProb(n.probability)}`;
  return nodeLabel(n);
}

/** What a feature's glyph size shows. */
export type NodeSizeBy = 'influence' | 'activation';

const clamp01 = (x: number) => Math.min(1, Math.max(0, x));

/**
 * Glyph size (screen px at zoom 1). Features: by influence (lower cumulative share = more
 * important) or by activation relative to `maxActivation` (the largest in the view); errors by
 * influence; logits by probability.
 */
export function nodeSize(n: ViewNode, by: NodeSizeBy = 'influence', maxActivation = 1): number {
  switch (n.kind) {
    case 'feature':
      if (by === 'activation')
        return 3.5 + 7 * clamp01(Math.abs(n.activation ?? 0) / Math.max(maxActivation, 1e-12));
      return 3.5 + 7 * (1 - clamp01(n.influence ?? 1));
    case 'error':
      return 2.5 + 2.5 * (1 - Math.min(1, Math.max(0, n.influence ?? 1)));
    case 'token':
      return 6;
    case 'logit':
      return 5 + 7 * Math.sqrt(Math.max(0, n.probability ?? 0));
  }
}

export function nodeColor(kind: NodeKind): string {
  return COLORS[kind];
}

/** rgba() of a #rrggbb colour. */
export function withAlpha(hex: string, alpha: number): string {
  const v = Number.parseInt(hex.slice(1), 16);
  return `rgba(${(v >> 16) & 255}, ${(v >> 8) & 255}, ${v & 255}, ${alpha.toFixed(3)})`;
}

/** The colour between two #rrggbb colours at t ∈ [0, 1], as #rrggbb. */
export function mixHex(a: string, b: string, t: number): string {
  const x = Number.parseInt(a.slice(1), 16);
  const y = Number.parseInt(b.slice(1), 16);
  const k = Math.min(1, Math.max(0, t));
  let out = 0;
  for (const shift of [16, 8, 0]) {
    const ca = (x >> shift) & 255;
    const cb = (y >> shift) & 255;
    out |= Math.round(ca + (cb - ca) * k) << shift;
  }
  return `#${out.toString(16).padStart(6, '0')}`;
}

/**
 * Colour of a node under an intervention highlight: edited features violet; others green when
 * they rose, red when they fell, from pale to strong with the relative change (square root, so
 * small changes still show); unchanged ones grey.
 */
export function changeColor(c: {
  direction: 'rose' | 'fell' | 'same';
  intensity: number;
  edited: boolean;
}): string {
  if (c.edited) return COLORS.edited;
  if (c.direction === 'same') return COLORS.unchanged;
  const t = Math.sqrt(Math.min(1, Math.max(0, c.intensity)));
  return c.direction === 'rose'
    ? mixHex(COLORS.rosePale, COLORS.rose, t)
    : mixHex(COLORS.fellPale, COLORS.fell, t);
}

/** Edge width (px) and opacity from |weight| relative to the target's total input. */
export function edgeWidth(rel: number): number {
  return 0.4 + 3.6 * Math.sqrt(Math.min(1, rel));
}

export function edgeAlpha(rel: number): number {
  return 0.18 + 0.62 * Math.sqrt(Math.min(1, rel));
}

/** Relative weight of every edge: |w| / Σ|w| over the edges into its target. */
export function relativeWeights(
  target: ArrayLike<number>,
  weight: ArrayLike<number>,
  nNodes: number,
  mask?: Uint8Array,
): Float32Array {
  const sum = new Float64Array(nNodes);
  const E = weight.length;
  for (let e = 0; e < E; e++) if (!mask || mask[e]) sum[target[e]] += Math.abs(weight[e]);
  const rel = new Float32Array(E);
  for (let e = 0; e < E; e++) {
    const s = sum[target[e]];
    rel[e] = s > 0 ? Math.abs(weight[e]) / s : 0;
  }
  return rel;
}
