/**
 * Real-scale trace benchmark (issue 12): a checkpoint with gemma-2-2b's shapes (26 layers,
 * hidden 2304, 8/4 heads of 256, MLP 9216, vocab 256000, bf16, sharded) and 16384-feature
 * JumpReLU transcoders per layer (~30 active per token and layer), or circuit-tracer's CLT
 * shape with --clt, traced on an 11-token prompt with max_feature_nodes 8192. --gemmascope: the
 * per-layer set in GemmaScope's published layout (float32 npz, W_enc [d, d_t]) instead of
 * circuit-tracer's (bf16 safetensors, W_enc [d_t, d]).
 *
 *   npx tsx bench/scale.ts [--layers N] [--clt | --gemmascope] [--spec 2b|mid|small] [--features N] [--active K]
 *                          [--tokens 11] [--max-feature-nodes 8192] [--batch-size 256]
 *                          [--threads 2] [--repeat 1] [--keep] [--no-torch] [--json]
 *
 * 1. The checkpoint (bench/synthetic-gemma2.ts) is generated once into
 *    os.tmpdir()/circuit-bench (--cache-dir), streaming, after a free-disk check; reused after.
 *    --layers N: the first N layers of the same shape (model and transcoders).
 * 2. The float32 GEMM rate (bench/gemm.ts), measured in this run.
 * 3. bench/scale-child.ts traces the prompt (token ids: the synthetic model has no tokenizer;
 *    deterministic ids with BOS first, as many as the real prompt "Fact: The capital of the
 *    state containing Dallas is" has) through Attributor, in a child process with its own
 *    empty CIRCUIT_CACHE_DIR; this process samples the child's VmRSS every 200 ms, the child
 *    reports its VmHWM.
 * 4. Where the PyTorch reference fits in memory (fewer layers): native/reference/
 *    bench_attribution.py on the same batches, its time and the rows' agreement.
 *
 * Printed: wall time per phase and in all, peak RSS (child's VmHWM and the parent's
 * sampling), compile cache size on disk, checkpoint size on disk, peak RSS ÷ weights and
 * cache ÷ checkpoint, nodes and edges (unpruned, pruned at 0.8/0.98), completeness of every
 * row, the backward's FLOPs (trace-flops.ts, per batch over its t positions and up to its top
 * layer) ÷ the logits + features time against the GEMM rate, and PyTorch time ÷ engine time.
 * Issue 12's targets are printed next to the figures.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AttributionPhase } from '../electron/engine/attribution/attribute.ts';
import type { ProviderChoice } from '../electron/engine/runtime/providers.ts';
import { hash32, seedOf } from '../tests/fixtures/tiny-checkpoints.ts';
import { RESULT_PREFIX } from './forward-child.ts';
import { type GemmRate, measureGemm } from './gemm.ts';
import type { ScaleChildArgs, ScaleChildResult } from './scale-child.ts';
import {
  log,
  machineInfo,
  ms,
  NA,
  printReport,
  ratio,
  readFlags,
  runAttributionReference,
  runBench,
  table,
  torchAvailable,
  traceBenchFlag,
} from './shared.ts';
import {
  defaultBenchCacheRoot,
  diskUsage,
  ensureSyntheticGemma2,
  GEMMA2_2B,
  GEMMA2_MID,
  GEMMA2_SMALL,
  type SyntheticGemma2Spec,
  thresholdForActive,
  withLayers,
} from './synthetic-gemma2.ts';
import { type FlopBreakdown, sumFlops } from './trace-flops.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..');
const CHILD_SCRIPT = path.join(HERE, 'scale-child.ts');
/** BOS + 10 tokens: "Fact: The capital of the state containing Dallas is" in Gemma's tokenizer. */
const PROMPT_TOKENS = 11;
const PHASES: AttributionPhase[] = ['forward', 'setup', 'logits', 'features', 'assemble'];
const SPECS: Record<string, { spec: SyntheticGemma2Spec; active: number }> = {
  '2b': { spec: GEMMA2_2B, active: 30 },
  // The same checkpoints as bench/trace.ts's `-sparse` ones (64 active per token and layer).
  mid: { spec: GEMMA2_MID, active: 64 },
  small: { spec: GEMMA2_SMALL, active: 64 },
};

