/**
 * `circuit trace`: the attribution graph of a prompt, pruned and written as graph JSON
 * (circuit-tracer / Neuronpedia format), optionally with the unpruned adjacency (--raw).
 */

import path from 'node:path';
import { slugify } from '../../api/graph-json-io.ts';
import { saveTracedGraph } from '../../api/save-trace.ts';
import type { BackwardSummary } from '../../engine/attribution/attribute.ts';
import {
  DEFAULT_MAX_FEATURE_NODES,
  DEFAULT_TRACE_SETTINGS,
  type TraceSettings,
} from '../../engine/attribution/defaults.ts';
import { nodeLayout } from '../../engine/attribution/graph-types.ts';
import { readTargetsFile, targetSpecsToJson } from '../../engine/attribution/target-json.ts';
import { Tracer } from '../../engine/attribution/tracer.ts';
import { EngineError, isEngineError } from '../../engine/errors.ts';
import { outputTarget, writeTraceFiles } from '../../engine/graph-json/output-file.ts';
import { resolveDataDir } from '../../store/data-dir.ts';
import { Store } from '../../store/store.ts';
import { parseFlags, positiveIntFlag, providerFlag, requireFlag } from '../args.ts';
import { formatSeconds, progressPrinter } from '../progress.ts';

const D = DEFAULT_TRACE_SETTINGS;

const HELP = `usage: circuit trace --model DIR --transcoders DIR --prompt TEXT (--out graph.json | --save)
       [--max-n-logits ${D.maxNLogits}] [--desired-logit-prob ${D.desiredLogitProb}] [--max-feature-nodes ${D.maxFeatureNodes}] [--batch-size ${D.batchSize}]
       [--node-threshold ${D.nodeThreshold}] [--edge-threshold ${D.edgeThreshold}] [--provider cpu|webgpu|cuda|auto]
       [--targets targets.json] [--raw raw.safetensors] [--slug NAME] [--json]
       [--save [--data DIR] [--project NAME] [--tag TAG]...]

--max-feature-nodes: feature rows computed, the most influential first (default ${D.maxFeatureNodes}, which
bounds memory; a value above the number of active features means all of them). A trace that
would not fit in memory is refused before the backward pass (exit 2), naming what it needs.

--targets FILE: attribute to these targets instead of the top logits (--max-n-logits and
--desired-logit-prob are then unused). FILE is a JSON list of
  {"token": " Austin"}                                    a token's demeaned logit (or {"token": 1234})
  {"label": "Austin vs Dallas", "weights": {" Austin": 1, " Dallas": -1}}   a combination of them
  {"label": "d", "vector": "dir.npy"}                     a direction at the unembedding input
                                                          (.npy or .safetensors with one tensor of
                                                          d_model floats, relative to FILE's folder)
each with an optional "weight" (its influence weight; default: a token's probability, a
combination's summed positive-term probability, 1/n for a vector). A token string that is not
one token, a vector of the wrong size, empty weights… exit 2 naming FILE and the target.

--out / --raw write only a new path or a regular file (replaced atomically). A symlink to a
regular file is written through (the link stays). A directory, FIFO, device, socket or dangling
link is refused before any work (exit 2) and left as it was.

--save stores the trace (graph, pruned view, settings, timings) in the library in --data DIR
(default $CIRCUIT_DATA_DIR, else ~/.local/share/circuit-workbench); see \`circuit library\`.`;

function numberFlag(value: string | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) {
    throw new EngineError('argument', `--${flag} must be a number, got "${value}"`, { field: flag });
  }
  return n;
}

function thresholdFlag(value: string | undefined, flag: string, fallback: number): number {
  const n = numberFlag(value, flag, fallback);
  if (n < 0 || n > 1)
    throw new EngineError('argument', `--${flag} must be in [0, 1], got ${n}`, { field: flag });
  return n;
}

