/**
 * GPU path check: the same forward passes and attribution on the CPU provider and on each GPU
 * provider this installation can start (WebGPU is bundled with onnxruntime-node; CUDA needs
 * the opt-in install), compared number for number and timed in the same run. A benchmark
 * prints figures; it is not a test (CI has no GPU).
 *
 *   npx tsx bench/gpu-check.ts [--synthetic mid|small|2b|none] [--tokens 64] [--repeat 5]
 *                              [--providers webgpu,cuda] [--cache-dir DIR] [--json FILE]
 *                              [--skip-demo] [--layers 26] [--max-feature-nodes 8192] [--dump DIR]
 *                              [--profile DIR] [--skip-rates] [--batch-size 256]
 *                              [--variants 'name:KEY=V,…;…']
 *
 * 1. Which providers start (a session on the demo model), with the error where one does not.
 * 2. Demo model: logits of the demo prompt and its attribution graph (CLT), per provider:
 *    max abs difference from the CPU (logits; adjacency relative to each row's largest entry),
 *    and times.
 * 3. A synthetic Gemma-2-family checkpoint (bench/synthetic-gemma2.ts): forward median time at
 *    --tokens, and attribution of the first 1024 features, per provider, against the CPU.
 *    `--synthetic 2b`: gemma-2-2b's shape instead, traced as the GPU issue asks (11 tokens,
 *    8192 features, batch 256; see gpu-2b.ts), with --providers taken as given (cpu too) and
 *    the graphs compared through --dump DIR.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Attributor } from '../electron/engine/attribution/attribute.ts';
import { ForwardPass } from '../electron/engine/model/forward-pass.ts';
import { type OpenedModel, openModel } from '../electron/engine/model/open-model.ts';
import type { ProviderName } from '../electron/engine/runtime/providers.ts';
import { loadTokenizer } from '../electron/engine/tokenizer/index.ts';
import { loadTranscoderSet } from '../electron/engine/transcoders/load.ts';
import type { TranscoderSet } from '../electron/engine/transcoders/types.ts';
import { type BackwardVariant, parseVariants, runGpu2b } from './gpu-2b.ts';
import { log, median, table } from './shared.ts';
import { ensureSyntheticGemma2, GEMMA2_MID, GEMMA2_SMALL } from './synthetic-gemma2.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DEMO = path.join(ROOT, 'resources', 'models', 'gemma2-demo');
const PROMPT = 'The capital of state containing Dallas is';

interface Options {
  synthetic: 'mid' | 'small' | '2b' | 'none';
  skipDemo: boolean;
  layers: number;
  maxFeatureNodes: number;
  dump: string | null;
  /** `--synthetic 2b`: an ONNX Runtime profile of every session into DIR, summed up (gpu-profile.ts). */
  profile: string | null;
  /** `--synthetic 2b`: leave out the MatMul rate measurements (for extra variants of one run). */
  skipRates: boolean;
  /** `--synthetic 2b`: rows per backward batch (the 256; more means fewer, larger runs). */
  batchSize: number;
  /** `--synthetic 2b`: backward variants timed on the same opened model (gpu-2b.ts parseVariants). */
  variants: BackwardVariant[];
  tokens: number;
  repeat: number;
  providers: ProviderName[];
  cacheDir: string;
  json: string | null;
}

function parseArgs(argv: string[]): Options {
  const o: Options = {
    synthetic: 'mid',
    skipDemo: false,
    layers: 26,
    maxFeatureNodes: 8192,
    dump: null,
    profile: null,
    skipRates: false,
    batchSize: 256,
    variants: [],
    tokens: 64,
    repeat: 5,
    providers: ['webgpu', 'cuda'],
    cacheDir: path.join(os.tmpdir(), 'circuit-gpu-check'),
    json: null,
  };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i + 1];
    switch (argv[i]) {
      case '--synthetic':
        if (v !== 'mid' && v !== 'small' && v !== '2b' && v !== 'none')
          throw new Error('--synthetic: mid, small, 2b or none');
        o.synthetic = v;
        i++;
        break;
      case '--skip-demo':
        o.skipDemo = true;
        break;
      case '--layers':
        o.layers = Number(v);
        i++;
        break;
      case '--max-feature-nodes':
        o.maxFeatureNodes = Number(v);
        i++;
        break;
      case '--dump':
        o.dump = v;
        i++;
        break;
      case '--skip-rates':
        o.skipRates = true;
        break;
      case '--profile':
        o.profile = v;
        i++;
        break;
      case '--batch-size':
        o.batchSize = Number(v);
        if (!Number.isInteger(o.batchSize) || o.batchSize <= 0)
          throw new Error('--batch-size: a positive integer');
        i++;
        break;
      case '--variants':
        o.variants = parseVariants(v ?? '');
        i++;
        break;
      case '--tokens':
        o.tokens = Number(v);
        i++;
        break;
      case '--repeat':
        o.repeat = Number(v);
        i++;
        break;
      case '--providers':
        o.providers = v.split(',') as ProviderName[];
        i++;
        break;
      case '--cache-dir':
        o.cacheDir = v;
        i++;
        break;
      case '--json':
        o.json = v;
        i++;
        break;
      default:
        throw new Error(`unknown option ${argv[i]}`);
    }
  }
  return o;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Largest |a − b| of each row relative to that row's largest |b| (rows of `n`). */
