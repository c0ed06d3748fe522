/**
 * Interventions on the demo model (resources/models/gemma2-demo, both transcoder sets): does
 * what the attribution graph says hold when the model is run? A study that prints figures;
 * it is not a test (tests/engine/intervene/demo-interventions.test.ts asserts the robust part).
 *
 *   npx tsx bench/intervene-demo.ts [--paths 5] [--json]
 *
 * On "The capital of state containing Dallas is" (→ " Austin"):
 *  1. trace it and find the strongest paths from the " Dallas" token to the " Austin" logit
 *     through feature nodes (product of the raw edges, electron/engine/intervene/paths.ts);
 *     ablate the features of the top 1, 3, 5 paths;
 *  2. "Texas" features: active at the city position or later on two Texas-city prompts
 *     (Dallas, Houston) and on neither California-city prompt (Oakland, Fresno); their
 *     decoders' direct logit effect on " Texas" / " Austin" (the frozen final norm at the last
 *     position, through the unembedding) is printed; ablate them;
 *  3. steer: "California" features, found the same way from a trace of the Oakland prompt
 *     (with Fresno to confirm, Dallas and Houston to exclude), set at the Dallas prompt's same
 *     positions to their Oakland activation × 1, 2, 4 while the Texas features are ablated.
 * Every edit runs open loop (frozen replacement model: direct effects only), closed loop
 * (everything recomputed) and closed loop with every attention pattern frozen at the
 * original prompt's.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  type FeatureIntervention,
  Intervener,
  type InterventionResult,
} from '../electron/engine/intervene/interventions.ts';
import { strongestPaths } from '../electron/engine/intervene/paths.ts';
import { featureEdit } from '../electron/engine/intervene/spec.ts';
import { openModel } from '../electron/engine/model/open-model.ts';
import { loadTokenizer } from '../electron/engine/tokenizer/index.ts';
import { loadTranscoderSet } from '../electron/engine/transcoders/load.ts';
import { log, table } from './shared.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DEMO = path.join(ROOT, 'resources/models/gemma2-demo');
const template = (city: string) => `The capital of state containing ${city} is`;

type Key = string; // "layer:feature:position"
const keyOf = (layer: number, feature: number, position: number): Key => `${layer}:${feature}:${position}`;
const edit = (k: Key, mode: FeatureIntervention['mode'], value?: number): FeatureIntervention => {
  const [layer, feature, position] = k.split(':').map(Number);
  return featureEdit({ layer, feature, position }, mode, value);
};

async function main() {
  const { values: args } = parseArgs({
    options: { paths: { type: 'string', default: '5' }, json: { type: 'boolean', default: false } },
  });
  const nPaths = Number(args.paths);
  const tokenizer = await loadTokenizer(DEMO);
  const tok = (id: number) => tokenizer.tokenToString(id);
  const wordId = (w: string) => {
    const ids = tokenizer.encodePrompt(w);
    if (ids.length !== 2) throw new Error(`${JSON.stringify(w)} is not one token`);
    return ids[1];
  };
  const AUSTIN = wordId(' Austin');
  const SACRAMENTO = wordId(' Sacramento');
  const TEXAS = wordId(' Texas');
  const ids = tokenizer.encodePrompt(template('Dallas'));
  const cityPos = ids.indexOf(wordId(' Dallas'));
  const report: Record<string, unknown> = {};

  for (const tc of ['plt', 'clt']) {
    const model = openModel(DEMO);
    const set = loadTranscoderSet(path.join(DEMO, 'transcoders', tc));
    const iv = await Intervener.create(model, set);
    try {
      const t0 = performance.now();
      const settings = { maxNLogits: 10, desiredLogitProb: 0.95, batchSize: 128 };
      const r = await iv.attributor.attribute(ids, settings);
      const { space } = r.prepared;
      const traceMs = performance.now() - t0;
      const austinIndex = r.logitTokens.findIndex((t) => t.tokenId === AUSTIN);
      if (austinIndex < 0) throw new Error('" Austin" is not a logit target');
      const label = (a: number) =>
        `${space.featureLayer[a]}:${space.featureIndex[a]}@${space.featurePosition[a]}`;
      const keyOfActive = (a: number) =>
        keyOf(space.featureLayer[a], space.featureIndex[a], space.featurePosition[a]);

      // 1. Paths " Dallas" → " Austin".
      const paths = strongestPaths(r, space.tokenOffset + cityPos, austinIndex, nPaths);
      console.log(
        `\n=== ${tc}: ${JSON.stringify(template('Dallas'))}, ${space.nActive} active features, traced in ${traceMs.toFixed(0)} ms; p(" Austin") = ${r.logitTokens[austinIndex].prob.toFixed(4)}`,
      );
      console.log(`\nstrongest paths " Dallas"@${cityPos} → " Austin" (features layer:index@position):`);
      console.log(
        table(
          ['rank', 'weight', 'path'],
          paths.map((p, i) => [
            String(i + 1),
            p.weight.toFixed(4),
            ['" Dallas"', ...p.features.map(label), '" Austin"'].join(' → '),
          ]),
          1,
        ),
      );
      const pathFeatures = (n: number) => [
        ...new Set(paths.slice(0, n).flatMap((p) => p.features.map(keyOfActive))),
      ];

      // 2./3. State features by contrast between prompts of two states.
      const activeAt = async (city: string) => {
        const cityIds = tokenizer.encodePrompt(template(city));
        if (cityIds.length !== ids.length || cityIds[cityPos] !== wordId(` ${city}`))
          throw new Error(`${city}: the prompt does not align with the Dallas prompt`);
        const p = await iv.attributor.prepare(cityIds);
        const m = new Map<Key, number>();
        for (let a = 0; a < p.space.nActive; a++) {
          if (p.space.featurePosition[a] < cityPos) continue;
          m.set(
            keyOf(p.space.featureLayer[a], p.space.featureIndex[a], p.space.featurePosition[a]),
            p.space.featureActivation[a],
          );
        }
        return m;
      };
      const oakland = await iv.attributor.attribute(tokenizer.encodePrompt(template('Oakland')), settings);
      const pSacramentoOakland = oakland.logitTokens.find((t) => t.tokenId === SACRAMENTO)?.prob ?? 0;
      const oak = new Map<Key, number>();
      for (let a = 0; a < oakland.prepared.space.nActive; a++) {
        const s = oakland.prepared.space;
        if (s.featurePosition[a] >= cityPos)
          oak.set(keyOf(s.featureLayer[a], s.featureIndex[a], s.featurePosition[a]), s.featureActivation[a]);
      }
      const [dal, hou, fre] = [await activeAt('Dallas'), await activeAt('Houston'), await activeAt('Fresno')];
      const texas = [...dal.keys()].filter((k) => hou.has(k) && !oak.has(k) && !fre.has(k));
      const california = [...oak.keys()].filter((k) => fre.has(k) && !dal.has(k) && !hou.has(k));

      // Direct logit effect of a feature's decoder (all layers it writes), at its activation.
      const lens = (a: number, tokenId: number) => {
        const u = r.prepared.targets.logitTarget(tokenId).vector;
        const rows = set.decoderRowsFloat32(space.featureLayer[a], [space.featureIndex[a]]);
        let s = 0;
        for (let i = 0; i < rows.length; i++) s += rows[i] * u[i % set.dModel];
        return s * space.featureActivation[a];
      };
      const activeIndex = new Map<Key, number>();
      for (let a = 0; a < space.nActive; a++) activeIndex.set(keyOfActive(a), a);
      const texasLens = texas.map((k) => lens(activeIndex.get(k)!, TEXAS));
      const austinLens = texas.map((k) => lens(activeIndex.get(k)!, AUSTIN));
      const positive = texas.filter((_, i) => texasLens[i] > 0 || austinLens[i] > 0).length;
      const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
      console.log(
        `\nTexas features (active on Dallas and Houston, not on Oakland or Fresno, position ≥ ${cityPos}): ${texas.length}; ` +
          `${positive} write towards " Texas" or " Austin" (direct logit effect > 0); summed direct effect ` +
          `on " Texas" ${sum(texasLens).toFixed(3)}, on " Austin" ${sum(austinLens).toFixed(3)}; ` +
          `graph edges into " Austin" summed ${sum(texas.map((k) => r.logitRows[austinIndex][activeIndex.get(k)!])).toFixed(3)}`,
      );
      console.log(
        `California features (traced on Oakland, p(" Sacramento") = ${pSacramentoOakland.toFixed(4)}; active on Oakland and Fresno, not on Dallas or Houston): ${california.length}`,
      );

      // The edits, each run open loop, closed loop, closed loop with frozen attention.
      const swap = (x: number) => [
        ...texas.map((k) => edit(k, 'ablate')),
        ...california.map((k) => edit(k, 'set', oak.get(k)! * x)),
      ];
      const cases: { name: string; edits: FeatureIntervention[] }[] = [
        { name: 'ablate path 1 features', edits: pathFeatures(1).map((k) => edit(k, 'ablate')) },
        { name: 'ablate paths 1-3 features', edits: pathFeatures(3).map((k) => edit(k, 'ablate')) },
        {
          name: `ablate paths 1-${nPaths} features`,
          edits: pathFeatures(nPaths).map((k) => edit(k, 'ablate')),
        },
        { name: 'ablate Texas features', edits: texas.map((k) => edit(k, 'ablate')) },
        {
          name: 'set California ×2 (no ablation)',
          edits: california.map((k) => edit(k, 'set', oak.get(k)! * 2)),
        },
        { name: 'ablate Texas + set California ×1', edits: swap(1) },
        { name: 'ablate Texas + set California ×2', edits: swap(2) },
        { name: 'ablate Texas + set California ×4', edits: swap(4) },
      ];
      const rows: string[][] = [];
      const results: Record<string, unknown>[] = [];
      // Tracked tokens are always in `changes`.
      const p = (res: InterventionResult, id: number, when: 'before' | 'after') => {
        const c = res.changes.find((x) => x.tokenId === id)!;
        return when === 'before' ? c.probBefore : c.probAfter;
      };
      for (const c of cases) {
        for (const loop of ['open', 'closed', 'closed, frozen attn'] as const) {
          const opts = { top: 5, trackTokens: [AUSTIN, SACRAMENTO] };
          const started = performance.now();
          const res =
            loop === 'open'
              ? await iv.openLoop(ids, c.edits, opts, r.prepared)
              : await iv.closedLoopIntervention(ids, c.edits, {
                  ...opts,
                  freezeAttention: loop !== 'closed',
                });
          const ms = performance.now() - started;
          const la = res.targetLogitChanges!;
          const [top1, top2] = res.after;
          const pa = p(res, AUSTIN, 'after');
          const ps = p(res, SACRAMENTO, 'after');
          rows.push([
            c.name,
            String(c.edits.length),
            loop,
            `${p(res, AUSTIN, 'before').toFixed(4)} → ${pa.toFixed(4)}`,
            ps.toFixed(4),
            `${JSON.stringify(tok(top1.tokenId))} ${top1.prob.toFixed(4)}, ${JSON.stringify(tok(top2.tokenId))} ${top2.prob.toFixed(4)}`,
            `${la[0].delta >= 0 ? '+' : ''}${la[0].delta.toFixed(3)}`,
            `${la[1].delta >= 0 ? '+' : ''}${la[1].delta.toFixed(3)}`,
            ms.toFixed(0),
          ]);
          results.push({
            case: c.name,
            edits: c.edits.length,
            loop,
            pAustinBefore: p(res, AUSTIN, 'before'),
            pAustinAfter: pa,
            pSacramentoAfter: ps,
            top1: tok(top1.tokenId),
            top1Prob: top1.prob,
            top2: tok(top2.tokenId),
            top2Prob: top2.prob,
            austinLogitDelta: la[0].delta,
            sacramentoLogitDelta: la[1].delta,
            ms,
          });
        }
      }
      console.log(
        '\n' +
          table(
            [
              'intervention',
              'edits',
              'loop',
              'p(" Austin")',
              'p(" Sacr.")',
              'top-1, top-2 after',
              'Δ Austin',
              'Δ Sacr.',
              'ms',
            ],
            rows,
            3,
          ),
      );
      console.log(
        'p(" Sacr.") after the edit; Δ = change of the demeaned pre-softcap logit (what a logit node measures).',
      );
      report[tc] = {
        paths: paths.map((x) => ({ weight: x.weight, features: x.features.map(label) })),
        texas,
        california,
        results,
      };
    } finally {
      await iv.close();
      set.close();
      model.close();
    }
  }
  if (args.json) console.log(JSON.stringify(report));
}

main().catch((e: unknown) => {
  log(e instanceof Error ? (e.stack ?? e.message) : String(e));
  process.exit(1);
});
