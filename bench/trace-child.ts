/**
 * Engine side of bench/trace.ts, one checkpoint + transcoder set per child process (so its
 * peak RSS is its own). argv[2] is a JSON `TraceChildArgs`; the result is printed as one line
 * `BENCH_RESULT <json>` on stdout (forward-child.ts's convention).
 *
 * 1. building the forward graph, then the backward + frozen-forward graphs (compileForward,
 *    compileBackward for every layer, compileFrozenForward; in memory, they hold no weights),
 *    timed separately;
 * 2. `Attributor.create` (forward-session creation), and the two linear
 *    sessions created once on their own (Attributor.create makes them once per model; this is
 *    their share of opening a model, not part of any trace);
 * 3. `warmup` + `repeat` traces (`Attributor.attribute`), each with the engine's own phase
 *    timings and, per backward batch, B, t and feeds / session.run / scatter times
 *    (trace-profile.ts's probe);
 * 4. the last trace's targets (token ids, logit ids, the feature batches in the order they
 *    ran, the active-feature column space) to `outDir/targets.json` and its rows to
 *    `outDir/engine-rows.f32` (float32, one row of n_columns per target, in batch order),
 *    for native/reference/bench_attribution.py;
 * 5. the same batches run again on that trace's backward session (warm: its arena has grown
 *    to the peak, kernels are initialized): what a second prompt would cost if the session
 *    were kept;
 * 6. optionally an ONNX Runtime profile (`enableProfiling`) of the backward graph: every batch
 *    once as warm-up, then the logit batch and the first `profileBatches` feature batches,
 *    three times (the fastest of the three counts, per node and batch).
 */
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { ModelConfig } from '../electron/engine/arch/config.ts';
import {
  type AttributionPhase,
  type AttributionResult,
  type AttributionSettings,
  Attributor,
} from '../electron/engine/attribution/attribute.ts';
import {
  backwardConstantSpec,
  compileBackward,
  compileFrozenForward,
} from '../electron/engine/attribution/compile.ts';
import { runForwardCache } from '../electron/engine/attribution/forward-cache.ts';
import type { BackwardConstantSpec } from '../electron/engine/attribution/linear-model.ts';
import { LinearModelRunner } from '../electron/engine/attribution/linear-runner.ts';
import type { SourceSpace } from '../electron/engine/attribution/sources.ts';
import { compileForward } from '../electron/engine/model/forward-graph.ts';
import type { ForwardPass } from '../electron/engine/model/forward-pass.ts';
import { openModel } from '../electron/engine/model/open-model.ts';
import { WeightFeeder } from '../electron/engine/model/weight-feeder.ts';
import { createSession, ort } from '../electron/engine/runtime/session.ts';
import { loadTokenizer } from '../electron/engine/tokenizer/index.ts';
import { loadTranscoderSet } from '../electron/engine/transcoders/load.ts';
import type { TranscoderSet } from '../electron/engine/transcoders/types.ts';
import { RESULT_PREFIX } from './forward-child.ts';
import type { BackwardShape } from './trace-flops.ts';
import {
  installRowsProbe,
  type ProfileSummary,
  type RowsCall,
  summarizeOrtProfile,
} from './trace-profile.ts';

export interface TraceChildArgs {
  modelDir: string;
  transcoderDir: string;
  /** An empty folder: the compile is timed cold. */
  cacheRoot: string;
  threads: number;
  /** Either the token ids, or a prompt for the model's tokenizer. */
  tokenIds?: number[];
  prompt?: string;
  settings: AttributionSettings;
  warmup: number;
  repeat: number;
  outDir: string;
  /** Feature batches replayed under ONNX Runtime's profiler (0: no profile). */
  profileBatches: number;
}

export interface TraceRun {
  timingsMs: Record<AttributionPhase, number>;
  /** Every backward batch, in order: the first is the logit batch. */
  calls: RowsCall[];
}

