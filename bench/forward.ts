/**
 * Forward-pass benchmark: the engine (ONNX Runtime, CPU) against the independent PyTorch
 * reference (native/reference/bench_forward.py), measured in the same run and shown as
 * ratios. A benchmark prints figures; it is not a test.
 *
 *   npx tsx bench/forward.ts [--small] [--tokens 16,64] [--repeat 5] [--threads 2] [--json]
 *                            [--only NAME,...] [--python /usr/bin/python3] [--no-torch]
 *                            [--torch-impl lean|reference] [--cache-dir DIR] [--generate-only]
 *   npm run bench:forward -- [same options]
 *
 * Checkpoints: the four tiny fixtures, and a synthetic Gemma-2-family checkpoint with a
 * per-layer JumpReLU transcoder set (bench/synthetic-gemma2.ts; `--small` shrinks it),
 * generated once into the cache folder (default os.tmpdir()/circuit-bench). Its forward
 * includes the transcoder encoders: logits plus every layer's `transcoder.hook_acts`.
 *
 * For each checkpoint, in separate child processes (so each peak RSS is its own):
 * 1. engine compile into an empty cache (cold compile time);
 * 2. engine run: session creation from that cache, then per prompt length one warm-up and
 *    --repeat timed passes (median, min), peak RSS;
 * 3. PyTorch: load time, the same passes on the same token ids, peak RSS.
 * The two sides' logits are compared (max abs difference). Before the checkpoints, the
 * machine's float32 GEMM rate is measured once with a single ONNX MatMul.
 *
 * Output: aligned tables on stdout; with --json, the tables go to stderr and stdout gets one
 * JSON line. Progress goes to stderr.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { openModel } from '../electron/engine/model/open-model.ts';
import { loadTranscoderSet } from '../electron/engine/transcoders/load.ts';
import { FIXTURE_NAMES, fixturePath, hash32, seedOf } from '../tests/fixtures/tiny-checkpoints.ts';
import {
  type EngineChildArgs,
  type EngineCompileResult,
  type EngineRunResult,
  RESULT_PREFIX,
} from './forward-child.ts';
import { type GemmRate, measureGemm } from './gemm.ts';
import {
  benchFlag,
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
  runBench,
  runChild,
  sci,
  table,
  torchAvailable,
} from './shared.ts';
import {
  defaultBenchCacheRoot,
  ensureSyntheticGemma2,
  GEMMA2_MID,
  GEMMA2_SMALL,
  type SyntheticGemma2Spec,
} from './synthetic-gemma2.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..');
const CHILD_SCRIPT = path.join(HERE, 'forward-child.ts');
const TORCH_SCRIPT = path.join(ROOT, 'native', 'reference', 'bench_forward.py');

// ---------------------------------------------------------------------------------------
// Options

interface Options {
  small: boolean;
  tokens: number[];
  repeat: number;
  threads: number;
  json: boolean;
  only: string[] | null;
  python: string;
  torch: boolean;
  torchImpl: 'lean' | 'reference';
  cacheDir: string;
  generateOnly: boolean;
  keep: boolean;
  gemmSize: number;
}

const USAGE = `usage: npx tsx bench/forward.ts [options]
  --small              small synthetic checkpoint (2 layers, hidden 256, vocab 4096, 1024 features)
  --tokens 16,64       prompt lengths (random token ids, the same for both sides)
  --repeat 5           timed passes per length, after 1 warm-up
  --threads 2          ONNX Runtime intra-op threads and torch.set_num_threads
  --only a,b           only these checkpoints (${FIXTURE_NAMES.join(', ')}, ${GEMMA2_MID.name}, ${GEMMA2_SMALL.name})
  --python PATH        interpreter with torch for the reference (default /usr/bin/python3)
  --no-torch           engine only
  --torch-impl lean    lean: eager torch built-ins; reference: native/reference/model.py's forward
  --cache-dir DIR      where the synthetic checkpoint is generated (default ${defaultBenchCacheRoot()})
  --generate-only      generate + validate the synthetic checkpoint, then exit
  --gemm-size 2048     n of the n×n×n GEMM-rate probe (0 skips it)
  --keep               keep the per-checkpoint work folders (compiled graphs, logits)
  --json               one JSON line on stdout (tables on stderr)`;

function parseArgs(argv: string[]): Options {
  const o: Options = {
    small: false,
    tokens: [16, 64],
    repeat: 5,
    threads: 2,
    json: false,
    only: null,
    python: process.env.CIRCUIT_REFERENCE_PYTHON ?? '/usr/bin/python3',
    torch: true,
    torchImpl: 'lean',
    cacheDir: defaultBenchCacheRoot(),
    generateOnly: false,
    keep: false,
    gemmSize: 2048,
  };
  const positiveInts = (s: string, flag: string): number[] => {
    const xs = s.split(',').map((x) => Number(x.trim()));
    if (xs.length === 0 || xs.some((x) => !Number.isInteger(x) || x < 1))
      throw new Error(`${flag} wants positive integers, got ${s}`);
    return xs;
  };
  readFlags(argv, USAGE, (flag, next) => {
    switch (flag) {
      case '--small':
        o.small = true;
        return true;
      case '--tokens':
        o.tokens = [...new Set(positiveInts(next.value(), flag))].sort((x, y) => x - y);
        return true;
      case '--repeat':
        o.repeat = positiveInts(next.value(), flag)[0];
        return true;
      case '--threads':
        o.threads = positiveInts(next.value(), flag)[0];
        return true;
      case '--only':
        o.only = next.value().split(',');
        return true;
      case '--torch-impl': {
        const v = next.value();
        if (v !== 'lean' && v !== 'reference') throw new Error('--torch-impl is lean or reference');
        o.torchImpl = v;
        return true;
      }
      case '--generate-only':
        o.generateOnly = true;
        return true;
      case '--gemm-size': {
        const v = Number(next.value());
        if (!Number.isInteger(v) || v < 0) throw new Error('--gemm-size wants an integer ≥ 0');
        o.gemmSize = v;
        return true;
      }
      default:
        return benchFlag(o, flag, next);
    }
  });
  return o;
}

// ---------------------------------------------------------------------------------------
// Checkpoints

interface Checkpoint {
  name: string;
  modelDir: string;
  transcoderDir?: string;
}

interface CheckpointInfo {
  params: number;
  transcoders: string | null;
  diskBytes: number;
  vocab: number;
  bos: number | undefined;
  /** Positions the model accepts (GPT-2's learned table), or null when unbounded. */
  maxTokens: number | null;
}

