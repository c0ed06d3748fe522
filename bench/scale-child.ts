/**
 * Child process of bench/scale.ts: one trace of a (big) checkpoint through the engine's
 * public API, measured. `node … bench/scale-child.ts '<json ScaleChildArgs>'`; the result is
 * one `RESULT_PREFIX` + JSON line on stdout, progress on stderr.
 *
 * openModel + loadTranscoderSet, Attributor.create (sessions; CIRCUIT_CACHE_DIR is set by the
 * parent to an empty folder), `repeat` × Attributor.attribute with its phase timings, every
 * backward batch's (B, t, top layer) through the rows probe (trace-profile.ts), then on the
 * last trace: completeness of every row (Σ_s A[t,s] + c_t = the target's pre-activation, with
 * c_t from one frozen forward with every source at zero), node and edge counts unpruned and
 * pruned at the default thresholds, optionally the targets and rows for
 * native/reference/bench_attribution.py, and the peak RSS (VmHWM).
 */
import fs from 'node:fs';
import { pathToFileURL } from 'node:url';
import {
  type AttributionPhase,
  type AttributionProgress,
  type AttributionResult,
  type AttributionSettings,
  Attributor,
} from '../electron/engine/attribution/attribute.ts';
import { frozenTargetValues, type TargetRef } from '../electron/engine/attribution/frozen-targets.ts';
import { nodeLayout } from '../electron/engine/attribution/graph-types.ts';
import { openModel } from '../electron/engine/model/open-model.ts';
import { pruneGraph } from '../electron/engine/pruning/prune.ts';
import type { ProviderChoice } from '../electron/engine/runtime/providers.ts';
import { loadTranscoderSet } from '../electron/engine/transcoders/load.ts';
import { RESULT_PREFIX } from './forward-child.ts';
import { activeFeatureStats, exportTargets, modelShape, transcoderShape } from './trace-child.ts';
import type { BackwardShape } from './trace-flops.ts';
import { installRowsProbe, type RowsCall } from './trace-profile.ts';

export interface ScaleChildArgs {
  modelDir: string;
  transcoderDir: string;
  /** The compile cache folder (also CIRCUIT_CACHE_DIR in the child's environment). */
  cacheRoot: string;
  threads: number;
  provider: ProviderChoice;
  tokenIds: number[];
  settings: AttributionSettings;
  repeat: number;
  /** Write targets.json + engine-rows.f32 here for the PyTorch reference (null: don't). */
  exportDir: string | null;
}

export interface ScaleTrace {
  timingsMs: Record<AttributionPhase, number>;
  /** Attributor.attribute's wall time. */
  wallMs: number;
  calls: RowsCall[];
  /** VmRSS right after this trace. */
  rssAfterKb: number;
}

export interface Completeness {
  rows: number;
  /** max |Σ_s A[t,s] + c_t − value_t| / max(|value_t|, 1e-2) over the rows. */
  maxRel: number;
  worstRow: number;
  /** Rows over 1e-3 relative. */
  over1e3: number;
  logitRows: number;
  /** Where the feature targets' values came from. */
  featureValues: 'pre-activations' | 'activations';
  ms: number;
}

export interface ScaleChildResult {
  model: { nLayers: number; d: number; nHeads: number; nKvHeads: number; headDim: number; vocab: number };
  transcoders: { kind: string; dTranscoder: number; readHook: string; writeHook: string };
  openMs: number;
  createMs: number;
  /** The provider the engine ran on. */
  provider: string;
  traces: ScaleTrace[];
  nActive: number;
  activePerTokenLayer: { mean: number; min: number; max: number };
  /** Per layer: active features per token (positions ≥ 1). */
  activePerLayer: number[];
  nColumns: number;
  shape: BackwardShape;
  logitTokens: { tokenId: number; prob: number }[];
  nFeatureRows: number;
  graph: {
    nodes: number;
    /** Nonzero entries of the unpruned adjacency (null when it is not a dense array). */
    edges: number | null;
    pruned: { nodes: number; edges: number; replacementScore: number; completenessScore: number; ms: number };
  };
  completeness: Completeness | null;
  completenessError: string | null;
  targetsFile: string | null;
  rowsFile: string | null;
  /** Peak RSS (VmHWM of /proc/self/status; resourceUsage().maxRSS where there is no /proc). */
  vmHwmKb: number;
  maxRssKb: number;
  wallMs: number;
}