export interface TraceChildResult {
  model: {
    family: string;
    nLayers: number;
    d: number;
    nHeads: number;
    nKvHeads: number;
    headDim: number;
    vocab: number;
  };
  transcoders: {
    kind: string;
    dTranscoder: number;
    readHook: string;
    writeHook: string;
    skip: boolean;
  };
  tokenIds: number[];
  promptTokens: string[] | null;
  openMs: number;
  compileForwardMs: number;
  compileLinearMs: number;
  /** Attributor.create on the compiled cache: forward-session creation. */
  forwardSessionMs: number;
  /** Backward + frozen-forward sessions, created in parallel as Attributor.create does. */
  linearSessionsMs: number;
  /** runForwardCache alone (warm): the model's forward with every hook attribution needs. */
  forwardCacheMs: number;
  nActive: number;
  activePerTokenLayer: { mean: number; min: number; max: number };
  nColumns: number;
  shape: BackwardShape;
  logitTokens: { tokenId: number; prob: number }[];
  nFeatureRows: number;
  warmups: TraceRun[];
  traces: TraceRun[];
  /** The last trace's batches run again on its backward session after the trace (warm arena): per batch the fastest of `repeat` replays. */
  warmReplay: RowsCall[];
  profile: ProfileSummary | null;
  profileError: string | null;
  targetsFile: string;
  rowsFile: string;
  maxRssKb: number;
}

/** What native/reference/bench_attribution.py reads. */
export interface TargetsFile {
  token_ids: number[];
  settings: AttributionSettings;
  columns: { n_active: number; error_offset: number; token_offset: number; n_columns: number };
  active: { layer: number[]; position: number[]; index: number[]; activation: number[] };
  logits: { token_id: number[]; probability: number[] };
  /** In the order they ran: 'logits' (every logit), then feature batches of active indices. */
  batches: ({ kind: 'logits' } | { kind: 'features'; features: number[] })[];
  rows_file: string;
}

async function main(args: TraceChildArgs): Promise<TraceChildResult> {
  let t0 = performance.now();
  const model = openModel(args.modelDir);
  const set = loadTranscoderSet(args.transcoderDir);
  const openMs = performance.now() - t0;
  const probe = installRowsProbe();
  try {
    let tokenIds = args.tokenIds;
    let promptTokens: string[] | null = null;
    if (args.prompt !== undefined) {
      const tokenizer = await loadTokenizer(model.dir);
      tokenIds = tokenizer.encodePrompt(args.prompt);
      promptTokens = tokenizer.idsToTokens(tokenIds);
    }
    if (!tokenIds || tokenIds.length < 2) throw new Error('need at least 2 tokens (BOS + one)');

    t0 = performance.now();
    const feeder = new WeightFeeder();
    compileForward(model, feeder, { transcoders: set });
    const compileForwardMs = performance.now() - t0;
    t0 = performance.now();
    const linear = {
      backward: compileBackward(model, set, feeder),
      frozenForward: compileFrozenForward(model, set, feeder),
    };
    for (let top = 0; top < model.config.nLayers; top++) compileBackward(model, set, feeder, top);
    const compileLinearMs = performance.now() - t0;

    t0 = performance.now();
    const attributor = await Attributor.create(model, set, {
      provider: 'cpu',
      cacheRoot: args.cacheRoot,
      threads: args.threads,
    });
    const forwardSessionMs = performance.now() - t0;
    try {
      const sessionOpts = { provider: 'cpu' as const, threads: args.threads };
      t0 = performance.now();
      const sessions = await Promise.all([
        createSession(linear.backward, sessionOpts),
        createSession(linear.frozenForward, sessionOpts),
      ]);
      const linearSessionsMs = performance.now() - t0;
      for (const s of sessions) await s.session.release();

      const ids = tokenIds;
      const trace = async (): Promise<{ run: TraceRun; result: AttributionResult }> => {
        probe.take();
        const result = await attributor.attribute(ids, args.settings);
        return { run: { timingsMs: result.timingsMs, calls: probe.take() }, result };
      };
      const warmups: TraceRun[] = [];
      for (let i = 0; i < args.warmup; i++) {
        const { run, result } = await trace();
        await result.prepared.runner.release();
        warmups.push(run);
      }
      const traces: TraceRun[] = [];
      let last: AttributionResult | null = null;
      for (let i = 0; i < args.repeat; i++) {
        if (last) await last.prepared.runner.release();
        const { run, result } = await trace();
        traces.push(run);
        last = result;
      }
      if (!last) throw new Error('--repeat must be at least 1');
      try {
        t0 = performance.now();
        await runForwardCache(attributor.forward, set, ids);
        const forwardCacheMs = performance.now() - t0;

        const calls = traces[traces.length - 1].calls;
        const exported = exportTargets(last, calls, ids, args);
        // The same batches again on the last trace's (now warm) backward session, `repeat`
        // times; per batch the fastest (robust against a loaded machine).
        probe.take();
        let warmReplay: RowsCall[] = [];
        for (let r = 0; r < args.repeat; r++) {
          await runBatches(last.prepared.runner, last, exported.batches);
          const got = probe.take();
          warmReplay = r === 0 ? got : warmReplay.map((w, i) => (got[i].totalMs < w.totalMs ? got[i] : w));
        }
        let profile: ProfileSummary | null = null;
        let profileError: string | null = null;
        if (args.profileBatches > 0) {
          probe.uninstall();
          try {
            profile = await profileBackward(
              model.config,
              (inputs) => backwardConstantSpec(model, set, inputs),
              linear.backward,
              last,
              exported.batches,
              args,
              attributor.forward,
            );
          } catch (e) {
            profileError = (e as Error).message;
          }
        }

        const { space, cache } = last.prepared;
        const c = model.config;
        const { activePerTokenLayer, shape } = activeFeatureStats(c, set, space, cache.T);
        return {
          model: { family: c.family, ...modelShape(c) },
          transcoders: { ...transcoderShape(set), skip: shape.skip.some(Boolean) },
          tokenIds: ids,
          promptTokens,
          openMs,
          compileForwardMs,
          compileLinearMs,
          forwardSessionMs,
          linearSessionsMs,
          forwardCacheMs,
          nActive: space.nActive,
          activePerTokenLayer,
          nColumns: space.nColumns,
          shape,
          logitTokens: last.logitTokens,
          nFeatureRows: last.featureRows.size,
          warmups,
          warmReplay,
          traces,
          profile,
          profileError,
          targetsFile: exported.targetsFile,
          rowsFile: exported.rowsFile,
          maxRssKb: process.resourceUsage().maxRSS,
        };
      } finally {
        await last.prepared.runner.release();
      }
    } finally {
      await attributor.close();
    }
  } finally {
    probe.uninstall();
    set.close();
    model.close();
  }
}