function describeCheckpoint(ck: Checkpoint): CheckpointInfo {
  const model = openModel(ck.modelDir);
  try {
    let params = 0;
    for (const shape of model.expectedShapes.values()) params += shape.reduce((a, b) => a * b, 1);
    let diskBytes = model.bytesOnDisk;
    let transcoders: string | null = null;
    if (ck.transcoderDir) {
      const set = loadTranscoderSet(ck.transcoderDir);
      try {
        const files = new Set<string>();
        for (let l = 0; l < set.nLayers; l++) {
          for (const f of set.layerFiles(l)) files.add(f);
          for (const t of Object.values(set.layerTensors(l))) {
            if (t) params += t.shape.reduce((a: number, b: number) => a * b, 1);
          }
        }
        for (const f of files) diskBytes += fs.statSync(f).size;
        transcoders = `${set.nLayers}×${set.dTranscoder} ${set.activation.kind}`;
      } finally {
        set.close();
      }
    }
    const c = model.config;
    return {
      params,
      transcoders,
      diskBytes,
      vocab: c.vocabSize,
      bos: c.bosTokenId,
      maxTokens: c.family === 'gpt2' ? c.maxPositions : null,
    };
  } finally {
    model.close();
  }
}

function syntheticCheckpoint(spec: SyntheticGemma2Spec, cacheDir: string): Checkpoint {
  const s = ensureSyntheticGemma2(spec, cacheDir, log);
  return { name: spec.name, modelDir: s.modelDir, transcoderDir: s.transcoderDir };
}

/** Deterministic random ids in [0, vocab), with the model's BOS (if any) at position 0. */
function tokenIds(T: number, vocab: number, bos: number | undefined): number[] {
  const seed = seedOf(`bench/forward/${T}`);
  const ids = Array.from({ length: T }, (_, i) => hash32(seed, i) % vocab);
  if (bos !== undefined && bos < vocab) ids[0] = bos;
  return ids;
}

// ---------------------------------------------------------------------------------------
// Children

function engineChild<T>(args: EngineChildArgs): Promise<T> {
  return runChild<T>(
    process.execPath,
    [...process.execArgv, CHILD_SCRIPT, JSON.stringify(args)],
    RESULT_PREFIX,
  );
}

interface TorchResult {
  torch: string;
  python: string;
  impl: string;
  threads: number;
  load_ms: number;
  rss_after_load_kb: number;
  max_rss_kb: number;
  runs: { tokens: number; times_ms: number[]; active_fraction: number[] }[];
  reference_check: { tokens: number; max_abs_logits?: number; error?: string } | null;
}

