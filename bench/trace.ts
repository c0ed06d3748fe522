/**
 * Attribution (trace) benchmark: the engine's backward batches (ONNX Runtime, CPU) against
 * a fast float32 PyTorch implementation of the same linearized backward
 * (native/reference/bench_attribution.py, circuit-tracer's method), on the same prompt and
 * the same targets. A benchmark prints figures; it is not a test.
 *
 *   npx tsx bench/trace.ts [--small] [--tokens 16] [--max-feature-nodes 1024] [--batch-size 256]
 *                          [--repeat 3] [--warmup 1] [--threads 2] [--json] [--only NAME,...]
 *                          [--profile-batches 2] [--no-torch] [--python /usr/bin/python3]
 *                          [--model DIR --transcoders DIR [--prompt TEXT]] [--cache-dir DIR]
 *   npm run bench:trace -- [same options]
 *
 * Checkpoints: the demo model (resources/models/gemma2-demo with transcoders/plt and
 * transcoders/clt, prompt "The capital of state containing Dallas is"; skipped with a
 * message when absent) and a synthetic Gemma-2-family checkpoint (bench/synthetic-gemma2.ts,
 * 8 layers × hidden 1024, 8192 features per layer; `--small`: 2 × 256, 1024 features) whose
 * JumpReLU thresholds keep ~64 features active per token per layer (GemmaScope-like), on
 * --tokens random token ids. `--model/--transcoders` adds any other checkpoint.
 *
 * Per checkpoint + transcoder set, in child processes (each peak RSS its own):
 * 1. bench/trace-child.ts: cold compile, sessions, warm-up + --repeat traces with the
 *    engine's phase timings and every backward batch's B, t, feeds / session.run / scatter
 *    times, the targets and rows of the last trace, an ONNX Runtime profile of a few batches;
 * 2. native/reference/bench_attribution.py: the same batches in PyTorch, timed, and its rows
 *    compared with the engine's.
 * Before the checkpoints, the machine's float32 GEMM rate (bench/gemm.ts). The backward's
 * FLOPs come from the graph's matrix products for the batches actually run
 * (bench/trace-flops.ts).
 *
 * Output: aligned tables on stdout; with --json, the tables go to stderr and stdout gets one
 * JSON line. Progress goes to stderr.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AttributionPhase, AttributionSettings } from '../electron/engine/attribution/attribute.ts';
import { hash32, seedOf } from '../tests/fixtures/tiny-checkpoints.ts';
import { RESULT_PREFIX } from './forward-child.ts';
import { type GemmRate, measureGemm } from './gemm.ts';
import {
  type EngineInfo,
  engineInfo,
  log,
  type MachineInfo,
  machineInfo,
  median,
  ms,
  NA,
  printReport,
  ratio,
  readFlags,
  runAttributionReference,
  runBench,
  runChild,
  sci,
  table,
  torchAvailable,
  traceBenchFlag,
} from './shared.ts';
import {
  defaultBenchCacheRoot,
  ensureSyntheticGemma2,
  GEMMA2_MID,
  GEMMA2_SMALL,
  type SyntheticGemma2Spec,
  thresholdForActive,
} from './synthetic-gemma2.ts';
import type { TraceChildArgs, TraceChildResult, TraceRun } from './trace-child.ts';
import { batchFlops, type FlopBreakdown, sumFlops } from './trace-flops.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..');
const CHILD_SCRIPT = path.join(HERE, 'trace-child.ts');
const DEMO_DIR = path.join(ROOT, 'resources', 'models', 'gemma2-demo');
const DEMO_PROMPT = 'The capital of state containing Dallas is';
/** Active features per token per layer the synthetic transcoders aim at (GemmaScope: 30–100). */
const SYNTHETIC_ACTIVE = 64;

// ---------------------------------------------------------------------------------------
// Options