/** The model's sizes as the children report them. */
export function modelShape(c: ModelConfig) {
  return {
    nLayers: c.nLayers,
    d: c.hiddenSize,
    nHeads: c.nHeads,
    nKvHeads: c.nKvHeads,
    headDim: c.headDim,
    vocab: c.vocabSize,
  };
}

/** The transcoder set's kind, width and hooks as the children report them. */
export function transcoderShape(set: TranscoderSet) {
  return { kind: set.kind, dTranscoder: set.dTranscoder, readHook: set.readHook, writeHook: set.writeHook };
}

/** What a trace's active features come to: counts per (layer, position ≥ 1), and the backward's shape. */
export interface ActiveFeatureStats {
  /** [layer × (T − 1)]: active features at each layer and position ≥ 1. */
  perTokenLayer: number[];
  activePerTokenLayer: { mean: number; min: number; max: number };
  /** The backward's shape for trace-flops.ts. */
  shape: BackwardShape;
}

export function activeFeatureStats(
  c: ModelConfig,
  set: TranscoderSet,
  space: SourceSpace,
  T: number,
): ActiveFeatureStats {
  const perTokenLayer = new Array<number>(c.nLayers * (T - 1)).fill(0); // positions ≥ 1
  for (let i = 0; i < space.nActive; i++) {
    const p = space.featurePosition[i];
    if (p >= 1) perTokenLayer[space.featureLayer[i] * (T - 1) + p - 1]++;
  }
  return {
    perTokenLayer,
    activePerTokenLayer: {
      mean: space.nActive / perTokenLayer.length,
      min: Math.min(...perTokenLayer),
      max: Math.max(...perTokenLayer),
    },
    shape: {
      nLayers: c.nLayers,
      d: c.hiddenSize,
      nHeads: c.nHeads,
      nKvHeads: c.nKvHeads,
      headDim: c.headDim,
      blockWidth: space.blocks.map((b) => b.n),
      skip: Array.from(
        { length: c.nLayers },
        (_, l) => set.kind === 'plt' && set.layerTensors(l).W_skip !== undefined,
      ),
    },
  };
}

