/** Small display helpers. */
import type { TraceProgress, ViewNode } from '../api/types.ts';

export function fmtNum(v: number | null | undefined, digits = 3): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '—';
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(2);
  return v.toFixed(digits);
}

export function fmtPct(v: number | null | undefined, digits = 1): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '—';
  return `${(v * 100).toFixed(digits)}%`;
}

/**
 * A probability as a percentage with two significant digits: 0.37 → "37%", 0.0037 → "0.37%",
 * 0.00083 → "0.083%" (never "0.00", never exponents above 1e-6 %).
 */
export function fmtProb(p: number | null | undefined): string {
  if (p === null || p === undefined || !Number.isFinite(p)) return '—';
  const pct = p * 100;
  if (pct === 0) return '0%';
  return `${Number(pct.toPrecision(2))}%`;
}

export function fmtTime(ms: number): string {
  return new Date(ms).toLocaleString(undefined, { dateStyle: 'short', timeStyle: 'short' });
}

export function fmtEta(s: number | undefined): string {
  if (s === undefined || !Number.isFinite(s)) return '';
  if (s < 60) return `${Math.round(s)} s left`;
  return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s left`;
}

export function progressText(p: TraceProgress | null | undefined): string {
  if (!p) return 'waiting…';
  const frac = p.total > 0 ? ` ${p.done}/${p.total}` : '';
  const eta = fmtEta(p.etaSeconds);
  return `${p.phase}${frac}${eta ? ` · ${eta}` : ''}`;
}

export function kindName(n: ViewNode): string {
  switch (n.kind) {
    case 'feature':
      return 'Feature';
    case 'error':
      return 'Error (MLP reconstruction)';
    case 'token':
      return 'Token (embedding)';
    case 'logit':
      return 'Logit';
  }
}

/** "L3 · pos 4" style locator. */
export function where(n: ViewNode): string {
  if (n.kind === 'token') return `pos ${n.position}`;
  if (n.kind === 'logit') return 'output';
  return `L${n.layer} · pos ${n.position}`;
}

/** Shows a token with visible whitespace. */
export function showToken(t: string | null | undefined): string {
  if (t === null || t === undefined) return '';
  return t.replace(/ /g, '·').replace(/\n/g, '⏎');
}