interface Options {
  small: boolean;
  tokens: number;
  maxFeatureNodes: number;
  batchSize: number;
  maxNLogits: number;
  desiredLogitProb: number;
  repeat: number;
  warmup: number;
  threads: number;
  json: boolean;
  only: string[] | null;
  python: string;
  torch: boolean;
  profileBatches: number;
  cacheDir: string;
  demoDir: string;
  custom: { model: string; transcoders: string; prompt: string | null } | null;
  gemmSize: number;
  keep: boolean;
  torchMalloc: 'tuned' | 'default';
}

const USAGE = `usage: npx tsx bench/trace.ts [options]
  --small                  small synthetic checkpoint (2 layers, hidden 256, 1024 features/layer)
  --tokens 16              prompt length of the synthetic checkpoint (random ids, BOS first)
  --max-feature-nodes 1024 feature rows per trace (the cap of attribution.md §4)
  --batch-size 256         targets per backward batch
  --max-n-logits 10        --desired-logit-prob 0.95
  --repeat 3               timed traces per checkpoint, after --warmup 1 untimed
  --threads 2              ONNX Runtime intra-op threads and torch.set_num_threads
  --only a,b               only these checkpoints (demo-plt, demo-clt, ${GEMMA2_MID.name}-sparse, ${GEMMA2_SMALL.name}-sparse, custom)
  --profile-batches 2      feature batches replayed under ONNX Runtime's profiler (0: none)
  --python PATH            interpreter with torch (default /usr/bin/python3); --no-torch: engine only
  --torch-malloc tuned     tuned: glibc keeps freed tensors for reuse (as ORT's arena); default: as is
  --model DIR --transcoders DIR [--prompt TEXT]   also bench this checkpoint (random ids without --prompt)
  --demo DIR               the demo model folder (default resources/models/gemma2-demo)
  --cache-dir DIR          where the synthetic checkpoint is generated (default ${defaultBenchCacheRoot()})
  --gemm-size 2048         n of the n×n×n GEMM-rate probe (0 skips it)
  --keep                   keep the work folders (targets, rows, ORT profiles)
  --json                   one JSON line on stdout (tables on stderr)`;

function parseArgs(argv: string[]): Options {
  const o: Options = {
    small: false,
    tokens: 16,
    maxFeatureNodes: 1024,
    batchSize: 256,
    maxNLogits: 10,
    desiredLogitProb: 0.95,
    repeat: 3,
    warmup: 1,
    threads: 2,
    json: false,
    only: null,
    python: process.env.CIRCUIT_REFERENCE_PYTHON ?? '/usr/bin/python3',
    torch: true,
    profileBatches: 2,
    cacheDir: defaultBenchCacheRoot(),
    demoDir: DEMO_DIR,
    custom: null,
    gemmSize: 2048,
    keep: false,
    torchMalloc: 'tuned',
  };
  let model: string | null = null;
  let transcoders: string | null = null;
  let prompt: string | null = null;
  readFlags(argv, USAGE, (flag, next) => {
    switch (flag) {
      case '--small':
        o.small = true;
        return true;
      case '--warmup':
        o.warmup = next.int(0);
        return true;
      case '--only':
        o.only = next.value().split(',');
        return true;
      case '--profile-batches':
        o.profileBatches = next.int(0);
        return true;
      case '--model':
        model = path.resolve(next.value());
        return true;
      case '--transcoders':
        transcoders = path.resolve(next.value());
        return true;
      case '--prompt':
        prompt = next.value();
        return true;
      case '--demo':
        o.demoDir = path.resolve(next.value());
        return true;
      case '--torch-malloc': {
        const v = next.value();
        if (v !== 'tuned' && v !== 'default') throw new Error('--torch-malloc is tuned or default');
        o.torchMalloc = v;
        return true;
      }
      default:
        return traceBenchFlag(o, flag, next);
    }
  });
  if ((model === null) !== (transcoders === null)) throw new Error('--model and --transcoders go together');
  if (model && transcoders) o.custom = { model, transcoders, prompt };
  return o;
}

// ---------------------------------------------------------------------------------------
// Checkpoints

interface Checkpoint {
  name: string;
  modelDir: string;
  transcoderDir: string;
  prompt?: string;
  /** Random token ids of this length (BOS first) when there is no prompt. */
  randomTokens?: number;
}