interface Options {
  spec: string;
  layers: number | null;
  /** Which transcoders: per-layer (circuit-tracer layout), cross-layer, or per-layer as GemmaScope publishes them. */
  transcoders: 'plt' | 'clt' | 'gemmascope';
  features: number | null;
  active: number | null;
  tokens: number;
  maxFeatureNodes: number;
  batchSize: number;
  maxNLogits: number;
  desiredLogitProb: number;
  threads: number;
  provider: ProviderChoice;
  repeat: number;
  cacheDir: string;
  keep: boolean;
  torch: boolean;
  python: string;
  gemmSize: number;
  json: boolean;
}

const USAGE = `usage: npx tsx bench/scale.ts [options]
  --spec 2b                 2b (gemma-2-2b shapes, default), mid or small (bench/trace.ts's synthetic shapes)
  --layers N                only the first N layers of the shape (model and transcoders)
  --clt                     a cross-layer transcoder (circuit-tracer layout) instead of per-layer ones
  --gemmascope              per-layer transcoders in GemmaScope's layout (float32 params.npz, W_enc [d, d_t])
  --features N              transcoder features per layer (default: the spec's, 16384 for 2b)
  --active K                active features per token and layer the thresholds aim at (2b: 30, else 64)
  --tokens 11               prompt length (deterministic ids, BOS first)
  --max-feature-nodes 8192  --batch-size 256  --max-n-logits 10  --desired-logit-prob 0.95
  --threads 2               ONNX Runtime intra-op threads (and torch's)
  --provider cpu            the engine's execution provider: cpu, webgpu, cuda or auto (the GEMM
                            rate and its ratio stay the CPU's; a GPU run is for its phase times)
  --repeat 1                traces in the child (figures: the last; the first pays session creation)
  --cache-dir DIR           where checkpoints are generated (default ${defaultBenchCacheRoot()})
  --keep                    keep the work folder (compile cache, targets, rows)
  --no-torch                skip the PyTorch reference (it runs when the checkpoint fits in memory as float32)
  --python PATH             interpreter with torch (default /usr/bin/python3)
  --gemm-size 2048          n of the GEMM-rate probe (0: skip)
  --json                    one JSON line on stdout (the report on stderr)`;

function parseArgs(argv: string[]): Options {
  const o: Options = {
    spec: '2b',
    layers: null,
    transcoders: 'plt',
    features: null,
    active: null,
    tokens: PROMPT_TOKENS,
    maxFeatureNodes: 8192,
    batchSize: 256,
    maxNLogits: 10,
    desiredLogitProb: 0.95,
    threads: 2,
    provider: 'cpu',
    repeat: 1,
    cacheDir: defaultBenchCacheRoot(),
    keep: false,
    torch: true,
    python: process.env.CIRCUIT_REFERENCE_PYTHON ?? '/usr/bin/python3',
    gemmSize: 2048,
    json: false,
  };
  readFlags(argv, USAGE, (flag, next) => {
    switch (flag) {
      case '--spec':
        o.spec = next.value();
        if (!SPECS[o.spec]) throw new Error(`--spec is one of ${Object.keys(SPECS).join(', ')}`);
        return true;
      case '--layers':
        o.layers = next.int(1);
        return true;
      case '--provider': {
        const v = next.value();
        if (v !== 'cpu' && v !== 'webgpu' && v !== 'cuda' && v !== 'auto') {
          throw new Error('--provider is cpu, webgpu, cuda or auto');
        }
        o.provider = v;
        return true;
      }
      case '--clt':
        o.transcoders = 'clt';
        return true;
      case '--gemmascope':
        o.transcoders = 'gemmascope';
        return true;
      case '--features':
        o.features = next.int(1);
        return true;
      case '--active':
        o.active = next.int(1);
        return true;
      default:
        return traceBenchFlag(o, flag, next);
    }
  });
  return o;
}

/** The checkpoint's spec: the base shape, its features and thresholds, its first --layers layers. */
function chosenSpec(o: Options): SyntheticGemma2Spec {
  const { spec: base, active: baseActive } = SPECS[o.spec];
  const features = o.features ?? base.features;
  const active = o.active ?? baseActive;
  let spec: SyntheticGemma2Spec = base;
  if (o.spec === '2b') {
    if (features !== base.features || active !== baseActive)
      spec = {
        ...base,
        name: `${base.name}-f${features}-a${active}`,
        features,
        thresholdMean: thresholdForActive(features, active),
      };
  } else {
    // bench/trace.ts's sparse spec when features and active are the defaults.
    const suffix = features === base.features && active === 64 ? 'sparse' : `f${features}-a${active}`;
    spec = {
      ...base,
      name: `${base.name}-${suffix}`,
      features,
      thresholdMean: thresholdForActive(features, active),
    };
  }
  return o.layers === null ? spec : withLayers(spec, o.layers);
}