function maxRowRelativeDiff(a: Float32Array, b: Float32Array, n: number): number {
  let worst = 0;
  for (let r = 0; r * n < b.length; r++) {
    let scale = 0;
    let diff = 0;
    for (let c = r * n; c < (r + 1) * n; c++) {
      scale = Math.max(scale, Math.abs(b[c]));
      diff = Math.max(diff, Math.abs(a[c] - b[c]));
    }
    if (scale > 0) worst = Math.max(worst, diff / scale);
  }
  return worst;
}

async function timeForward(fp: ForwardPass, ids: number[], repeat: number) {
  await fp.run(ids); // warm-up (shader compilation, allocation)
  const times: number[] = [];
  let logits: Float32Array = new Float32Array();
  for (let i = 0; i < repeat; i++) {
    const t0 = performance.now();
    logits = (await fp.run(ids)).get('logits')!.data;
    times.push(performance.now() - t0);
  }
  return { medianMs: median(times), minMs: Math.min(...times), logits };
}

async function attribution(
  model: OpenedModel,
  set: TranscoderSet,
  ids: number[],
  provider: ProviderName,
  cacheRoot: string,
  maxFeatureNodes?: number,
) {
  const t0 = performance.now();
  const a = await Attributor.create(model, set, { provider, cacheRoot });
  const createMs = performance.now() - t0;
  try {
    const settings = { maxNLogits: 10, desiredLogitProb: 0.95, batchSize: 256, maxFeatureNodes };
    await (await a.attribute(ids, settings)).prepared.runner.release(); // warm-up
    const t1 = performance.now();
    const r = await a.attribute(ids, settings);
    const ms = performance.now() - t1;
    await r.prepared.runner.release();
    return { createMs, ms, graph: r.graph, timings: r.timingsMs, provider: a.provider };
  } finally {
    await a.close();
  }
}

