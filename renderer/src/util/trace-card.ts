/**
 * What a library card shows to tell traces apart: the part of the prompt that differs from the
 * other listed prompts (a middle ellipsis that keeps the end, where prompts sharing a prefix
 * differ), and how a trace's settings differ from an earlier trace of the same prompt
 * (re-traces, duplicates).
 */
import type { TraceRecord, TraceSettings } from '../api/types.ts';

/** Length of the common prefix of two strings. */
function commonPrefix(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  return i;
}

/** [start, end) of each word (maximal run of non-spaces). */
function wordSpans(s: string): Array<[number, number]> {
  return [...s.matchAll(/\S+/g)].map((m) => [m.index, m.index + m[0].length]);
}

/**
 * The prompt in at most about `max` characters. Short prompts are shown whole. Longer ones keep
 * their first and last words with "…" between (cut at word boundaries); when other prompts
 * share a prefix with this one that ends before the kept end, the words where it leaves that
 * prefix are kept too ("The capital of…Dallas…went home"), so the distinguishing words stay
 * visible.
 */
export function distinguishingPrompt(prompt: string, others: readonly string[], max = 44): string {
  const p = prompt.replace(/\s+/g, ' ').trim();
  if (p.length <= max) return p;
  let shared = 0;
  for (const o of others) {
    const q = o.replace(/\s+/g, ' ').trim();
    if (q !== p) shared = Math.max(shared, commonPrefix(p, q));
  }
  const words = wordSpans(p);
  const wordAt = (i: number) => words.findIndex(([a, b]) => i >= a && i < b + 1);
  // Words from `from` forward while they fit in `budget` characters (at least one).
  const forward = (from: number, budget: number) => {
    let to = from;
    while (to + 1 < words.length && words[to + 1][1] - words[from][0] <= budget) to++;
    return to;
  };
  const backward = (budget: number) => {
    let from = words.length - 1;
    while (from > 0 && words[words.length - 1][1] - words[from - 1][0] <= budget) from--;
    return from;
  };
  const diffWord = shared > 0 ? wordAt(shared) : -1;
  const withDiff = (endFrom: number) => diffWord > 0 && diffWord < endFrom;
  let headTo = forward(0, Math.floor(max * 0.4));
  let endFrom = backward(Math.floor(max * 0.55));
  const ranges: Array<[number, number]> = [];
  if (withDiff(endFrom) && diffWord > headTo + 1) {
    headTo = forward(0, Math.floor(max * 0.3));
    endFrom = backward(Math.floor(max * 0.3));
    const diffTo = Math.min(forward(diffWord, Math.floor(max * 0.3)), endFrom - 1);
    ranges.push([0, headTo], [diffWord, diffTo], [endFrom, words.length - 1]);
  } else ranges.push([0, headTo], [endFrom, words.length - 1]);
  // merge touching ranges, then join with an ellipsis where words were left out
  const merged: Array<[number, number]> = [];
  for (const r of ranges) {
    const last = merged[merged.length - 1];
    if (last && r[0] <= last[1] + 1) last[1] = Math.max(last[1], r[1]);
    else merged.push([...r]);
  }
  const text = merged.map(([a, b]) => p.slice(words[a][0], words[b][1])).join('…');
  return merged.length === 1 ? p : text;
}

/** A prompt cut to at most about `max` characters at a word boundary, with "…" when cut. */
export function shortPrompt(prompt: string, max = 60): string {
  const p = prompt.replace(/\s+/g, ' ').trim();
  if (p.length <= max) return p;
  const cut = p.lastIndexOf(' ', max);
  return `${p.slice(0, cut > max / 2 ? cut : max).trimEnd()}…`;
}

const SETTING_NAMES: Record<string, string> = {
  nodeThreshold: 'nt',
  edgeThreshold: 'et',
  maxNLogits: 'logits',
  desiredLogitProb: 'logit prob',
  maxFeatureNodes: 'max features',
  batchSize: 'batch',
  provider: 'provider',
  targets: 'targets',
};

const show = (v: unknown) =>
  v === null || v === undefined ? 'default' : typeof v === 'object' ? JSON.stringify(v) : String(v);

/** The settings of `t` that differ from `base`'s, as "nt 0.6 (was 0.8)". */
export function settingsDiff(t: TraceSettings, base: TraceSettings): string[] {
  const out: string[] = [];
  const known = Object.keys(SETTING_NAMES);
  const keys = [...new Set([...known, ...Object.keys(t), ...Object.keys(base)])];
  for (const k of keys) {
    const a = (t as unknown as Record<string, unknown>)[k];
    const b = (base as unknown as Record<string, unknown>)[k];
    if (JSON.stringify(a ?? null) === JSON.stringify(b ?? null)) continue;
    out.push(`${SETTING_NAMES[k] ?? k} ${show(a)} (was ${show(b)})`);
  }
  return out;
}

/**
 * How a trace differs from the earliest other trace of the same prompt in `list`: null when
 * there is none, else that trace's id, the settings and model that differ, and whether it is
 * an exact copy (a duplicate: same model and settings).
 */
export function differsFrom(
  t: TraceRecord,
  list: readonly TraceRecord[],
  modelName: (id: number | null) => string,
): { id: number; changes: string[]; copy: boolean } | null {
  const same = list.filter(
    (o) =>
      o.id !== t.id &&
      o.id < t.id &&
      o.prompt === t.prompt &&
      JSON.stringify(o.tokenIds) === JSON.stringify(t.tokenIds),
  );
  if (same.length === 0) return null;
  const base = same.reduce((a, b) => (b.id < a.id ? b : a));
  const changes = settingsDiff(t.settings, base.settings);
  if (t.modelId !== base.modelId)
    changes.unshift(`model ${modelName(t.modelId)} (was ${modelName(base.modelId)})`);
  return { id: base.id, changes, copy: changes.length === 0 };
}
