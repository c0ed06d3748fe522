/**
 * Feature dashboards: run the model with its transcoders over a corpus in context windows and
 * compute, per feature, top activating examples, activation quantiles and histogram,
 * activation frequency and token predictions (see accumulator.ts for the algorithms and their
 * memory bound, logit-lens.ts for the predictions).
 *
 * Windows: each document is tokenized without special tokens and cut into chunks of
 * `window − 1` tokens; each chunk gets BOS prepended (so every window has the attention sink
 * at 0, like the prompts attribution runs on). Windows never span two documents.
 *
 * Resumable: every `checkpointEvery` windows (and when aborted) the accumulator and the corpus
 * position after the last completed window are saved; a later run with the same settings
 * continues from there and produces exactly the result of an uninterrupted run.
 */

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EngineError } from '../errors.ts';
import { ForwardPass } from '../model/forward-pass.ts';
import { type OpenedModel, openModel } from '../model/open-model.ts';
import { transcoderHookNames } from '../model/transcoder-encoder.ts';
import { assertTranscodersFit } from '../model/transcoder-fit.ts';
import type { ProviderChoice } from '../runtime/providers.ts';
import { loadTokenizer, type PromptTokenizer, tokenNamer } from '../tokenizer/index.ts';
import { loadTranscoderSet } from '../transcoders/load.ts';
import type { TranscoderSet } from '../transcoders/types.ts';
import { type AccumulatorConfig, accumulatorBytes, FeatureAccumulator } from './accumulator.ts';
import { type DashboardProgressState, loadCheckpoint, saveCheckpoint } from './checkpoint.ts';
import { type CorpusFormat, type CorpusSplit, detectCorpusFormat, readCorpus } from './corpus.ts';
import { decoderDirections, LogitLens, type LogitLensRows, unembeddingFloat32 } from './logit-lens.ts';
import { buildRecord } from './records.ts';
import { DEFAULT_QUANTILES, type FeatureRecord } from './types.ts';

export interface DashboardOptions {
  model: string;
  transcoders: string;
  corpus: string;
  /** Top activating examples kept per feature (default 20). */
  topK?: number;
  /** Tokens of context on each side of the max token (default 16). */
  context?: number;
  /** Tokens per window, BOS included (default 64). */
  window?: number;
  /** Stop after this many tokens fed to the model (BOS included). */
  maxTokens?: number;
  /** Transcoder layers to cover (default all). */
  layers?: number[];
  /** Positive activations sampled per feature for quantiles and histogram (default 1024). */
  reservoir?: number;
  histogramBins?: number;
  quantiles?: readonly number[];
  /** Top / bottom token predictions per feature (default 10). */
  logitK?: number;
  format?: CorpusFormat;
  split?: CorpusSplit;
  /** Token placed at position 0 (default: the tokenizer's BOS, else config bos_token_id). */
  bosId?: number;
  provider?: ProviderChoice;
  threads?: number;
  cacheRoot?: string;
  /** Checkpoint file; absent: no checkpoints. */
  checkpoint?: string;
  /** Windows between checkpoints (default 500). */
  checkpointEvery?: number;
  /** Continue from `checkpoint` when it exists (default true); false deletes it first. */
  resume?: boolean;
  /** Seed of the reservoir sampler. */
  seed?: number;
  /** Refuse to start when the accumulator would need more (default: half the machine's memory). */
  maxAccumulatorBytes?: number;
}

export type DashboardPhase = 'load' | 'activations' | 'records';

export interface DashboardProgress {
  phase: DashboardPhase;
  done: number;
  total: number;
  /** What done/total count: tokens (activations; total estimated from bytes when no --max-tokens), features. */
  unit: 'tokens' | 'features' | 'steps';
  etaSeconds?: number;
  windows?: number;
  tokensPerSecond?: number;
  /** total is an estimate (from the share of the corpus read so far). */
  estimated?: boolean;
}

export interface DashboardRunOptions {
  onProgress?: (p: DashboardProgress) => void;
  signal?: AbortSignal;
  /** Receives every feature record, in (layer, index) order. */
  onRecord: (r: FeatureRecord) => void | Promise<void>;
  onWarning?: (message: string) => void;
  /** Called after each completed window with the number of windows done (tests, fine-grained UIs). */
  onWindow?: (windowsDone: number) => void;
}