function sparseSpec(base: SyntheticGemma2Spec, active = SYNTHETIC_ACTIVE): SyntheticGemma2Spec {
  return { ...base, name: `${base.name}-sparse`, thresholdMean: thresholdForActive(base.features, active) };
}

function demoComplete(dir: string, tc: string): string | null {
  const need = ['config.json', 'tokenizer.json', path.join('transcoders', tc, 'config.yaml')];
  const missing = need.filter((f) => !fs.existsSync(path.join(dir, f)));
  if (!fs.existsSync(dir)) return `${dir} is absent (the demo model is being built separately)`;
  if (missing.length) return `${dir} is incomplete (no ${missing.join(', ')})`;
  return null;
}

function checkpoints(o: Options): { list: (() => Checkpoint)[]; skipped: string[] } {
  const spec = sparseSpec(o.small ? GEMMA2_SMALL : GEMMA2_MID);
  const all: { name: string; get: () => Checkpoint; why?: string | null }[] = [];
  for (const tc of ['plt', 'clt']) {
    all.push({
      name: `demo-${tc}`,
      why: demoComplete(o.demoDir, tc),
      get: () => ({
        name: `demo-${tc}`,
        modelDir: o.demoDir,
        transcoderDir: path.join(o.demoDir, 'transcoders', tc),
        prompt: DEMO_PROMPT,
      }),
    });
  }
  all.push({
    name: spec.name,
    get: () => {
      const s = ensureSyntheticGemma2(spec, o.cacheDir, log);
      return {
        name: spec.name,
        modelDir: s.modelDir,
        transcoderDir: s.transcoderDir,
        randomTokens: o.tokens,
      };
    },
  });
  const custom = o.custom;
  if (custom) {
    all.push({
      name: 'custom',
      get: () => ({
        name: `custom:${path.basename(custom.model)}/${path.basename(custom.transcoders)}`,
        modelDir: custom.model,
        transcoderDir: custom.transcoders,
        prompt: custom.prompt ?? undefined,
        randomTokens: custom.prompt ? undefined : o.tokens,
      }),
    });
  }
  if (o.only) {
    const unknown = o.only.filter((n) => !all.some((c) => c.name === n));
    if (unknown.length)
      throw new Error(
        `unknown checkpoint(s) ${unknown.join(', ')}; known: ${all.map((c) => c.name).join(', ')}`,
      );
  }
  const chosen = all.filter((c) => !o.only || o.only.includes(c.name));
  return {
    list: chosen.filter((c) => !c.why).map((c) => c.get),
    skipped: chosen.filter((c) => c.why).map((c) => `${c.name}: skipped — ${c.why}`),
  };
}

// ---------------------------------------------------------------------------------------
// Children

interface TorchRun {
  total_ms: number;
  /** Process CPU time (user + system, all threads) over the run. */
  cpu_ms: number;
  build_ms: number;
  backward_ms: number;
  contraction_ms: number;
  batches: { B: number; ms: number }[];
}

interface TorchResult {
  torch: string;
  python: string;
  threads: number;
  malloc: string;
  load_ms: number;
  setup_ms: number;
  frozen_replay_max_abs: number;
  frozen_replay_scale: number;
  logit_choice_matches: boolean;
  active: { engine: number; torch: number; engine_not_torch: number };
  activation_max_rel: number;
  runs: TorchRun[];
  verify: {
    rows: number;
    max_rel_to_row_scale: number;
    mean_rel_to_row_scale: number;
    worst_row: number;
    columns_excluded: number;
  } | null;
  max_rss_kb: number;
}

// ---------------------------------------------------------------------------------------
// Measuring one checkpoint

const PHASES: AttributionPhase[] = ['forward', 'setup', 'logits', 'features', 'assemble'];

const backwardMs = (r: TraceRun) => r.timingsMs.logits + r.timingsMs.features;