function procStatusKb(field: string): number | null {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync('/proc/self/status', 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

function progressLogger(): (p: AttributionProgress) => void {
  let phase = '';
  let last = 0;
  const t0 = performance.now();
  return (p) => {
    const now = performance.now();
    if (p.phase === phase && now - last < 5000 && p.done !== p.total) return;
    phase = p.phase;
    last = now;
    const eta = p.etaSeconds !== undefined ? `, ETA ${p.etaSeconds.toFixed(0)} s` : '';
    const rss = procStatusKb('VmRSS');
    process.stderr.write(
      `  [${((now - t0) / 1000).toFixed(1)} s] ${p.phase} ${p.done}/${p.total}${eta}${rss ? `, RSS ${(rss / 1048576).toFixed(2)} GiB` : ''}\n`,
    );
  };
}

/** Σ_s A[t,s] + c_t against each target's value, for every row of the trace. */
async function completeness(result: AttributionResult): Promise<Completeness> {
  const t0 = performance.now();
  const { cache, space } = result.prepared;
  const refs: TargetRef[] = [
    ...result.selected.map((a) => ({ kind: 'feature' as const, active: a })),
    ...result.logitTokens.map((t) => ({ kind: 'logit' as const, tokenId: t.tokenId })),
  ];
  const rows = [...result.selected.map((a) => result.featureRows.get(a)!), ...result.logitRows];
  const constants = await frozenTargetValues(result.prepared, refs, () => 0);
  // Feature targets: the pre-activation; where the cache no longer holds them, the
  // activation (equal to it for an active JumpReLU or ReLU feature).
  const pre = (cache as { preActivations?: (Float32Array | null)[] | null }).preActivations;
  const usePre = Array.isArray(pre) && pre.every((x) => x && x.length > 0);
  const dT = usePre ? pre.map((x) => x!.length / cache.T) : [];
  const values = result.selected.map((a) => {
    const l = space.featureLayer[a];
    return usePre
      ? pre[l]![space.featurePosition[a] * dT[l] + space.featureIndex[a]]
      : space.featureActivation[a];
  });
  const logits = (cache as { logitsPreSoftcap?: Float32Array | null }).logitsPreSoftcap;
  let logitRows = 0;
  if (logits && logits.length === cache.vocab) {
    let mean = 0;
    for (const v of logits) mean += v;
    mean /= logits.length;
    for (const t of result.logitTokens) values.push(logits[t.tokenId] - mean);
    logitRows = result.logitTokens.length;
  }
  let maxRel = 0;
  let worstRow = -1;
  let over1e3 = 0;
  for (let k = 0; k < values.length; k++) {
    let sum = constants[k];
    for (const v of rows[k]) sum += v;
    const rel = Math.abs(sum - values[k]) / Math.max(Math.abs(values[k]), 1e-2);
    if (rel > maxRel || worstRow < 0) {
      maxRel = rel;
      worstRow = k;
    }
    if (rel > 1e-3) over1e3++;
  }
  return {
    rows: values.length,
    maxRel,
    worstRow,
    over1e3,
    logitRows,
    featureValues: usePre ? 'pre-activations' : 'activations',
    ms: performance.now() - t0,
  };
}

async function main(args: ScaleChildArgs): Promise<ScaleChildResult> {
  const tStart = performance.now();
  let t0 = performance.now();
  const model = openModel(args.modelDir);
  const set = loadTranscoderSet(args.transcoderDir);
  const openMs = performance.now() - t0;
  const probe = installRowsProbe();
  try {
    t0 = performance.now();
    const attributor = await Attributor.create(model, set, {
      provider: args.provider,
      cacheRoot: args.cacheRoot,
      threads: args.threads,
      onWarning: (m) => process.stderr.write(`warning: ${m}\n`),
    });
    const createMs = performance.now() - t0;
    try {
      const traces: ScaleTrace[] = [];
      let last: AttributionResult | null = null;
      for (let i = 0; i < args.repeat; i++) {
        if (last) await last.prepared.runner.release();
        last = null;
        process.stderr.write(`  trace ${i + 1}/${args.repeat} ...\n`);
        probe.take();
        t0 = performance.now();
        const result = await attributor.attribute(args.tokenIds, args.settings, {
          onProgress: progressLogger(),
        });
        const wallMs = performance.now() - t0;
        traces.push({
          timingsMs: result.timingsMs,
          wallMs,
          calls: probe.take(),
          rssAfterKb: procStatusKb('VmRSS') ?? 0,
        });
        last = result;
      }
      if (!last) throw new Error('repeat must be at least 1');
      const result = last;
      try {
        const c = model.config;
        const { space, cache } = result.prepared;
        const { perTokenLayer, activePerTokenLayer, shape } = activeFeatureStats(c, set, space, cache.T);

        let comp: Completeness | null = null;
        let completenessError: string | null = null;
        process.stderr.write('  completeness (one frozen forward) ...\n');
        try {
          comp = await completeness(result);
        } catch (e) {
          completenessError = (e as Error).message;
        }

        const lay = nodeLayout(result.graph.nodes);
        const adj = result.graph.adjacency as unknown;
        let edges: number | null = null;
        if (adj instanceof Float32Array) {
          edges = 0;
          for (let i = 0; i < adj.length; i++) if (adj[i] !== 0) edges++;
        }
        t0 = performance.now();
        const pruned = pruneGraph(result.graph);
        const pruneMs = performance.now() - t0;

        let targetsFile: string | null = null;
        let rowsFile: string | null = null;
        if (args.exportDir) {
          const calls = traces[traces.length - 1].calls;
          const ex = exportTargets(result, calls, args.tokenIds, {
            settings: args.settings,
            outDir: args.exportDir,
          });
          targetsFile = ex.targetsFile;
          rowsFile = ex.rowsFile;
        }
        const maxRssKb = process.resourceUsage().maxRSS;
        return {
          model: modelShape(c),
          transcoders: transcoderShape(set),
          openMs,
          createMs,
          provider: attributor.provider,
          traces,
          nActive: space.nActive,
          activePerTokenLayer,
          activePerLayer: Array.from({ length: c.nLayers }, (_, l) => {
            let sum = 0;
            for (let p = 0; p < cache.T - 1; p++) sum += perTokenLayer[l * (cache.T - 1) + p];
            return sum / (cache.T - 1);
          }),
          nColumns: space.nColumns,
          shape,
          logitTokens: result.logitTokens,
          nFeatureRows: result.featureRows.size,
          graph: {
            nodes: lay.total,
            edges,
            pruned: {
              nodes: pruned.keptNodes.length,
              edges: pruned.edges.weight.length,
              replacementScore: pruned.replacementScore,
              completenessScore: pruned.completenessScore,
              ms: pruneMs,
            },
          },
          completeness: comp,
          completenessError,
          targetsFile,
          rowsFile,
          vmHwmKb: procStatusKb('VmHWM') ?? maxRssKb,
          maxRssKb,
          wallMs: performance.now() - tStart,
        };
      } finally {
        await result.prepared.runner.release();
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

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main(JSON.parse(process.argv[2] ?? '{}') as ScaleChildArgs).then(
    (r) => process.stdout.write(`${RESULT_PREFIX}${JSON.stringify(r)}\n`),
    (e: unknown) => {
      process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exit(1);
    },
  );
}