export interface DashboardSummary {
  features: number;
  layers: number[];
  windows: number;
  tokens: number;
  /** Non-BOS tokens, the frequency denominator. */
  tokensSeen: number;
  activationSeconds: number;
  tokensPerSecond: number;
  resumedFromWindow: number | null;
  accumulatorBytes: number;
  provider: string | null;
}

export const DASHBOARD_DEFAULTS = {
  topK: 20,
  context: 16,
  window: 64,
  reservoir: 1024,
  histogramBins: 32,
  logitK: 10,
  checkpointEvery: 500,
  seed: 0x2545f491,
} as const;

interface Window {
  index: number;
  tokens: number[];
  /** Corpus position after this window. */
  after: { docOffset: number; chunk: number };
  /** Bytes of the corpus behind this window (for the progress estimate). */
  bytes: number;
}

function positiveInt(v: number | undefined, field: string, fallback: number): number {
  if (v === undefined) return fallback;
  if (!Number.isInteger(v) || v <= 0)
    throw new EngineError('argument', `${field} must be a positive integer`, { field });
  return v;
}

function modelKey(model: OpenedModel): string {
  const files = new Set<string>([model.configFile]);
  for (const name of model.expectedShapes.keys()) files.add(model.tensors.info(name).sourceFile);
  return [...files]
    .sort()
    .map((f) => {
      const st = fs.statSync(f);
      return `${f}:${st.size}:${st.mtimeMs}`;
    })
    .join('|');
}