/** The trace's targets in the order its batches ran, and its rows in that order (for bench_attribution.py). */
export function exportTargets(
  result: AttributionResult,
  calls: RowsCall[],
  tokenIds: number[],
  args: Pick<TraceChildArgs, 'settings' | 'outDir'>,
) {
  const { space } = result.prepared;
  const order = [...result.featureRows.keys()]; // insertion order = batch order
  const batches: TargetsFile['batches'] = [{ kind: 'logits' }];
  let at = 0;
  for (const call of calls.slice(1)) {
    batches.push({ kind: 'features', features: order.slice(at, at + call.B) });
    at += call.B;
  }
  if (calls[0]?.B !== result.logitRows.length || at !== order.length) {
    throw new Error(
      `the probed batches (${calls.map((c) => c.B).join(',')}) do not match the trace's rows (${result.logitRows.length} logits, ${order.length} features)`,
    );
  }
  const rowsFile = path.join(args.outDir, 'engine-rows.f32');
  const fd = fs.openSync(rowsFile, 'w');
  try {
    const write = (row: Float32Array) =>
      fs.writeSync(fd, new Uint8Array(row.buffer, row.byteOffset, row.byteLength));
    for (const row of result.logitRows) write(row);
    for (const i of order) write(result.featureRows.get(i)!);
  } finally {
    fs.closeSync(fd);
  }
  const targets: TargetsFile = {
    token_ids: tokenIds,
    settings: args.settings,
    columns: {
      n_active: space.nActive,
      error_offset: space.errorOffset,
      token_offset: space.tokenOffset,
      n_columns: space.nColumns,
    },
    active: {
      layer: Array.from(space.featureLayer),
      position: Array.from(space.featurePosition),
      index: Array.from(space.featureIndex),
      activation: Array.from(space.featureActivation),
    },
    logits: {
      token_id: result.logitTokens.map((t) => t.tokenId),
      probability: result.logitTokens.map((t) => t.prob),
    },
    batches,
    rows_file: path.basename(rowsFile),
  };
  const targetsFile = path.join(args.outDir, 'targets.json');
  fs.writeFileSync(targetsFile, JSON.stringify(targets));
  return { targetsFile, rowsFile, batches };
}

const PROFILE_REPEATS = 3;

/** Runs the trace's batches (logits, then the feature batches) in order on `runner`. */
async function runBatches(
  runner: LinearModelRunner,
  result: AttributionResult,
  batches: TargetsFile['batches'],
): Promise<void> {
  const { prepared, logitTokens } = result;
  for (const b of batches) {
    if (b.kind === 'logits')
      await runner.rows(logitTokens.map((t) => prepared.targets.logitTarget(t.tokenId)));
    else await runner.rows(b.features.map((i) => prepared.featureTarget(i)));
  }
}

/**
 * On a backward session created with ONNX Runtime's profiler on: every batch of the trace
 * once (warm-up: the arena grows to its peak; not counted), then the logit batch and the
 * first `profileBatches` feature batches, PROFILE_REPEATS times (per node and batch, the
 * fastest run counts).
 */
async function profileBackward(
  config: ModelConfig,
  constantSpec: (backwardInputs: readonly string[]) => BackwardConstantSpec,
  backwardGraph: Uint8Array,
  result: AttributionResult,
  batches: TargetsFile['batches'],
  args: TraceChildArgs,
  forward: ForwardPass,
): Promise<ProfileSummary> {
  const dir = path.join(args.outDir, 'ort-profile');
  fs.mkdirSync(dir, { recursive: true });
  const session = await ort.InferenceSession.create(backwardGraph, {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    intraOpNumThreads: args.threads,
    logSeverityLevel: 3,
    enableProfiling: true,
    profileFilePrefix: path.join(dir, 'backward'),
  });
  try {
    const { prepared } = result;
    // Only rows() runs here, which uses the backward session and never the decoder biases.
    const runner = new LinearModelRunner(
      config,
      prepared.cache,
      prepared.space,
      async () => session, // the full graph serves every batch
      session,
      [],
      forward.feeder,
      forward.head,
      forward.device,
      forward.deviceMemory,
      async () => constantSpec(session.inputNames),
    );
    await runBatches(runner, result, batches);
    const profiled = batches.slice(0, 1 + args.profileBatches);
    for (let r = 0; r < PROFILE_REPEATS; r++) await runBatches(runner, result, profiled);
    session.endProfiling();
  } finally {
    await session.release();
  }
  const files = fs.readdirSync(dir).filter((f) => f.startsWith('backward') && f.endsWith('.json'));
  if (!files.length) throw new Error(`no profile file in ${dir}`);
  return summarizeOrtProfile(
    path.join(dir, files.sort().pop()!),
    batches.length,
    Math.min(batches.length, 1 + args.profileBatches),
  );
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main(JSON.parse(process.argv[2] ?? '{}') as TraceChildArgs).then(
    (r) => process.stdout.write(`${RESULT_PREFIX}${JSON.stringify(r)}\n`),
    (e: unknown) => {
      process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exit(1);
    },
  );
}
