/**
 * The attribution parameters of the trace form: text fields, their inline validation (the
 * same bounds as the API's schema), and conversion to the API's TraceSettingsInput.
 */
import { DEFAULT_SETTINGS, type TraceSettings, type TraceSettingsInput } from '../api/types.ts';

export interface SettingsFields {
  maxNLogits: string;
  desiredLogitProb: string;
  maxFeatureNodes: string;
  batchSize: string;
  nodeThreshold: string;
  edgeThreshold: string;
  provider: 'cpu' | 'webgpu' | 'cuda' | 'auto';
}

export type SettingsErrors = Partial<Record<keyof SettingsFields, string>>;

export const FIELD_HELP: Record<keyof SettingsFields, string> = {
  maxNLogits: 'Most logits to explain (1–1000).',
  desiredLogitProb: 'Explain the top logits up to this cumulative probability (0–1].',
  maxFeatureNodes: `Most features attributed, the most influential first (empty = ${DEFAULT_SETTINGS.maxFeatureNodes}, the default; more than are active = all).`,
  batchSize: 'Targets per backward batch (1–65536).',
  nodeThreshold: 'Cumulative influence share kept among nodes [0–1].',
  edgeThreshold: 'Cumulative score share kept among edges [0–1].',
  provider: 'Execution provider.',
};

export function fieldsFrom(s: Partial<TraceSettings> = {}): SettingsFields {
  const v = { ...DEFAULT_SETTINGS, ...s };
  const provider = (['cpu', 'webgpu', 'cuda', 'auto'] as const).find((p) => p === v.provider) ?? 'cpu';
  return {
    maxNLogits: String(v.maxNLogits),
    desiredLogitProb: String(v.desiredLogitProb),
    maxFeatureNodes: v.maxFeatureNodes === null ? '' : String(v.maxFeatureNodes),
    batchSize: String(v.batchSize),
    nodeThreshold: String(v.nodeThreshold),
    edgeThreshold: String(v.edgeThreshold),
    provider,
  };
}

function int(text: string, min: number, max: number): number | string {
  const t = text.trim();
  if (!/^-?\d+$/.test(t)) return 'a whole number';
  const v = Number(t);
  if (v < min || v > max) return `between ${min} and ${max}`;
  return v;
}

function num(text: string, min: number, max: number, openMin = false): number | string {
  const t = text.trim();
  if (t === '' || !Number.isFinite(Number(t))) return 'a number';
  const v = Number(t);
  if (v < min || v > max || (openMin && v === min))
    return openMin ? `in (${min}, ${max}]` : `in [${min}, ${max}]`;
  return v;
}

export function validateSettings(f: SettingsFields): {
  errors: SettingsErrors;
  value: TraceSettingsInput | null;
} {
  const errors: SettingsErrors = {};
  const out: TraceSettingsInput = { provider: f.provider };
  const take = <K extends keyof SettingsFields>(k: K, r: number | string, set: (v: number) => void) => {
    if (typeof r === 'string') errors[k] = `Must be ${r}.`;
    else set(r);
  };
  take('maxNLogits', int(f.maxNLogits, 1, 1000), (v) => {
    out.maxNLogits = v;
  });
  take('desiredLogitProb', num(f.desiredLogitProb, 0, 1, true), (v) => {
    out.desiredLogitProb = v;
  });
  if (f.maxFeatureNodes.trim() === '') out.maxFeatureNodes = null;
  else
    take('maxFeatureNodes', int(f.maxFeatureNodes, 1, 1_000_000), (v) => {
      out.maxFeatureNodes = v;
    });
  take('batchSize', int(f.batchSize, 1, 65_536), (v) => {
    out.batchSize = v;
  });
  take('nodeThreshold', num(f.nodeThreshold, 0, 1), (v) => {
    out.nodeThreshold = v;
  });
  take('edgeThreshold', num(f.edgeThreshold, 0, 1), (v) => {
    out.edgeThreshold = v;
  });
  return { errors, value: Object.keys(errors).length ? null : out };
}

/** Tags typed as "a, b c" → ['a', 'b c'] (trimmed, unique, 1–64 characters). */
export function parseTags(text: string): { tags: string[]; error: string | null } {
  const tags = [
    ...new Set(
      text
        .split(',')
        .map((t) => t.trim())
        .filter(Boolean),
    ),
  ];
  const bad = tags.find((t) => t.length > 64);
  return { tags, error: bad ? `Tag "${bad.slice(0, 20)}…" is longer than 64 characters.` : null };
}