interface Row {
  name: string;
  prompt: string | null;
  engine: TraceChildResult | null;
  torch: TorchResult | null;
  /** Engine medians over the timed traces. */
  phasesMs: Record<AttributionPhase, number> | null;
  backwardMs: number | null;
  rowsCallsMs: { total: number; feeds: number; run: number; scatter: number } | null;
  batches: string | null;
  flops: FlopBreakdown | null;
  /** The same batches at t = T (what running every batch over the whole prompt would cost). */
  flopsUntruncated: FlopBreakdown | null;
  gflops: number | null;
  gflopsInRun: number | null;
  torchMs: number | null;
  speedup: number | null;
  speedupRowsOnly: number | null;
  /** PyTorch CPU time ÷ the engine's CPU time in rows() (all threads, spinning included). */
  cpuRatio: number | null;
  errors: string[];
}

async function measure(ck: Checkpoint, o: Options, torchOk: boolean): Promise<Row> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'circuit-bench-trace-'));
  const row: Row = {
    name: ck.name,
    prompt: ck.prompt ?? null,
    engine: null,
    torch: null,
    phasesMs: null,
    backwardMs: null,
    rowsCallsMs: null,
    batches: null,
    flops: null,
    flopsUntruncated: null,
    gflops: null,
    gflopsInRun: null,
    torchMs: null,
    speedup: null,
    speedupRowsOnly: null,
    cpuRatio: null,
    errors: [],
  };
  try {
    const settings: AttributionSettings = {
      maxNLogits: o.maxNLogits,
      desiredLogitProb: o.desiredLogitProb,
      maxFeatureNodes: o.maxFeatureNodes,
      batchSize: o.batchSize,
    };
    const args: TraceChildArgs = {
      modelDir: ck.modelDir,
      transcoderDir: ck.transcoderDir,
      cacheRoot: path.join(work, 'compiled'),
      threads: o.threads,
      prompt: ck.prompt,
      tokenIds: ck.randomTokens ? randomTokenIds(ck.modelDir, ck.randomTokens) : undefined,
      settings,
      warmup: o.warmup,
      repeat: o.repeat,
      outDir: work,
      profileBatches: o.profileBatches,
    };
    try {
      log(`${ck.name}: engine (compile, sessions, ${o.warmup} + ${o.repeat} traces) ...`);
      const e = await runChild<TraceChildResult>(
        process.execPath,
        [...process.execArgv, CHILD_SCRIPT, JSON.stringify(args)],
        RESULT_PREFIX,
      );
      row.engine = e;
      const phases = {} as Record<AttributionPhase, number>;
      for (const p of PHASES) phases[p] = median(e.traces.map((t) => t.timingsMs[p]));
      row.phasesMs = phases;
      row.backwardMs = median(e.traces.map(backwardMs));
      const sum = (t: TraceRun, f: (c: TraceRun['calls'][number]) => number) =>
        t.calls.reduce((s, c) => s + f(c), 0);
      row.rowsCallsMs = {
        total: median(e.traces.map((t) => sum(t, (c) => c.totalMs))),
        feeds: median(e.traces.map((t) => sum(t, (c) => c.feedsMs))),
        run: median(e.traces.map((t) => sum(t, (c) => c.runMs))),
        scatter: median(e.traces.map((t) => sum(t, (c) => c.scatterMs))),
      };
      const calls = e.traces[e.traces.length - 1].calls;
      row.batches = describeBatches(calls);
      const T = e.tokenIds.length;
      row.flops = sumFlops(e.shape, calls);
      row.flopsUntruncated = sumFlops(
        e.shape,
        calls.map((c) => ({ B: c.B, t: T })),
      );
      row.gflops = row.flops.total / (row.backwardMs * 1e6);
      row.gflopsInRun = row.flops.total / (row.rowsCallsMs.run * 1e6);
      if (e.profileError) row.errors.push(`ORT profile: ${e.profileError}`);
    } catch (err) {
      row.errors.push(`engine: ${(err as Error).message}`);
    }

    if (row.engine && o.torch && torchOk) {
      try {
        log(`${ck.name}: PyTorch (${o.warmup} + ${o.repeat} runs of the same batches) ...`);
        const t = await runAttributionReference<TorchResult>(o.python, {
          modelDir: ck.modelDir,
          transcoderDir: ck.transcoderDir,
          targetsFile: row.engine.targetsFile,
          rowsFile: row.engine.rowsFile,
          repeat: o.repeat,
          warmup: o.warmup,
          threads: o.threads,
          malloc: o.torchMalloc,
        });
        row.torch = t;
        row.torchMs = median(t.runs.map((r) => r.total_ms));
        if (row.backwardMs) row.speedup = row.torchMs / row.backwardMs;
        if (row.rowsCallsMs) row.speedupRowsOnly = row.torchMs / row.rowsCallsMs.total;
        const engineCpu = median(
          row.engine.traces.map((x) => x.calls.reduce((sum, c) => sum + c.userMs + c.systemMs, 0)),
        );
        row.cpuRatio = median(t.runs.map((r) => r.cpu_ms)) / engineCpu;
      } catch (err) {
        row.errors.push(`torch: ${(err as Error).message}`);
      }
    }
    return row;
  } finally {
    if (o.keep) log(`${ck.name}: work folder kept at ${work}`);
    else fs.rmSync(work, { recursive: true, force: true });
  }
}