export async function traceCommand(argv: string[]): Promise<number> {
  const flags = parseFlags(argv, {
    model: { type: 'string' },
    transcoders: { type: 'string' },
    prompt: { type: 'string' },
    out: { type: 'string' },
    'max-n-logits': { type: 'string' },
    'desired-logit-prob': { type: 'string' },
    'max-feature-nodes': { type: 'string' },
    'batch-size': { type: 'string' },
    'node-threshold': { type: 'string' },
    'edge-threshold': { type: 'string' },
    provider: { type: 'string' },
    raw: { type: 'string' },
    targets: { type: 'string' },
    slug: { type: 'string' },
    json: { type: 'boolean' },
    save: { type: 'boolean' },
    data: { type: 'string' },
    project: { type: 'string' },
    tag: { type: 'string', multiple: true },
    help: { type: 'boolean', short: 'h' },
  });
  if (flags.help) {
    console.log(HELP);
    return 0;
  }
  // Everything that can be checked without loading weights is checked first.
  const modelDir = requireFlag(flags.model, 'model');
  const transcoderDir = requireFlag(flags.transcoders, 'transcoders');
  const prompt = requireFlag(flags.prompt, 'prompt');
  if (prompt.trim() === '') throw new EngineError('argument', '--prompt is empty', { field: 'prompt' });
  const out = flags.save && flags.out === undefined ? null : requireFlag(flags.out, 'out');
  if (!flags.save && (flags.data || flags.project || flags.tag)) {
    throw new EngineError('argument', '--data, --project and --tag go with --save', { field: 'save' });
  }
  const dataDir = flags.save ? resolveDataDir(flags.data) : null;
  const desired = numberFlag(flags['desired-logit-prob'], 'desired-logit-prob', D.desiredLogitProb);
  if (!(desired > 0 && desired <= 1)) {
    throw new EngineError('argument', `--desired-logit-prob must be in (0, 1], got ${desired}`, {
      field: 'desired-logit-prob',
    });
  }
  const maxNLogits = positiveIntFlag(flags['max-n-logits'], 'max-n-logits', D.maxNLogits);
  const maxFeatureNodes = positiveIntFlag(
    flags['max-feature-nodes'],
    'max-feature-nodes',
    DEFAULT_MAX_FEATURE_NODES,
  );
  const batchSize = positiveIntFlag(flags['batch-size'], 'batch-size', D.batchSize);
  // The file's form and vector files are checked before any weights load; tokens and sizes by the Tracer.
  const targetsFile = flags.targets;
  const targets = targetsFile === undefined ? null : targetSpecsToJson(readTargetsFile(targetsFile));
  const capIsDefault = flags['max-feature-nodes'] === undefined;
  const provider = providerFlag(flags.provider);
  const settings: TraceSettings = {
    maxNLogits,
    desiredLogitProb: desired,
    maxFeatureNodes,
    batchSize,
    targets,
    nodeThreshold: thresholdFlag(flags['node-threshold'], 'node-threshold', D.nodeThreshold),
    edgeThreshold: thresholdFlag(flags['edge-threshold'], 'edge-threshold', D.edgeThreshold),
    provider,
  };
  // Only a new path or a regular file (or a symlink to one, written through) is written.
  if (out !== null) outputTarget(out, 'out');
  const rawTarget = flags.raw ? outputTarget(flags.raw, 'raw') : null;

  // Opened before the trace, so an unusable library fails at once, not after the compute.
  const store = dataDir === null ? null : Store.open(dataDir);
  let tracer: Tracer | undefined;
  try {
    const startedAt = Date.now();
    tracer = await Tracer.open(modelDir, transcoderDir, {
      provider,
      onWarning: (m) => console.error(`warning: ${m}`),
    });
    const progress = progressPrinter();
    const traced = await tracer
      .trace({ prompt }, settings, {
        // The attribution phases, as before; pruning takes milliseconds.
        onProgress: (p) => p.phase !== 'prune' && progress.update(p),
        storesGraph: store !== null,
      })
      .catch((e: unknown) => {
        if (targetsFile !== undefined && isEngineError(e) && e.field?.startsWith('targets'))
          throw new EngineError(e.code, `targets file ${targetsFile}: ${e.message}`);
        throw e;
      });
    progress.done();
    const { raw, pruned, tokenIds } = traced;
    const used = traced.settings; // the cap in force, the provider `auto` chose
    const info = { model: tracer.model.dir, transcoders: tracer.set.dir, prompt, settings: used };
    writeTraceFiles({ out, raw: rawTarget }, raw, pruned, {
      slug: flags.slug ?? slugify(prompt),
      prompt,
      modelId: path.basename(tracer.model.dir),
      transcoderSet: tracer.set,
      info,
    });
    let saved: { trace_id: number; data: string } | null = null;
    if (store !== null) {
      const trace = saveTracedGraph(store, {
        model: tracer.model,
        set: tracer.set,
        prompt,
        tokenIds,
        settings: used,
        raw,
        pruned,
        timingsMs: traced.timingsMs,
        project: flags.project,
        tags: flags.tag,
        startedAt,
      });
      saved = { trace_id: trace.id, data: store.dataDir };
    }

    const lay = nodeLayout(raw.nodes);
    const tokenName = (id: number) => tracer!.tokenToString(id);
    const summary = {
      out: out === null ? null : path.resolve(out),
      library: saved,
      raw: flags.raw ? path.resolve(flags.raw) : null,
      tokens: tokenIds.length,
      active_features: traced.activeFeatures,
      features_with_rows: lay.nFeatures,
      max_feature_nodes: maxFeatureNodes,
      max_feature_nodes_default: capIsDefault,
      // With --targets: each target's label and influence weight (a token's probability).
      logits: traced.logitTokens.map((t) => ({ token: t.label ?? tokenName(t.tokenId), prob: t.prob })),
      unpruned: { nodes: lay.total },
      pruned: { nodes: pruned.keptNodes.length, edges: pruned.edges.weight.length },
      replacement_score: pruned.replacementScore,
      completeness_score: pruned.completenessScore,
      provider: traced.provider,
      timings_ms: traced.timingsMs,
      backward: {
        provider: traced.backward.provider,
        runs: traced.backward.runs,
        max_rows: traced.backward.maxRows,
        max_positions: traced.backward.maxPositions,
        device_weight_bytes: traced.backward.deviceWeightBytes,
        constant_bytes: traced.backward.constantBytes,
        row_limit: traced.backward.rowLimit,
        device_memory: traced.backward.deviceMemory && {
          total_bytes: traced.backward.deviceMemory.totalBytes,
          free_bytes: traced.backward.deviceMemory.freeBytes,
          source: traced.backward.deviceMemory.source,
        },
      },
    };
    if (flags.json) {
      console.log(JSON.stringify(summary));
    } else {
      if (summary.out)
        console.log(`graph        ${summary.out}${summary.raw ? `  (raw: ${summary.raw})` : ''}`);
      if (saved) console.log(`library      trace ${saved.trace_id} in ${saved.data}`);
      console.log(
        `prompt       ${tokenIds.length} tokens: ${tokenIds.map((t) => JSON.stringify(tokenName(t))).join(' ')}`,
      );
      console.log(
        `${targets ? 'targets    ' : 'top logits '}  ${summary.logits.map((l) => `${JSON.stringify(l.token)} ${(l.prob * 100).toFixed(1)}%`).join(', ')}`,
      );
      const cap = `--max-feature-nodes ${summary.max_feature_nodes}${capIsDefault ? ' (the default)' : ''}`;
      console.log(
        `features     ${summary.active_features} active, ${summary.features_with_rows} in the graph (${cap})`,
      );
      console.log(
        `pruned       ${summary.pruned.nodes} nodes, ${summary.pruned.edges} edges (of ${lay.total} nodes)`,
      );
      console.log(
        `scores       replacement ${pruned.replacementScore.toFixed(3)}, completeness ${pruned.completenessScore.toFixed(3)}`,
      );
      console.log(`backward     ${describeBackward(traced.backward)}`);
      const t = summary.timings_ms;
      console.log(
        `time         ${Object.entries(t)
          .map(([k, v]) => `${k} ${formatSeconds(v / 1000)}`)
          .join(', ')}`,
      );
    }
    return 0;
  } finally {
    await tracer?.close();
    store?.close();
  }
}

const sizeText = (bytes: number) =>
  bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(1)} GiB` : `${(bytes / 2 ** 20).toFixed(1)} MiB`;

/** "33 runs on webgpu, ≤ 256 rows × 11 positions each; device: 13.4 GiB weights, 96.0 MiB constants". */
function describeBackward(b: BackwardSummary): string {
  const runs = `${b.runs} run${b.runs === 1 ? '' : 's'} on ${b.provider}, ≤ ${b.maxRows} rows × ${b.maxPositions} positions each`;
  if (b.deviceWeightBytes === 0) return `${runs}; constants ${sizeText(b.constantBytes)}`;
  const memory = b.deviceMemory
    ? `${sizeText(b.deviceMemory.freeBytes)} free at open (${b.deviceMemory.source}), ≤ ${b.rowLimit} rows a run fit`
    : 'free memory unknown (set CIRCUIT_DEVICE_MEMORY_MB to size runs to it)';
  return `${runs}; device memory: ${sizeText(b.deviceWeightBytes)} weights, ${sizeText(b.constantBytes)} constants; ${memory}`;
}
