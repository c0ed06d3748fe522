// Host-side pieces of a 2b trace's non-backward phases, timed (scratch).
import path from 'node:path';
import { Attributor } from '../../electron/engine/attribution/attribute.ts';
import { assembleGraph } from '../../electron/engine/attribution/assemble.ts';
import { selectLogitTokens } from '../../electron/engine/attribution/targets.ts';
import { openModel } from '../../electron/engine/model/open-model.ts';
import { loadTranscoderSet } from '../../electron/engine/transcoders/load.ts';

const dir = process.argv[2] ?? '/tmp/gc/synthetic/gemma2-2b-7d28bd6ade9a';
const model = openModel(path.join(dir, 'model'));
const set = loadTranscoderSet(path.join(dir, 'transcoders'));
const ids = [2, ...Array.from({ length: 10 }, (_, i) => 3 + ((i * 7919) % (256000 - 3)))];
const t = () => performance.now();
const a = await Attributor.create(model, set, { provider: (process.env.P as 'cpu') ?? 'cpu' });
let runMs = 0;
const fwd = a.forward as unknown as { run: (...x: unknown[]) => Promise<unknown> };
const orig = fwd.run.bind(fwd);
fwd.run = async (...x: unknown[]) => { const s = t(); const r = await orig(...x); runMs += t() - s; return r; };
function oldAssemble(selected: number[], rows: Map<number, Float32Array>, N: number, nSel: number, eo: number, nc: number) {
  const columnOf = Int32Array.from(selected);
  const adjacency = new Float32Array(N * N);
  for (const [r, a] of selected.entries()) {
    const row = rows.get(a)!;
    const base = r * N;
    for (let i = 0; i < nSel; i++) adjacency[base + i] = row[columnOf[i]];
    adjacency.set(row.subarray(eo, nc), base + nSel);
  }
  return adjacency;
}
for (let rep = 0; rep < 3; rep++) {
  runMs = 0;
  let t0 = t();
  const p = await a.prepare(ids);
  const prep = t() - t0;
  t0 = t();
  const logits = selectLogitTokens(p.cache, 10, 0.95);
  const sel = t() - t0;
  t0 = t();
  const lt = logits.map((l) => p.targets.logitTarget(l.tokenId));
  const ltMs = t() - t0;
  t0 = t();
  const n = p.space.nActive;
  const order = Array.from({ length: n }, (_, i) => i);
  const ft = order.map((i) => p.featureTarget(i));
  const ftMs = t() - t0;
  // 8192 of the active features, as a capped selection would pick (drop every ~40th).
  const selected = order.filter((i) => i % 39 !== 5).slice(0, 8192);
  const rows = new Map<number, Float32Array>();
  for (const i of selected) { const r = new Float32Array(p.space.nColumns); r[i % r.length] = 1; rows.set(i, r); }
  const lrows = lt.map(() => new Float32Array(p.space.nColumns));
  t0 = t();
  const g = assembleGraph(p, selected, rows, lrows, logits, ids, undefined);
  const asmMs = t() - t0;
  const N = Math.sqrt(g.adjacency.length);
  t0 = t();
  const old = oldAssemble(selected, rows, N, selected.length, p.space.errorOffset, p.space.nColumns);
  const oldMs = t() - t0;
  let same = true;
  for (let i = 0; i < selected.length * N; i++) if (old[i] !== g.adjacency[i]) { same = false; break; }
  console.log(JSON.stringify({ prepareMs: Math.round(prep), forwardRunMs: Math.round(runMs), hostPrepareMs: Math.round(prep - runMs), selectLogitMs: Math.round(sel), logitTargetsMs: Math.round(ltMs), featureTargetsMs: Math.round(ftMs), nFeat: ft.length, assembleNewMs: Math.round(asmMs), assembleOldMs: Math.round(oldMs), same }));
  await p.runner.release();
}
await a.close();