/** Deterministic random ids in [0, vocab) with the model's BOS at position 0 (as bench/forward.ts). */
function randomTokenIds(modelDir: string, T: number): number[] {
  const cfg = JSON.parse(fs.readFileSync(path.join(modelDir, 'config.json'), 'utf8')) as {
    vocab_size: number;
    bos_token_id?: number | null;
  };
  const seed = seedOf(`bench/trace/${T}`);
  const ids = Array.from({ length: T }, (_, i) => hash32(seed, i) % cfg.vocab_size);
  if (typeof cfg.bos_token_id === 'number' && cfg.bos_token_id < cfg.vocab_size) ids[0] = cfg.bos_token_id;
  return ids;
}

/** e.g. "1×(10,t16) + 4×(256,t16)": runs of equal (B, t). */
function describeBatches(calls: { B: number; t: number }[]): string {
  const parts: string[] = [];
  let i = 0;
  while (i < calls.length) {
    let j = i;
    while (j < calls.length && calls[j].B === calls[i].B && calls[j].t === calls[i].t) j++;
    parts.push(`${j - i}×(${calls[i].B},t${calls[i].t})`);
    i = j;
  }
  return parts.join(' + ');
}

// ---------------------------------------------------------------------------------------
// Formatting

function num(x: number | null | undefined, digits = 1): string {
  return x === null || x === undefined || !Number.isFinite(x) ? NA : x.toFixed(digits);
}

function pct(x: number | null | undefined): string {
  return x === null || x === undefined || !Number.isFinite(x) ? NA : `${(x * 100).toFixed(0)}%`;
}

function gflop(x: number): string {
  return (x / 1e9).toFixed(x < 1e10 ? 2 : 1);
}

interface Report {
  bench: 'trace';
  date: string;
  machine: MachineInfo;
  engine: EngineInfo;
  torch:
    | { version: string; python: string; threads: number; malloc: string }
    | { unavailable: string }
    | null;
  options: Omit<Options, 'json' | 'python' | 'custom'>;
  gemm: GemmRate | null;
  skipped: string[];
  checkpoints: Row[];
  goals: { name: string; torchOverEngine: number | null; gemmFraction: number | null }[];
}

