/**
 * Influence-estimate benchmark (attribution/partial-influence.ts): the host work a capped trace
 * does between its backward rounds, which a GPU waits through. Rows shaped like a gemma-2-2b
 * trace's (26 layers, 11 positions, 30 active features per layer and position: ~7800 features;
 * a feature row reads lower layers at positions ≤ its own, logit rows read everything) are added
 * in rounds of 1024 (batch 256 × 4, as attribute.ts does) with an estimate after each round:
 * once with the trace's own column order (the ordered pass), once with the same rows' columns
 * relabelled in reverse (still acyclic, so the estimate counts each row's readers first, as
 * every estimate did before). Prints the time per round and in all, and the ratio, in one run.
 *
 *   npx tsx bench/influence.ts [--rows 7500] [--per-cell 30]
 */
import { PartialInfluence } from '../electron/engine/attribution/partial-influence.ts';
import { table } from './shared.ts';

const args = process.argv.slice(2);
const opt = (name: string, fallback: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const L = 26;
const T = 11;
const perCell = opt('--per-cell', 30);
const cells: { l: number; p: number }[] = [];
for (let l = 0; l < L; l++)
  for (let p = 1; p < T; p++) for (let i = 0; i < perCell; i++) cells.push({ l, p });
const nActive = cells.length;
const C = nActive + L * T + T;
const nRows = Math.min(opt('--rows', 7500), nActive);
const ROUND = 1024;
const LOGITS = 10;

let seed = 1;
const rand = () => {
  seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
  return seed / 2 ** 32;
};
function traceRow(l: number, p: number): Float32Array {
  const row = new Float32Array(C);
  for (let c = 0; c < nActive; c++) if (cells[c].l < l && cells[c].p <= p) row[c] = rand() - 0.5;
  for (let m = 0; m < l; m++) for (let q = 0; q <= p; q++) row[nActive + m * T + q] = rand() - 0.5;
  for (let q = 0; q <= p; q++) row[nActive + L * T + q] = rand() - 0.5;
  return row;
}
const order = Array.from({ length: nActive }, (_, i) => i)
  .sort(() => rand() - 0.5)
  .slice(0, nRows);
const rows = [
  ...Array.from({ length: LOGITS }, () => traceRow(L, T - 1)),
  ...order.map((c) => traceRow(cells[c].l, cells[c].p)),
];
const columns = [...Array.from({ length: LOGITS }, () => -1), ...order];

function run(reverse: boolean): { perRound: number[]; at: number[]; addMs: number; pass: string | null } {
  const p = new PartialInfluence(C);
  const perRound: number[] = [];
  const at: number[] = [];
  let addMs = 0;
  for (let r = 0; r < rows.length; r++) {
    const row = reverse ? rows[r].slice().reverse() : rows[r];
    const col = reverse && columns[r] >= 0 ? C - 1 - columns[r] : columns[r];
    const t0 = performance.now();
    p.add(row, col, col < 0 ? 1 / LOGITS : 0);
    addMs += performance.now() - t0;
    const features = r + 1 - LOGITS;
    if ((features > 0 && features % ROUND === 0) || r === rows.length - 1) {
      const t1 = performance.now();
      p.estimate();
      perRound.push(performance.now() - t1);
      at.push(r + 1);
    }
  }
  return { perRound, at, addMs, pass: p.lastPass };
}

const ordered = run(false);
const counted = run(true);
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
console.log(
  `gemma-2-2b-shaped rows: ${LOGITS} logit + ${nRows} feature rows over ${C} columns, an estimate every ${ROUND} rows`,
);
console.log(
  table(
    ['estimate after', 'ordered ms', 'counted ms'],
    ordered.perRound.map((ms, i) => [`${ordered.at[i]} rows`, ms.toFixed(1), counted.perRound[i].toFixed(1)]),
  ),
);
const a = sum(ordered.perRound);
const b = sum(counted.perRound);
console.log(
  `all estimates: ${a.toFixed(0)} ms ordered (${ordered.pass}), ${b.toFixed(0)} ms counted (${counted.pass}): ${(b / a).toFixed(1)}×; adding the rows ${ordered.addMs.toFixed(0)} ms`,
);