/** Deterministic ids in [0, vocab) with BOS (2) at position 0. */
function tokenIds(vocab: number, T: number): number[] {
  const seed = seedOf(`bench/scale/${T}`);
  const ids = Array.from({ length: T }, (_, i) => hash32(seed, i) % vocab);
  ids[0] = 2;
  return ids;
}

interface ChildRun {
  result: ScaleChildResult;
  /** Largest VmRSS seen by sampling /proc/<pid>/status every 200 ms. */
  sampledPeakKb: number;
  samples: number;
  wallMs: number;
}

/** Runs the child with its own CIRCUIT_CACHE_DIR, sampling its RSS. */
function runEngineChild(args: ScaleChildArgs): Promise<ChildRun> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, [...process.execArgv, CHILD_SCRIPT, JSON.stringify(args)], {
      stdio: ['ignore', 'pipe', 'inherit'],
      cwd: ROOT,
      env: { ...process.env, CIRCUIT_CACHE_DIR: args.cacheRoot },
    });
    let peak = 0;
    let samples = 0;
    const sample = () => {
      try {
        const m = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${child.pid}/status`, 'utf8'));
        if (m) {
          peak = Math.max(peak, Number(m[1]));
          samples++;
        }
      } catch {
        // not started yet, or gone
      }
    };
    const timer = setInterval(sample, 200);
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => {
      out += d;
    });
    child.on('error', (e) => {
      clearInterval(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearInterval(timer);
      const wallMs = performance.now() - t0;
      if (code !== 0) {
        const oom = signal === 'SIGKILL' ? ' (SIGKILL: the OOM killer?)' : '';
        reject(
          new Error(
            `scale-child exited with ${code ?? signal}${oom} after ${(wallMs / 1000).toFixed(1)} s; ` +
              `peak sampled RSS ${(peak / 1048576).toFixed(2)} GiB`,
          ),
        );
        return;
      }
      const line = out
        .trim()
        .split('\n')
        .reverse()
        .find((l) => l.startsWith(RESULT_PREFIX));
      try {
        resolve({
          result: JSON.parse(line?.slice(RESULT_PREFIX.length) ?? '') as ScaleChildResult,
          sampledPeakKb: peak,
          samples,
          wallMs,
        });
      } catch {
        reject(new Error(`no result from scale-child: ${out.slice(-500)}`));
      }
    });
  });
}

interface TorchResult {
  torch: string;
  load_ms: number;
  setup_ms: number;
  logit_choice_matches: boolean;
  active: { engine: number; torch: number; engine_not_torch: number };
  runs: { total_ms: number; build_ms: number; backward_ms: number; contraction_ms: number }[];
  verify: { rows: number; max_rel_to_row_scale: number } | null;
  max_rss_kb: number;
}

interface Report {
  bench: 'scale';
  date: string;
  machine: ReturnType<typeof machineInfo>;
  options: Omit<Options, 'json' | 'python'>;
  spec: SyntheticGemma2Spec;
  checkpoint: {
    dir: string;
    modelDir: string;
    transcoderDir: string;
    generatedMs: number | null;
    modelBytes: number;
    transcoderBytes: number;
  };
  tokenIds: number[];
  gemm: GemmRate | null;
  engine: (ScaleChildResult & { sampledPeakKb: number; samples: number; childWallMs: number }) | null;
  engineError: string | null;
  cacheBytes: number | null;
  flops: FlopBreakdown | null;
  backwardMs: number | null;
  gflops: number | null;
  torch: TorchResult | { unavailable: string } | null;
  torchRatio: number | null;
  wallMs: number;
}

const GiB = 1024 ** 3;
const gib = (bytes: number) => `${(bytes / GiB).toFixed(2)} GiB`;
const pct = (x: number | null) => (x === null || !Number.isFinite(x) ? NA : `${(x * 100).toFixed(1)}%`);

function render(r: Report): string {
  const out: string[] = [];
  const s = r.spec;
  out.push(
    `scale — ${s.name}: ${s.layers} layers, hidden ${s.hidden}, ${s.heads}/${s.kvHeads} heads × ${s.headDim}, MLP ${s.intermediate}, vocab ${s.vocab}, bf16; ` +
      `${{ plt: 'per-layer transcoders', clt: 'CLT', gemmascope: 'per-layer transcoders (GemmaScope npz, float32)' }[r.options.transcoders]} of ${s.features} features (θ mean ${s.thresholdMean ?? 0.6})`,
  );
  out.push(
    `machine: ${r.machine.cpu}, ${r.machine.cores} logical CPUs, ${gib(r.machine.memoryBytes)}; load average ${r.machine.load1.toFixed(2)} at start`,
  );
  const ck = r.checkpoint;
  const weights = ck.modelBytes + ck.transcoderBytes;
  out.push(
    `checkpoint: ${ck.dir} (${ck.generatedMs === null ? 'reused' : `generated in ${(ck.generatedMs / 1000).toFixed(1)} s`}); ` +
      `on disk: model ${gib(ck.modelBytes)} + transcoders ${gib(ck.transcoderBytes)} = ${gib(weights)}`,
  );
  out.push(
    `prompt: ${r.tokenIds.length} token ids [${r.tokenIds.join(', ')}]; max_feature_nodes ${r.options.maxFeatureNodes}, batch_size ${r.options.batchSize}, ${r.options.threads} threads`,
  );
  out.push(
    r.gemm
      ? `float32 GEMM (ONNX MatMul ${r.gemm.n}³, ${r.gemm.threads} threads, best of 3): ${r.gemm.gflops.toFixed(1)} GFLOP/s`
      : 'float32 GEMM: skipped',
  );
  const e = r.engine;
  if (!e) {
    out.push(`engine: FAILED — ${r.engineError}`);
    out.push(`total wall time ${(r.wallMs / 1000).toFixed(1)} s`);
    return `${out.join('\n')}\n`;
  }
  const last = e.traces[e.traces.length - 1];
  out.push(
    `active features: ${e.nActive} (${e.activePerTokenLayer.mean.toFixed(1)} per token·layer, ${e.activePerTokenLayer.min}–${e.activePerTokenLayer.max}); ` +
      `rows: ${e.nFeatureRows} features + ${e.logitTokens.length} logits; columns ${e.nColumns}`,
  );
  out.push(`active per token by layer: ${e.activePerLayer.map((x) => x.toFixed(0)).join(' ')}`);
  out.push('');
  out.push(
    table(
      ['step', 'ms'],
      [
        ['open (model + transcoders)', ms(e.openMs)],
        [`Attributor.create (sessions, ${e.provider})`, ms(e.createMs)],
        ...PHASES.map((p) => [`trace: ${p}`, ms(last.timingsMs[p])]),
        ['trace (Attributor.attribute wall)', ms(last.wallMs)],
        ['prune (0.8 / 0.98)', ms(e.graph.pruned.ms)],
        ['completeness (frozen forward)', ms(e.completeness?.ms)],
        ['child process wall', ms(e.childWallMs)],
        ['bench wall (generation, GEMM, child, torch)', ms(r.wallMs)],
      ],
    ),
  );
  if (e.traces.length > 1)
    out.push(`first trace: ${ms(e.traces[0].wallMs)} ms (session creation for each top layer included)`);
  out.push('');
  const peakKb = Math.max(e.vmHwmKb, e.sampledPeakKb);
  const peak = peakKb * 1024;
  const rows: string[][] = [
    [
      'peak RSS (child VmHWM)',
      gib(e.vmHwmKb * 1024),
      `${ratio((e.vmHwmKb * 1024) / weights)} weights`,
      '≤ 1.5× weights, aim ≤ 6 GB',
    ],
    ['peak RSS (sampled every 200 ms)', gib(e.sampledPeakKb * 1024), `${e.samples} samples`, ''],
    [
      'compile cache on disk',
      r.cacheBytes === null ? NA : gib(r.cacheBytes),
      `${pct(r.cacheBytes === null ? null : r.cacheBytes / weights)} of checkpoint`,
      '≤ 10%',
    ],
    ['trace wall', `${(last.wallMs / 1000).toFixed(1)} s`, '', '≤ 15 min, aim ≤ 5 min'],
  ];
  out.push(table(['memory / disk / time', 'value', 'ratio', 'issue 12 target'], rows));
  out.push(
    `peak ${gib(peak)} ${peak <= 1.5 * weights ? '≤' : '>'} 1.5× weights (${gib(1.5 * weights)}); ${peak <= 6e9 ? '≤' : '>'} 6 GB`,
  );
  out.push('');
  const g = e.graph;
  out.push(
    `graph: ${g.nodes} nodes, ${g.edges ?? NA} nonzero edges unpruned; pruned: ${g.pruned.nodes} nodes, ${g.pruned.edges} edges, ` +
      `replacement ${g.pruned.replacementScore.toFixed(3)}, completeness ${g.pruned.completenessScore.toFixed(3)}`,
  );
  const c = e.completeness;
  out.push(
    c
      ? `completeness of the rows (Σ_s A[t,s] + c_t vs the target's ${c.featureValues} / demeaned logit): ${c.rows} rows ` +
          `(${c.logitRows} logits), max rel ${c.maxRel.toExponential(2)} (row ${c.worstRow}), ${c.over1e3} rows > 1e-3 — ` +
          `${c.maxRel <= 1e-3 ? 'OK' : 'NOT complete'}`
      : `completeness: not checked (${e.completenessError})`,
  );
  if (r.flops && r.backwardMs !== null) {
    const f = r.flops;
    const rate = r.gflops ?? 0;
    out.push(
      `backward: ${flop(f.total)} (contraction ${(f.contraction / 1e9).toFixed(1)}, O proj ${(f.outputProj / 1e9).toFixed(1)}, ` +
        `pattern ${(f.pattern / 1e9).toFixed(1)}, V proj ${(f.valueProj / 1e9).toFixed(1)} GFLOP) in ${ms(r.backwardMs)} ms (logits + features) = ` +
        `${rate.toFixed(1)} GFLOP/s${r.gemm ? `, ${pct(rate / r.gemm.gflops)} of the GEMM rate` : ''}`,
    );
    out.push(`batches (B, t, top): ${describeBatches(last.calls)}`);
  }
  const t = r.torch;
  if (t === null) out.push('PyTorch: skipped (--no-torch)');
  else if ('unavailable' in t) out.push(`PyTorch: not run — ${t.unavailable}`);
  else {
    const tm = t.runs[t.runs.length - 1];
    out.push(
      `PyTorch ${t.torch} (circuit-tracer's method, same batches): ${ms(tm.total_ms)} ms (graph builds ${ms(tm.build_ms)}, backward ${ms(tm.backward_ms)}, ` +
        `contraction ${ms(tm.contraction_ms)}); torch ÷ engine backward = ${ratio(r.torchRatio)} (> 1: engine faster); ` +
        `rows agree to ${t.verify ? t.verify.max_rel_to_row_scale.toExponential(1) : NA} of the row scale; logits match: ${t.logit_choice_matches ? 'yes' : 'no'}; ` +
        `active ${t.active.engine}/${t.active.torch}; torch peak RSS ${gib(t.max_rss_kb * 1024)}`,
    );
  }
  return `${out.join('\n')}\n`;
}

function flop(x: number): string {
  return x >= 1e12 ? `${(x / 1e12).toFixed(2)} TFLOP` : `${(x / 1e9).toFixed(1)} GFLOP`;
}

function describeBatches(calls: { B: number; t: number; top: number }[]): string {
  const parts: string[] = [];
  let i = 0;
  while (i < calls.length) {
    let j = i;
    const same = (k: number) =>
      calls[k].B === calls[i].B && calls[k].t === calls[i].t && calls[k].top === calls[i].top;
    while (j < calls.length && same(j)) j++;
    parts.push(`${j - i}×(${calls[i].B},t${calls[i].t},L${calls[i].top})`);
    i = j;
  }
  return parts.join(' + ');
}

async function main(argv: string[]): Promise<number> {
  const o = parseArgs(argv);
  const tStart = performance.now();
  const load1 = os.loadavg()[0];
  const spec = chosenSpec(o);
  const tokenIdsList = tokenIds(spec.vocab, o.tokens);

  const tGen = performance.now();
  const ck = ensureSyntheticGemma2(spec, o.cacheDir, log, ['model', o.transcoders]);
  const generatedMs = ck.reused ? null : performance.now() - tGen;
  const transcoderDir = { plt: ck.transcoderDir, clt: ck.cltDir, gemmascope: ck.gemmaScopeDir }[
    o.transcoders
  ];
  const modelBytes = diskUsage(ck.modelDir);
  const transcoderBytes = diskUsage(transcoderDir);

  let gemm: GemmRate | null = null;
  if (o.gemmSize > 0) {
    log(`float32 GEMM rate (${o.gemmSize}³) ...`);
    gemm = await measureGemm(o.gemmSize, 3, o.threads);
  }

  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'circuit-bench-scale-'));
  const report: Report = {
    bench: 'scale',
    date: new Date().toISOString(),
    machine: machineInfo(load1),
    options: (({ json: _j, python: _p, ...rest }) => rest)(o),
    spec,
    checkpoint: {
      dir: ck.dir,
      modelDir: ck.modelDir,
      transcoderDir,
      generatedMs,
      modelBytes,
      transcoderBytes,
    },
    tokenIds: tokenIdsList,
    gemm,
    engine: null,
    engineError: null,
    cacheBytes: null,
    flops: null,
    backwardMs: null,
    gflops: null,
    torch: null,
    torchRatio: null,
    wallMs: 0,
  };
  try {
    // PyTorch holds every tensor as float32 (2× the bf16 bytes) plus the file it is reading.
    const torchBytes =
      2 * (modelBytes + transcoderBytes) + 1.5 * GiB + largestFile([ck.modelDir, transcoderDir]);
    const torchBudget = 0.75 * os.totalmem();
    let torchWhy: string | null = null;
    if (o.torch && torchBytes > torchBudget)
      torchWhy = `it would need ~${gib(torchBytes)} of memory (budget ${gib(torchBudget)}); try fewer --layers`;
    else if (o.torch) torchWhy = torchAvailable(o.python);
    const runTorch = o.torch && torchWhy === null;
    if (torchWhy !== null) report.torch = { unavailable: torchWhy };

    const cacheRoot = path.join(work, 'cache');
    fs.mkdirSync(cacheRoot);
    const args: ScaleChildArgs = {
      modelDir: ck.modelDir,
      transcoderDir,
      cacheRoot,
      threads: o.threads,
      provider: o.provider,
      tokenIds: tokenIdsList,
      settings: {
        maxNLogits: o.maxNLogits,
        desiredLogitProb: o.desiredLogitProb,
        maxFeatureNodes: o.maxFeatureNodes,
        batchSize: o.batchSize,
      },
      repeat: o.repeat,
      exportDir: runTorch ? work : null,
    };
    log(`engine: trace in a child process (cache ${cacheRoot}) ...`);
    try {
      const run = await runEngineChild(args);
      report.engine = {
        ...run.result,
        sampledPeakKb: run.sampledPeakKb,
        samples: run.samples,
        childWallMs: run.wallMs,
      };
      const last = run.result.traces[run.result.traces.length - 1];
      report.flops = sumFlops(run.result.shape, last.calls);
      report.backwardMs = last.timingsMs.logits + last.timingsMs.features;
      report.gflops = report.flops.total / (report.backwardMs * 1e6);
    } catch (err) {
      report.engineError = (err as Error).message;
    }
    report.cacheBytes = diskUsage(cacheRoot);

    const e = report.engine;
    if (runTorch && e?.targetsFile && e.rowsFile) {
      log('PyTorch reference on the same batches ...');
      try {
        const t = await runAttributionReference<TorchResult>(o.python, {
          modelDir: ck.modelDir,
          transcoderDir,
          targetsFile: e.targetsFile,
          rowsFile: e.rowsFile,
          repeat: o.repeat,
          warmup: 0,
          threads: o.threads,
        });
        report.torch = t;
        const tm = t.runs[t.runs.length - 1].total_ms;
        if (report.backwardMs) report.torchRatio = tm / report.backwardMs;
      } catch (err) {
        report.torch = { unavailable: `failed: ${(err as Error).message}` };
      }
    }
  } finally {
    if (o.keep) log(`work folder kept at ${work}`);
    else fs.rmSync(work, { recursive: true, force: true });
  }
  report.wallMs = performance.now() - tStart;
  printReport(render(report), report, o.json);
  return report.engine ? 0 : 1;
}

function largestFile(dirs: string[]): number {
  let max = 0;
  for (const d of dirs)
    for (const f of fs.readdirSync(d)) max = Math.max(max, fs.statSync(path.join(d, f)).size);
  return max;
}

runBench(main);