function render(r: Report): string {
  const out: string[] = [];
  const t = r.torch;
  const torchDesc =
    t === null
      ? 'PyTorch: skipped (--no-torch)'
      : 'unavailable' in t
        ? `PyTorch: unavailable (${t.unavailable})`
        : `PyTorch ${t.version} float32 autograd, circuit-tracer's method (${t.threads} threads, ${t.malloc} malloc)`;
  out.push(
    `trace — engine: onnxruntime-node ${r.engine.onnxruntime}, cpu, ${r.engine.threads} threads, float32; ${torchDesc}`,
  );
  out.push(
    `machine: ${r.machine.cpu}, ${r.machine.cores} logical CPUs; load average ${r.machine.load1.toFixed(2)} at start`,
  );
  out.push(
    r.gemm
      ? `float32 GEMM (ONNX MatMul ${r.gemm.n}³, ${r.gemm.threads} threads, best of 3): ${r.gemm.gflops.toFixed(1)} GFLOP/s`
      : 'float32 GEMM: skipped',
  );
  const o = r.options;
  out.push(
    `settings: max_feature_nodes ${o.maxFeatureNodes}, batch_size ${o.batchSize}, max_n_logits ${o.maxNLogits}, desired_logit_prob ${o.desiredLogitProb}; ${o.warmup} warm-up + ${o.repeat} timed traces (medians, ms)`,
  );
  for (const s of r.skipped) out.push(s);
  const rows = r.checkpoints;
  const ok = rows.filter((c) => c.engine);
  if (ok.length) {
    out.push('');
    out.push(
      table(
        [
          'checkpoint',
          'tokens',
          'active',
          'per tok·layer',
          'rows',
          'compile fwd',
          'compile lin',
          'fwd session',
          'lin sessions',
          'fwd pass',
          'forward',
          'setup',
          'logits',
          'features',
          'assemble',
          'trace',
        ],
        ok.map((c) => {
          const e = c.engine!;
          const p = c.phasesMs!;
          const a = e.activePerTokenLayer;
          return [
            c.name,
            String(e.tokenIds.length),
            String(e.nActive),
            `${a.mean.toFixed(0)} (${a.min}–${a.max})`,
            `${e.nFeatureRows}+${e.logitTokens.length}`,
            ms(e.compileForwardMs),
            ms(e.compileLinearMs),
            ms(e.forwardSessionMs),
            ms(e.linearSessionsMs),
            ms(e.forwardCacheMs),
            ms(p.forward),
            ms(p.setup),
            ms(p.logits),
            ms(p.features),
            ms(p.assemble),
            ms(PHASES.reduce((s, k) => s + p[k], 0)),
          ];
        }),
      ),
    );
    out.push(
      "forward = the engine's 'forward' phase: the model's forward with hooks (fwd pass, measured alone), the reconstruction and source space (decoder rows), encoder rows; lin sessions = backward + frozen-forward session creation, once per model (Attributor.create), not per trace; compile = cold, empty cache",
    );
    out.push('');
    out.push(
      table(
        [
          'checkpoint',
          'batches (B, t)',
          'GFLOP',
          'no trunc.',
          'logits+features',
          'GFLOP/s',
          'of GEMM',
          'session.run',
          'GFLOP/s',
          'of GEMM',
          'feeds',
          'scatter',
          'selection etc.',
        ],
        ok.map((c) => {
          const g = r.gemm?.gflops ?? null;
          const rc = c.rowsCallsMs!;
          return [
            c.name,
            c.batches ?? NA,
            gflop(c.flops!.total),
            gflop(c.flopsUntruncated!.total),
            ms(c.backwardMs),
            num(c.gflops),
            pct(g && c.gflops ? c.gflops / g : null),
            ms(rc.run),
            num(c.gflopsInRun),
            pct(g && c.gflopsInRun ? c.gflopsInRun / g : null),
            ms(rc.feeds),
            ms(rc.scatter),
            ms((c.backwardMs ?? 0) - rc.total),
          ];
        }),
      ),
    );
    out.push(
      'GFLOP: matrix products of the backward graph for the batches run (contraction + O/V projections + frozen pattern + W_skip); each batch over its t positions and up to its top layer; no trunc.: the same batches over all T positions and all layers',
    );
    out.push(
      'session.run / feeds / scatter: inside LinearModelRunner.rows; selection etc.: the rest of logits+features (partial influence, target vectors, bookkeeping)',
    );
    out.push('');
    const perBatch: string[][] = [];
    for (const c of ok) {
      const e = c.engine!;
      const calls = e.traces[e.traces.length - 1].calls;
      calls.forEach((call, i) => {
        const f = batchFlops(e.shape, call).total;
        const w = e.warmReplay[i];
        perBatch.push([
          i === 0 ? c.name : '',
          i === 0 ? 'logits' : String(i),
          String(call.B),
          String(call.t),
          gflop(f),
          ms(call.totalMs),
          ms(call.runMs),
          num(f / (call.runMs * 1e6)),
          ms(call.userMs + call.systemMs),
          ms(call.systemMs),
          String(call.pageFaults),
          w ? ms(w.totalMs) : NA,
          w ? ms(w.runMs) : NA,
          w ? num(f / (w.runMs * 1e6)) : NA,
          w ? ms(w.userMs + w.systemMs) : NA,
          w ? String(w.pageFaults) : NA,
        ]);
      });
    }
    out.push(
      table(
        [
          'checkpoint',
          'batch',
          'B',
          't',
          'GFLOP',
          'rows()',
          'session.run',
          'GFLOP/s',
          'cpu',
          'sys',
          'faults',
          'warm rows()',
          'warm run',
          'GFLOP/s',
          'cpu',
          'faults',
        ],
        perBatch,
        2,
      ),
    );
    out.push(
      "per batch of the last timed trace; cpu/sys: the process's CPU ms over the call (all threads, ORT's spinning included), faults: minor page faults (fresh memory touched); warm: the same batch again after the trace on that trace's backward session (fastest of --repeat) — each trace's `prepare` creates fresh sessions, whose arena grows during the first batches",
    );
    out.push('');
    out.push(
      table(
        ['checkpoint', 'contraction', 'O/V proj', 'pattern', 'W_skip'],
        ok.map((c) => {
          const f = c.flops!;
          return [
            c.name,
            pct(f.contraction / f.total),
            pct((f.outputProj + f.valueProj) / f.total),
            pct(f.pattern / f.total),
            pct(f.skip / f.total),
          ];
        }),
      ),
    );
    const withTorch = ok.filter((c) => c.torch);
    if (withTorch.length) {
      out.push('');
      out.push(
        table(
          [
            'checkpoint',
            'torch total',
            'graph build',
            'backward',
            'contraction',
            'engine logits+features',
            'torch/engine',
            'excl. graph build',
            'vs engine rows()',
            'CPU torch/engine',
            'max|Δ|/row scale',
            'logits match',
            'active engine/torch',
          ],
          withTorch.map((c) => {
            const tr = c.torch!;
            const m = (f: (x: TorchRun) => number) => median(tr.runs.map(f));
            return [
              c.name,
              ms(c.torchMs),
              ms(m((x) => x.build_ms)),
              ms(m((x) => x.backward_ms)),
              ms(m((x) => x.contraction_ms)),
              ms(c.backwardMs),
              ratio(c.speedup),
              ratio(c.backwardMs ? (c.torchMs! - m((x) => x.build_ms)) / c.backwardMs : null),
              ratio(c.speedupRowsOnly),
              ratio(c.cpuRatio),
              sci(tr.verify?.max_rel_to_row_scale),
              tr.logit_choice_matches ? 'yes' : 'NO',
              `${tr.active.engine}/${tr.active.torch}${tr.active.engine_not_torch ? ` (${tr.active.engine_not_torch} differ)` : ''}`,
            ];
          }),
        ),
      );
      out.push(
        "torch/engine > 1: the engine is faster. torch total = graph builds (forward on B replicas, once per batch size, as circuit-tracer) + backward + contraction (setup: recorded forward + transcoders, not counted); excl. graph build: torch backward + contraction ÷ engine logits+features; vs engine rows(): torch total ÷ the engine's LinearModelRunner.rows time (no feature selection); CPU: process CPU time (all threads) of the torch runs ÷ of the engine's rows() calls, a second opinion when the machine is loaded",
      );
    }
    for (const c of ok) {
      const pr = c.engine!.profile;
      if (!pr) continue;
      out.push('');
      out.push(
        `${c.name}: ONNX Runtime profile, warm session, fastest of 3 per node and batch, of the logit batch + ${pr.runs - 1} feature batches: model_run ${ms(pr.runMs)} ms, kernels ${ms(pr.kernelMs)} ms`,
      );
      out.push(
        table(
          ['kind', 'ms', 'share', 'nodes', 'GFLOP/s'],
          pr.categories.map((k) => [
            k.name,
            ms(k.ms),
            pct(k.ms / pr.kernelMs),
            String(k.nodes),
            k.flops ? num(k.flops / (k.ms * 1e6)) : '',
          ]),
        ),
      );
      out.push(
        table(
          ['slowest nodes', 'op', 'ms', 'batches', 'GFLOP/s', 'shapes (slowest batch)'],
          pr.topNodes.map((n) => [
            n.name,
            n.op,
            ms(n.ms),
            String(n.runs),
            n.gflops ? num(n.gflops) : '',
            n.shapes,
          ]),
          2,
        ),
      );
    }
  }
  out.push('');
  for (const g of r.goals) {
    const speed =
      g.torchOverEngine === null
        ? 'no PyTorch figure'
        : `${ratio(g.torchOverEngine)} faster than PyTorch (goal ≥ 2×: ${g.torchOverEngine >= 2 ? 'met' : 'NOT met'})`;
    const rate =
      g.gemmFraction === null
        ? 'no GEMM figure'
        : `backward at ${pct(g.gemmFraction)} of the GEMM rate (goal > 50%: ${g.gemmFraction > 0.5 ? 'met' : 'NOT met'})`;
    out.push(`${g.name}: ${speed}; ${rate}`);
  }
  for (const c of rows) for (const e of c.errors) out.push(`${c.name}: ${e}`);
  for (const c of rows) {
    const tr = c.torch;
    if (tr && tr.frozen_replay_max_abs > 1e-3 * Math.max(1, tr.frozen_replay_scale)) {
      out.push(
        `${c.name}: PyTorch frozen replay differs from its recorded forward by ${sci(tr.frozen_replay_max_abs)} (scale ${sci(tr.frozen_replay_scale)})`,
      );
    }
  }
  return `${out.join('\n')}\n`;
}