// ---------------------------------------------------------------------------------------
// Measuring one checkpoint

interface Timing {
  medianMs: number;
  minMs: number;
  timesMs: number[];
}

interface LengthRow {
  tokens: number;
  engine: Timing | null;
  torch: Timing | null;
  /** PyTorch time ÷ engine time (> 1: the engine is faster). */
  speedupMedian: number | null;
  speedupMin: number | null;
  maxAbsLogitsDiff: number | null;
  engineActiveFraction: number[];
  torchActiveFraction: number[];
}

interface CheckpointRow extends CheckpointInfo {
  name: string;
  skippedTokens: number[];
  engine: {
    compileMs: number;
    compileMaxRssKb: number;
    sessionMs: number;
    maxRssKb: number;
    rssOverDisk: number;
  } | null;
  torch: {
    loadMs: number;
    rssAfterLoadKb: number;
    maxRssKb: number;
    referenceCheck: TorchResult['reference_check'];
    versions: { version: string; python: string; impl: string; threads: number };
  } | null;
  lengths: LengthRow[];
  errors: string[];
}

function timing(times: number[]): Timing {
  return { medianMs: median(times), minMs: Math.min(...times), timesMs: times };
}

function maxAbsDiffFiles(a: string, b: string): number | null {
  if (!fs.existsSync(a) || !fs.existsSync(b)) return null;
  const x = new Float32Array(new Uint8Array(fs.readFileSync(a)).buffer);
  const y = new Float32Array(new Uint8Array(fs.readFileSync(b)).buffer);
  if (x.length !== y.length) return Number.NaN;
  let m = 0;
  for (let i = 0; i < x.length; i++) {
    const d = Math.abs(x[i] - y[i]);
    if (!(d <= m)) m = d; // NaN propagates
  }
  return m;
}