async function main(argv: string[]): Promise<number> {
  const o = parseArgs(argv);
  fs.mkdirSync(o.cacheDir, { recursive: true });
  const report: Record<string, unknown> = { options: o, host: os.hostname(), cpus: os.cpus().length };
  const save = () => {
    if (o.json) fs.writeFileSync(o.json, `${JSON.stringify(report, null, 1)}\n`);
  };

  if (o.synthetic === '2b') {
    const tokens = argv.includes('--tokens') ? o.tokens : 11;
    report.gemma2_2b = await runGpu2b({
      providers: o.providers,
      cacheDir: o.cacheDir,
      tokens,
      layers: o.layers,
      maxFeatureNodes: o.maxFeatureNodes,
      batchSize: o.batchSize,
      repeat: Math.min(o.repeat, 3),
      dump: o.dump,
      profile: o.profile,
      skipRates: o.skipRates,
      variants: o.variants,
      log,
    });
    console.log(JSON.stringify(report.gemma2_2b, null, 1));
    save();
    if (o.skipDemo) return 0;
  }

  // 1. Which providers start.
  const demo = openModel(DEMO);
  const clt = loadTranscoderSet(path.join(DEMO, 'transcoders', 'clt'));
  const tokenizer = await loadTokenizer(DEMO);
  const ids = tokenizer.encodePrompt(PROMPT);
  const cacheRoot = path.join(o.cacheDir, 'compiled');
  const working: ProviderName[] = [];
  const startRows: string[][] = [];
  for (const p of o.providers) {
    try {
      const fp = await ForwardPass.create(demo, { provider: p });
      await fp.run(ids);
      await fp.close();
      working.push(p);
      startRows.push([p, 'starts', '']);
    } catch (e) {
      startRows.push([p, 'fails', (e as Error).message.replace(/\s+/g, ' ').slice(0, 300)]);
    }
  }
  console.log(table(['provider', 'session', 'error'], startRows, 3));
  report.providers = startRows;
  save();

  // 2. Demo model: logits and the attribution graph, per provider, against the CPU.
  const demoRows: string[][] = [];
  const cpuFp = await ForwardPass.create(demo, { provider: 'cpu' });
  const cpuFwd = await timeForward(cpuFp, ids, o.repeat);
  await cpuFp.close();
  const cpuAttr = await attribution(demo, clt, ids, 'cpu', cacheRoot);
  const N = Math.round(Math.sqrt(cpuAttr.graph.adjacency.length));
  demoRows.push(['cpu', cpuFwd.medianMs.toFixed(2), '0', cpuAttr.ms.toFixed(1), '0']);
  for (const p of working) {
    const fp = await ForwardPass.create(demo, { provider: p });
    const f = await timeForward(fp, ids, o.repeat);
    await fp.close();
    const a = await attribution(demo, clt, ids, p, cacheRoot);
    const sameNodes = a.graph.adjacency.length === cpuAttr.graph.adjacency.length;
    demoRows.push([
      p,
      f.medianMs.toFixed(2),
      maxAbsDiff(f.logits, cpuFwd.logits).toExponential(1),
      a.ms.toFixed(1),
      sameNodes
        ? maxRowRelativeDiff(a.graph.adjacency, cpuAttr.graph.adjacency, N).toExponential(1)
        : 'nodes differ',
    ]);
  }
  console.log(
    `\ndemo model, "${PROMPT}" (${ids.length} tokens), CLT, ${cpuAttr.graph.nodes.features.layer.length} features`,
  );
  console.log(
    table(
      ['provider', 'forward ms', 'logits Δ vs cpu', 'attribution ms', 'adjacency Δ / row scale'],
      demoRows,
    ),
  );
  report.demo = demoRows;
  save();
  clt.close();
  demo.close();

  // 3. A synthetic checkpoint at a realistic width.
  if (o.synthetic === 'mid' || o.synthetic === 'small') {
    // About 64 active features per token and layer (θ ≈ Φ⁻¹(1 − 64/8192)), as GemmaScope sets
    // have; the generator's default keeps a quarter active, which makes the source space, not
    // the providers, the cost.
    const spec = { ...(o.synthetic === 'mid' ? GEMMA2_MID : GEMMA2_SMALL), thresholdMean: 2.42 };
    const ck = ensureSyntheticGemma2(spec, path.join(o.cacheDir, 'synthetic'), log);
    const model = openModel(ck.modelDir);
    const set = loadTranscoderSet(ck.transcoderDir);
    const sids = [2, ...Array.from({ length: o.tokens - 1 }, (_, i) => 3 + ((i * 7919) % (spec.vocab - 3)))];
    const rows: string[][] = [];
    let base: { logits: Float32Array; adjacency: Float32Array; n: number } | null = null;
    for (const p of ['cpu' as const, ...working]) {
      const t0 = performance.now();
      const fp = await ForwardPass.create(model, { provider: p, transcoders: set });
      const createMs = performance.now() - t0;
      const f = await timeForward(fp, sids, o.repeat);
      await fp.close();
      const a = await attribution(model, set, sids, p, cacheRoot, 1024);
      const n = Math.round(Math.sqrt(a.graph.adjacency.length));
      if (!base) base = { logits: f.logits, adjacency: a.graph.adjacency, n };
      rows.push([
        p,
        (createMs / 1000).toFixed(1),
        f.medianMs.toFixed(1),
        maxAbsDiff(f.logits, base.logits).toExponential(1),
        (a.ms / 1000).toFixed(2),
        Object.entries(a.timings)
          .map(([k, v]) => `${k} ${(v / 1000).toFixed(2)}`)
          .join(', '),
        n === base.n
          ? maxRowRelativeDiff(a.graph.adjacency, base.adjacency, n).toExponential(1)
          : 'nodes differ',
      ]);
      log(`synthetic ${p} done`);
      report.synthetic = rows;
      save();
    }
    console.log(
      `\nsynthetic ${spec.name}: ${spec.layers} layers, hidden ${spec.hidden}, vocab ${spec.vocab}, ${spec.features} features/layer, ${o.tokens} tokens, attribution of 1024 features`,
    );
    console.log(
      table(
        [
          'provider',
          'session s',
          'forward ms',
          'logits Δ vs cpu',
          'attribution s',
          'phases (s)',
          'adjacency Δ / row scale',
        ],
        rows,
      ),
    );
    set.close();
    model.close();
  }
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