export async function runDashboards(
  opts: DashboardOptions,
  run: DashboardRunOptions,
): Promise<DashboardSummary> {
  const topK = positiveInt(opts.topK, 'top_k', DASHBOARD_DEFAULTS.topK);
  const context = opts.context ?? DASHBOARD_DEFAULTS.context;
  if (!Number.isInteger(context) || context < 0) {
    throw new EngineError('argument', 'context must be a non-negative integer', { field: 'context' });
  }
  const W = positiveInt(opts.window, 'window', DASHBOARD_DEFAULTS.window);
  if (W < 2)
    throw new EngineError('argument', 'window must hold BOS and at least one token', { field: 'window' });
  const reservoir = positiveInt(opts.reservoir, 'reservoir', DASHBOARD_DEFAULTS.reservoir);
  const bins = positiveInt(opts.histogramBins, 'histogram_bins', DASHBOARD_DEFAULTS.histogramBins);
  const logitK = positiveInt(opts.logitK, 'logit_k', DASHBOARD_DEFAULTS.logitK);
  const every = positiveInt(opts.checkpointEvery, 'checkpoint_every', DASHBOARD_DEFAULTS.checkpointEvery);
  const maxTokens =
    opts.maxTokens === undefined ? Number.POSITIVE_INFINITY : positiveInt(opts.maxTokens, 'max_tokens', 1);
  const quantiles = opts.quantiles ?? DEFAULT_QUANTILES;
  if (quantiles.some((q) => !(q >= 0 && q <= 1))) {
    throw new EngineError('argument', 'quantiles must lie in [0, 1]', { field: 'quantiles' });
  }
  const corpusFile = path.resolve(opts.corpus);
  let corpusStat: fs.Stats;
  try {
    corpusStat = fs.statSync(corpusFile);
  } catch {
    throw new EngineError('missing', 'corpus file not found', { file: corpusFile });
  }
  if (!corpusStat.isFile())
    throw new EngineError('argument', 'the corpus must be a file', { file: corpusFile });
  const format = opts.format ?? detectCorpusFormat(corpusFile);
  const split = opts.split ?? 'line';
  const signal = run.signal;
  const checkAbort = () => {
    if (signal?.aborted) throw new EngineError('cancelled', 'the dashboards run was cancelled');
  };

  run.onProgress?.({ phase: 'load', done: 0, total: 1, unit: 'steps' });
  let model: OpenedModel | undefined;
  let set: TranscoderSet | undefined;
  let forward: ForwardPass | undefined;
  let lens: LogitLens | undefined;
  try {
    model = openModel(opts.model);
    set = loadTranscoderSet(opts.transcoders);
    assertTranscodersFit(model, set);
    const c = model.config;
    const layers = opts.layers ?? Array.from({ length: set.nLayers }, (_, l) => l);
    for (const l of layers) {
      if (!Number.isInteger(l) || l < 0 || l >= set.nLayers) {
        throw new EngineError('argument', `layer ${l} is outside [0, ${set.nLayers})`, { field: 'layers' });
      }
    }
    if (new Set(layers).size !== layers.length)
      throw new EngineError('argument', 'layers repeat', { field: 'layers' });

    let tokenizer: PromptTokenizer | null = null;
    try {
      tokenizer = await loadTokenizer(model.dir);
    } catch (e) {
      if (format === 'text') throw e;
    }
    const bosId = opts.bosId ?? tokenizer?.bosId ?? c.bosTokenId;
    if (bosId === undefined || bosId === null) {
      throw new EngineError(
        'argument',
        'no BOS token: the tokenizer has none and config.json no bos_token_id',
        {
          field: 'bos_id',
        },
      );
    }
    const tokenToString = tokenNamer(tokenizer);

    const accCfg: AccumulatorConfig = {
      layers,
      dTranscoder: layers.map((l) => set!.dTranscoderPerLayer[l]),
      topK,
      context,
      reservoir,
      windowSize: W,
      seed: opts.seed ?? DASHBOARD_DEFAULTS.seed,
    };
    const needBytes = accumulatorBytes(accCfg);
    const limit = opts.maxAccumulatorBytes ?? Math.floor(os.totalmem() / 2);
    if (needBytes > limit) {
      throw new EngineError(
        'resources',
        `the accumulator would need ${(needBytes / 2 ** 30).toFixed(2)} GiB (limit ${(limit / 2 ** 30).toFixed(2)} GiB): cover fewer layers, or lower top-k, context or reservoir`,
      );
    }
    const acc = new FeatureAccumulator(accCfg);
    const fingerprint = JSON.stringify({
      v: 1,
      model: modelKey(model),
      transcoders: set.contentKey(),
      corpus: [corpusFile, corpusStat.size, corpusStat.mtimeMs],
      settings: { topK, context, W, reservoir, layers, seed: accCfg.seed, format, split, bosId, maxTokens },
    });

    let state: DashboardProgressState = {
      fingerprint,
      windowsDone: 0,
      tokensDone: 0,
      position: { docOffset: 0, chunk: 0 },
      corpusDone: false,
      activationSeconds: 0,
    };
    let resumedFrom: number | null = null;
    const ckpt = opts.checkpoint ? path.resolve(opts.checkpoint) : undefined;
    if (ckpt && fs.existsSync(ckpt)) {
      if (opts.resume === false) {
        fs.rmSync(ckpt, { force: true });
      } else {
        state = loadCheckpoint(ckpt, acc, fingerprint);
        resumedFrom = state.windowsDone;
      }
    }
    const save = () => {
      if (ckpt) saveCheckpoint(ckpt, acc, state);
    };
    run.onProgress?.({ phase: 'load', done: 1, total: 1, unit: 'steps' });
    checkAbort();

    // ---- activations ----------------------------------------------------------------------
    if (!state.corpusDone) {
      forward = await ForwardPass.create(model, {
        transcoders: set,
        provider: opts.provider ?? 'cpu',
        threads: opts.threads,
        onWarning: run.onWarning,
      });
      const hooks = layers.map((l) => transcoderHookNames(l).acts);
      const fp = forward;
      const started = performance.now();
      const baseSeconds = state.activationSeconds;
      const clock = () => baseSeconds + (performance.now() - started) / 1000;
      const startTokens = state.tokensDone;
      const startBytes = state.position.docOffset;
      let lastReport = 0;

      const windows = async function* (): AsyncGenerator<Window> {
        let index = state.windowsDone;
        let tokens = state.tokensDone;
        const first = state.position;
        for await (const doc of readCorpus(corpusFile, { format, split, startOffset: first.docOffset })) {
          const ids = doc.tokenIds ?? tokenizer!.encode(doc.text!, { addSpecialTokens: false });
          const per = W - 1;
          const nChunks = Math.ceil(ids.length / per);
          const from = doc.offset === first.docOffset ? first.chunk : 0;
          for (let k = from; k < nChunks; k++) {
            if (tokens >= maxTokens) return;
            let win = [bosId, ...ids.slice(k * per, (k + 1) * per)];
            if (tokens + win.length > maxTokens) win = win.slice(0, maxTokens - tokens);
            if (win.length < 2) return;
            tokens += win.length;
            const last = k + 1 === nChunks;
            yield {
              index: index++,
              tokens: win,
              after: last ? { docOffset: doc.end, chunk: 0 } : { docOffset: doc.offset, chunk: k + 1 },
              bytes: doc.offset + ((doc.end - doc.offset) * (k + 1)) / nChunks,
            };
          }
        }
      };

      const runWindow = async (w: Window) => ({ w, out: await fp.run(w.tokens, hooks) });
      const it = windows();
      let next = await it.next();
      let pending = next.done ? null : runWindow(next.value);
      let sinceCheckpoint = 0;
      try {
        while (pending) {
          const { w, out } = await pending;
          if (signal?.aborted) break;
          next = await it.next();
          // the next window runs on ONNX Runtime's threads while this one is accumulated
          pending = next.done ? null : runWindow(next.value);
          acc.observeWindow(
            w.index,
            w.tokens,
            hooks.map((h) => out.get(h)!.data),
          );
          state.windowsDone = w.index + 1;
          state.tokensDone += w.tokens.length;
          state.position = w.after;
          run.onWindow?.(state.windowsDone);
          const now = performance.now();
          const seconds = (now - started) / 1000;
          if (++sinceCheckpoint >= every) {
            state.activationSeconds = clock();
            save();
            sinceCheckpoint = 0;
          }
          if (run.onProgress && (now - lastReport > 200 || !pending)) {
            lastReport = now;
            const doneTokens = state.tokensDone - startTokens;
            const rate = seconds > 0 ? doneTokens / seconds : 0;
            let total: number;
            let eta: number | undefined;
            let estimated = false;
            if (Number.isFinite(maxTokens)) {
              total = maxTokens;
              eta = rate > 0 ? (maxTokens - state.tokensDone) / rate : undefined;
            } else {
              const frac = w.bytes / corpusStat.size;
              const fracRun = (w.bytes - startBytes) / corpusStat.size;
              total =
                frac > 0 ? Math.max(state.tokensDone, Math.round(state.tokensDone / frac)) : state.tokensDone;
              eta = fracRun > 0 ? (seconds * (1 - frac)) / fracRun : undefined;
              estimated = true;
            }
            run.onProgress({
              phase: 'activations',
              done: state.tokensDone,
              total,
              unit: 'tokens',
              etaSeconds: eta,
              windows: state.windowsDone,
              tokensPerSecond: rate,
              estimated,
            });
          }
        }
      } finally {
        // never leave a run in flight on a session that is about to close
        if (pending) await pending.catch(() => undefined);
        await it.return(undefined);
      }
      state.activationSeconds = clock();
      if (signal?.aborted) {
        save();
        checkAbort();
      }
      state.corpusDone = true;
      save();
      await forward.close();
      forward = undefined;
    }

    // ---- token predictions ---------------------------------------------------------------------
    checkAbort();
    const V = c.vocabSize;
    const total = acc.nFeatures;
    lens = await LogitLens.create(unembeddingFloat32(model), V, set.dModel, logitK, {
      provider: 'cpu',
      threads: opts.threads,
      cacheRoot: opts.cacheRoot,
    });
    const batch = Math.max(1, Math.min(1024, Math.floor(2 ** 26 / V)));
    let done = 0;
    const phaseStart = performance.now();
    for (let li = 0; li < layers.length; li++) {
      const l = layers[li];
      const dT = set.dTranscoderPerLayer[l];
      for (let f0 = 0; f0 < dT; f0 += batch) {
        checkAbort();
        const feats = Array.from({ length: Math.min(batch, dT - f0) }, (_, i) => f0 + i);
        const rows: LogitLensRows = await lens.run(decoderDirections(set, l, feats));
        for (let i = 0; i < feats.length; i++) {
          await run.onRecord(buildRecord(acc, li, feats[i], { rows, i }, { quantiles, bins, tokenToString }));
        }
        done += feats.length;
        const el = (performance.now() - phaseStart) / 1000;
        run.onProgress?.({
          phase: 'records',
          done,
          total,
          unit: 'features',
          etaSeconds: (el / done) * (total - done),
        });
      }
    }
    if (ckpt) fs.rmSync(ckpt, { force: true });
    return {
      features: total,
      layers,
      windows: state.windowsDone,
      tokens: state.tokensDone,
      tokensSeen: acc.tokensSeen,
      activationSeconds: state.activationSeconds,
      tokensPerSecond: state.activationSeconds > 0 ? state.tokensDone / state.activationSeconds : 0,
      resumedFromWindow: resumedFrom,
      accumulatorBytes: acc.byteSize,
      provider: opts.provider ?? 'cpu',
    };
  } finally {
    await forward?.close().catch(() => undefined);
    await lens?.close().catch(() => undefined);
    set?.close();
    model?.close();
  }
}