async function measure(ck: Checkpoint, o: Options, torchOk: boolean): Promise<CheckpointRow> {
  const info = describeCheckpoint(ck);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), `circuit-bench-${ck.name}-`));
  const row: CheckpointRow = {
    name: ck.name + (ck.transcoderDir ? '+tc' : ''),
    ...info,
    skippedTokens: [],
    engine: null,
    torch: null,
    lengths: [],
    errors: [],
  };
  try {
    const tokens: Record<string, number[]> = {};
    for (const T of o.tokens) {
      if (info.maxTokens !== null && T > info.maxTokens) row.skippedTokens.push(T);
      else tokens[T] = tokenIds(T, info.vocab, info.bos);
    }
    const tokensFile = path.join(work, 'tokens.json');
    fs.writeFileSync(tokensFile, JSON.stringify(tokens));
    const base = {
      modelDir: ck.modelDir,
      transcoderDir: ck.transcoderDir,
      cacheRoot: path.join(work, 'compiled'),
      threads: o.threads,
    };

    let engineRun: EngineRunResult | null = null;
    try {
      log(`${row.name}: engine graph build ...`);
      const compiled = await engineChild<EngineCompileResult>({ mode: 'compile', ...base });
      log(`${row.name}: engine run ...`);
      engineRun = await engineChild<EngineRunResult>({
        mode: 'run',
        ...base,
        tokensFile,
        outDir: work,
        repeat: o.repeat,
      });
      row.engine = {
        compileMs: compiled.compileMs,
        compileMaxRssKb: compiled.maxRssKb,
        sessionMs: engineRun.sessionMs,
        maxRssKb: engineRun.maxRssKb,
        rssOverDisk: (engineRun.maxRssKb * 1024) / info.diskBytes,
      };
    } catch (e) {
      row.errors.push(`engine: ${(e as Error).message}`);
    }

    let torchRun: TorchResult | null = null;
    if (o.torch && torchOk) {
      try {
        log(`${row.name}: PyTorch ...`);
        const args = [TORCH_SCRIPT, '--model', ck.modelDir, '--tokens', tokensFile, '--out', work];
        if (ck.transcoderDir) args.push('--transcoders', ck.transcoderDir);
        args.push('--repeat', String(o.repeat), '--threads', String(o.threads), '--impl', o.torchImpl);
        torchRun = await runChild<TorchResult>(o.python, args, null);
        row.torch = {
          loadMs: torchRun.load_ms,
          rssAfterLoadKb: torchRun.rss_after_load_kb,
          maxRssKb: torchRun.max_rss_kb,
          referenceCheck: torchRun.reference_check,
          versions: {
            version: torchRun.torch,
            python: torchRun.python,
            impl: torchRun.impl,
            threads: torchRun.threads,
          },
        };
      } catch (e) {
        row.errors.push(`torch: ${(e as Error).message}`);
      }
    }

    for (const T of Object.keys(tokens).map(Number)) {
      const er = engineRun?.runs.find((r) => r.tokens === T);
      const tr = torchRun?.runs.find((r) => r.tokens === T);
      const engine = er ? timing(er.timesMs) : null;
      const torch = tr ? timing(tr.times_ms) : null;
      row.lengths.push({
        tokens: T,
        engine,
        torch,
        speedupMedian: engine && torch ? torch.medianMs / engine.medianMs : null,
        speedupMin: engine && torch ? torch.minMs / engine.minMs : null,
        maxAbsLogitsDiff:
          er && tr
            ? maxAbsDiffFiles(
                path.join(work, `engine-logits-${T}.f32`),
                path.join(work, `torch-logits-${T}.f32`),
              )
            : null,
        engineActiveFraction: er?.activeFraction ?? [],
        torchActiveFraction: tr?.active_fraction ?? [],
      });
    }
    return row;
  } finally {
    if (o.keep) log(`${row.name}: work folder kept at ${work}`);
    else fs.rmSync(work, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------
// Formatting

function bytes(n: number | undefined | null): string {
  if (n === undefined || n === null) return NA;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(0)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(n < 10 * 1024 ** 2 ? 1 : 0)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

function count(n: number): string {
  if (n < 1e3) return String(n);
  if (n < 1e6) return `${(n / 1e3).toFixed(1)}K`;
  if (n < 1e9) return `${(n / 1e6).toFixed(1)}M`;
  return `${(n / 1e9).toFixed(2)}B`;
}

function mean(xs: number[]): number | null {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null;
}

interface Report {
  bench: 'forward';
  date: string;
  machine: MachineInfo;
  engine: EngineInfo;
  torch: { version: string; python: string; impl: string; threads: number } | { unavailable: string } | null;
  options: { small: boolean; tokens: number[]; repeat: number; threads: number };
  gemm: GemmRate | null;
  checkpoints: CheckpointRow[];
}

function render(r: Report): string {
  const out: string[] = [];
  const t = r.torch;
  const torchDesc =
    t === null
      ? 'PyTorch: skipped (--no-torch)'
      : 'unavailable' in t
        ? `PyTorch: unavailable (${t.unavailable})`
        : `PyTorch ${t.version} eager float32 (${t.impl}, ${t.threads} threads)`;
  out.push(
    `forward pass — engine: onnxruntime-node ${r.engine.onnxruntime}, cpu, ${r.engine.threads} threads, float32; ${torchDesc}`,
  );
  out.push(
    `machine: ${r.machine.cpu}, ${r.machine.cores} logical CPUs, ${bytes(r.machine.memoryBytes)}; load average ${r.machine.load1.toFixed(2)} at start`,
  );
  out.push(
    r.gemm
      ? `float32 GEMM (ONNX MatMul ${r.gemm.n}×${r.gemm.n}×${r.gemm.n}, ${r.gemm.threads} threads, best of 3): ${r.gemm.gflops.toFixed(1)} GFLOP/s (${ms(r.gemm.bestMs)} ms)`
      : 'float32 GEMM: skipped',
  );
  out.push(
    `${r.options.repeat} timed passes per length after 1 warm-up; times in ms; RSS = peak resident set of a fresh child process`,
  );
  out.push('');
  out.push(
    table(
      [
        'checkpoint',
        'params',
        'transcoders',
        'on disk',
        'compile',
        'session',
        'engine RSS',
        'RSS/disk',
        'torch load',
        'torch RSS',
        'torch/engine RSS',
      ],
      r.checkpoints.map((c) => [
        c.name,
        count(c.params),
        c.transcoders ?? NA,
        bytes(c.diskBytes),
        ms(c.engine?.compileMs),
        ms(c.engine?.sessionMs),
        bytes(c.engine ? c.engine.maxRssKb * 1024 : null),
        c.engine ? `${c.engine.rssOverDisk.toFixed(1)}×` : NA,
        ms(c.torch?.loadMs),
        bytes(c.torch ? c.torch.maxRssKb * 1024 : null),
        ratio(c.engine && c.torch ? c.torch.maxRssKb / c.engine.maxRssKb : null),
      ]),
      3,
    ),
  );
  out.push('');
  const rows: string[][] = [];
  for (const c of r.checkpoints) {
    for (const l of c.lengths) {
      rows.push([
        c.name,
        String(l.tokens),
        ms(l.engine?.medianMs),
        ms(l.engine?.minMs),
        ms(l.torch?.medianMs),
        ms(l.torch?.minMs),
        ratio(l.speedupMedian),
        ratio(l.speedupMin),
        sci(l.maxAbsLogitsDiff),
      ]);
    }
    for (const T of c.skippedTokens)
      rows.push([c.name, String(T), `(> ${c.maxTokens} positions)`, '', '', '', '', '', '']);
  }
  out.push(
    table(
      [
        'checkpoint',
        'tokens',
        'engine median',
        'min',
        'torch median',
        'min',
        'torch/engine median',
        'min',
        'max|Δlogits|',
      ],
      rows,
    ),
  );
  out.push('torch/engine > 1: the engine is faster');
  const notes: string[] = [];
  for (const c of r.checkpoints) {
    const rc = c.torch?.referenceCheck;
    if (rc && (rc.error || (rc.max_abs_logits ?? 0) > 1e-3)) {
      notes.push(
        `${c.name}: lean torch forward vs native/reference/model.py at ${rc.tokens} tokens: ${rc.error ?? `max|Δlogits| ${sci(rc.max_abs_logits)}`}`,
      );
    }
    for (const l of c.lengths) {
      const ea = mean(l.engineActiveFraction);
      const ta = mean(l.torchActiveFraction);
      if (ea !== null || ta !== null) {
        notes.push(
          `${c.name} @${l.tokens}: transcoder active fraction engine ${ea?.toFixed(3) ?? NA}, torch ${ta?.toFixed(3) ?? NA}`,
        );
      }
    }
    for (const e of c.errors) notes.push(`${c.name}: ${e}`);
  }
  if (notes.length) out.push('', ...notes);
  return `${out.join('\n')}\n`;
}

// ---------------------------------------------------------------------------------------

function selectedCheckpoints(o: Options, spec: SyntheticGemma2Spec): (() => Checkpoint)[] {
  const all: { name: string; get: () => Checkpoint }[] = [
    ...FIXTURE_NAMES.map((n) => ({ name: n as string, get: () => ({ name: n, modelDir: fixturePath(n) }) })),
    { name: spec.name, get: () => syntheticCheckpoint(spec, o.cacheDir) },
  ];
  if (o.only) {
    const unknown = o.only.filter((n) => !all.some((c) => c.name === n));
    if (unknown.length)
      throw new Error(
        `unknown checkpoint(s) ${unknown.join(', ')}; known: ${all.map((c) => c.name).join(', ')}`,
      );
  }
  return all.filter((c) => !o.only || o.only.includes(c.name)).map((c) => c.get);
}

async function main(argv: string[]): Promise<number> {
  const o = parseArgs(argv);
  const spec = o.small ? GEMMA2_SMALL : GEMMA2_MID;

  if (o.generateOnly) {
    const ck = syntheticCheckpoint(spec, o.cacheDir);
    const info = describeCheckpoint(ck); // opens and validates model + transcoders
    process.stdout.write(
      `${ck.modelDir}\n${ck.transcoderDir}\n${count(info.params)} params, ${info.transcoders}, ${bytes(info.diskBytes)} on disk\n`,
    );
    return 0;
  }

  const selected = selectedCheckpoints(o, spec);
  const load1 = os.loadavg()[0];
  let torch: Report['torch'] = null;
  let torchOk = false;
  if (o.torch) {
    const why = torchAvailable(o.python);
    torchOk = why === null;
    if (why !== null) {
      torch = { unavailable: `${o.python}: ${why}` };
      log(`PyTorch reference unavailable: ${why}`);
    }
  }

  let gemm: GemmRate | null = null;
  if (o.gemmSize > 0) {
    log(`GEMM rate (${o.gemmSize}³) ...`);
    gemm = await measureGemm(o.gemmSize, 3, o.threads);
  }

  const checkpoints: CheckpointRow[] = [];
  for (const get of selected) {
    const row = await measure(get(), o, torchOk);
    checkpoints.push(row);
  }
  const report: Report = {
    bench: 'forward',
    date: new Date().toISOString(),
    machine: machineInfo(load1),
    engine: engineInfo(o.threads),
    torch,
    options: { small: o.small, tokens: o.tokens, repeat: o.repeat, threads: o.threads },
    gemm,
    checkpoints,
  };
  if (torchOk) {
    const v = checkpoints.find((c) => c.torch)?.torch?.versions;
    report.torch = v ?? { unavailable: 'no PyTorch run succeeded' };
  }
  printReport(render(report), report, o.json);
  return checkpoints.some((c) => c.errors.length) ? 1 : 0;
}

runBench(main);