// ---------------------------------------------------------------------------------------

async function main(argv: string[]): Promise<number> {
  const o = parseArgs(argv);
  const { list, skipped } = checkpoints(o);
  for (const s of skipped) log(s);
  const load1 = os.loadavg()[0];
  let torch: Report['torch'] = null;
  let torchOk = false;
  if (o.torch) {
    const why = torchAvailable(o.python);
    torchOk = why === null;
    if (why !== null) {
      torch = { unavailable: `${o.python}: ${why}` };
      log(`PyTorch unavailable: ${why}`);
    }
  }
  let gemm: GemmRate | null = null;
  if (o.gemmSize > 0) {
    log(`GEMM rate (${o.gemmSize}³) ...`);
    gemm = await measureGemm(o.gemmSize, 3, o.threads);
  }
  const rows: Row[] = [];
  for (const get of list) rows.push(await measure(get(), o, torchOk));
  if (torchOk) {
    const t = rows.find((c) => c.torch)?.torch;
    torch = t
      ? { version: t.torch, python: t.python, threads: t.threads, malloc: t.malloc }
      : { unavailable: 'no PyTorch run succeeded' };
  }
  const { json: _json, python: _python, custom: _custom, ...options } = o;
  const report: Report = {
    bench: 'trace',
    date: new Date().toISOString(),
    machine: machineInfo(load1),
    engine: engineInfo(o.threads),
    torch,
    options,
    gemm,
    skipped,
    checkpoints: rows,
    goals: rows
      .filter((c) => c.engine)
      .map((c) => ({
        name: c.name,
        torchOverEngine: c.speedup,
        gemmFraction: gemm && c.gflops ? c.gflops / gemm.gflops : null,
      })),
  };
  printReport(render(report), report, o.json);
  return rows.some((c) => c.errors.length) ? 1 : 0;
}

runBench(main);
