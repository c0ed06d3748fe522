/**
 * `circuit trace`: the attribution graph of a prompt, pruned and written as graph JSON
 * (circuit-tracer / Neuronpedia format), optionally with the unpruned adjacency (--raw).
 */

import path from 'node:path';
import { saveTracedGraph } from '../../api/save-trace.ts';
import {
  type AttributionSettings,
  Attributor,
  DEFAULT_ATTRIBUTION_SETTINGS,
  validateAttributionSettings,
} from '../../engine/attribution/attribute.ts';
import { DEFAULT_MAX_FEATURE_NODES } from '../../engine/attribution/defaults.ts';
import { nodeLayout } from '../../engine/attribution/graph-types.ts';
import { writeRawGraph } from '../../engine/attribution/raw-file.ts';
import { readTargetsFile, targetSpecsToJson } from '../../engine/attribution/target-json.ts';
import { resolveTargetSpecs, targetVocabulary } from '../../engine/attribution/target-spec.ts';
import { EngineError, isEngineError } from '../../engine/errors.ts';
import { outputTarget, writeTraceGraphJson } from '../../engine/graph-json/output-file.ts';
import { type OpenedModel, openModel } from '../../engine/model/open-model.ts';
import { assertTranscodersFit } from '../../engine/model/transcoder-fit.ts';
import { pruneGraph } from '../../engine/pruning/index.ts';
import { loadTokenizer } from '../../engine/tokenizer/index.ts';
import { loadTranscoderSet } from '../../engine/transcoders/load.ts';
import type { TranscoderSet } from '../../engine/transcoders/types.ts';
import { resolveDataDir } from '../../store/data-dir.ts';
import { Store } from '../../store/store.ts';
import { parseFlags, positiveIntFlag, providerFlag, requireFlag } from '../args.ts';
import { formatSeconds, progressPrinter } from '../progress.ts';

const HELP = `usage: circuit trace --model DIR --transcoders DIR --prompt TEXT (--out graph.json | --save)
       [--max-n-logits 10] [--desired-logit-prob 0.95] [--max-feature-nodes 7500] [--batch-size 256]
       [--node-threshold 0.8] [--edge-threshold 0.98] [--provider cpu|webgpu|cuda|auto]
       [--targets targets.json] [--raw raw.safetensors] [--slug NAME] [--json]
       [--save [--data DIR] [--project NAME] [--tag TAG]...]

--max-feature-nodes: feature rows computed, the most influential first (default 7500, which
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
  const desired = numberFlag(
    flags['desired-logit-prob'],
    'desired-logit-prob',
    DEFAULT_ATTRIBUTION_SETTINGS.desiredLogitProb,
  );
  if (!(desired > 0 && desired <= 1)) {
    throw new EngineError('argument', `--desired-logit-prob must be in (0, 1], got ${desired}`, {
      field: 'desired-logit-prob',
    });
  }
  const settings: AttributionSettings = {
    maxNLogits: positiveIntFlag(
      flags['max-n-logits'],
      'max-n-logits',
      DEFAULT_ATTRIBUTION_SETTINGS.maxNLogits,
    ),
    desiredLogitProb: desired,
    maxFeatureNodes: positiveIntFlag(
      flags['max-feature-nodes'],
      'max-feature-nodes',
      DEFAULT_MAX_FEATURE_NODES,
    ),
    batchSize: positiveIntFlag(flags['batch-size'], 'batch-size', DEFAULT_ATTRIBUTION_SETTINGS.batchSize),
  };
  validateAttributionSettings(settings);
  // The file's form and vector files are checked before any weights load; tokens and sizes below.
  const targetsFile = flags.targets;
  const targets = targetsFile === undefined ? null : readTargetsFile(targetsFile);
  if (targets) settings.targets = targets;
  const capIsDefault = flags['max-feature-nodes'] === undefined;
  const nodeThreshold = thresholdFlag(flags['node-threshold'], 'node-threshold', 0.8);
  const edgeThreshold = thresholdFlag(flags['edge-threshold'], 'edge-threshold', 0.98);
  const provider = providerFlag(flags.provider);
  // Only a new path or a regular file (or a symlink to one, written through) is written.
  if (out !== null) outputTarget(out, 'out');
  const rawTarget = flags.raw ? outputTarget(flags.raw, 'raw') : null;

  // Opened before the trace, so an unusable library fails at once, not after the compute.
  const store = dataDir === null ? null : Store.open(dataDir);
  let model: OpenedModel | undefined;
  let set: TranscoderSet | undefined;
  let attributor: Attributor | undefined;
  try {
    model = openModel(modelDir);
    set = loadTranscoderSet(transcoderDir);
    assertTranscodersFit(model, set);
    const c = model.config;
    const tokenizer = await loadTokenizer(model.dir);
    const tokenIds = tokenizer.encodePrompt(prompt);
    if (tokenIds.length > c.maxPositions) {
      throw new EngineError(
        'argument',
        `the prompt is ${tokenIds.length} tokens, beyond the model's context of ${c.maxPositions}`,
        {
          field: 'prompt',
        },
      );
    }
    if (tokenIds.length < 2)
      throw new EngineError('argument', 'the prompt has no tokens after BOS', { field: 'prompt' });
    const vocab = targetVocabulary(c.vocabSize, tokenizer);
    if (targets) {
      try {
        resolveTargetSpecs(targets, vocab, c.hiddenSize);
      } catch (e) {
        if (isEngineError(e)) throw new EngineError(e.code, `targets file ${targetsFile}: ${e.message}`);
        throw e;
      }
    }

    const progress = progressPrinter();
    const startedAt = Date.now();
    const started = performance.now();
    attributor = await Attributor.create(model, set, {
      provider,
      onWarning: (m) => console.error(`warning: ${m}`),
    });
    const compileMs = performance.now() - started;
    const result = await attributor.attribute(tokenIds, settings, {
      onProgress: (p) => progress.update(p),
      tokenToString: (id) => tokenizer.tokenToString(id),
      targetVocabulary: vocab,
      storesGraph: store !== null,
    });
    const pruneStart = performance.now();
    const pruned = pruneGraph(result.graph, { nodeThreshold, edgeThreshold });
    const pruneMs = performance.now() - pruneStart;
    progress.done();
    await result.prepared.runner.release();

    const targetsJson = targets ? targetSpecsToJson(targets) : null;
    const info = {
      model: model.dir,
      transcoders: set.dir,
      prompt,
      settings: {
        ...settings,
        targets: targetsJson,
        nodeThreshold,
        edgeThreshold,
        provider: attributor.provider,
      },
    };
    if (out !== null) {
      writeTraceGraphJson(out, result.graph, pruned, {
        slug: flags.slug ?? slugify(prompt),
        prompt,
        modelId: path.basename(model.dir),
        transcoderSet: set,
        info,
      });
    }
    if (rawTarget !== null) writeRawGraph(outputTarget(rawTarget, 'raw'), result.graph, info);
    let saved: { trace_id: number; data: string } | null = null;
    if (store !== null) {
      const trace = saveTracedGraph(store, {
        model,
        set,
        prompt,
        tokenIds,
        settings: {
          ...settings,
          targets: targetsJson,
          maxFeatureNodes: settings.maxFeatureNodes ?? null, // the cap in force (default included)
          nodeThreshold,
          edgeThreshold,
          provider: attributor.provider,
        },
        raw: result.graph,
        pruned,
        timingsMs: { compile_and_load: compileMs, ...result.timingsMs, prune: pruneMs },
        project: flags.project,
        tags: flags.tag,
        startedAt,
      });
      saved = { trace_id: trace.id, data: store.dataDir };
    }

    const lay = nodeLayout(result.graph.nodes);
    const summary = {
      out: out === null ? null : path.resolve(out),
      library: saved,
      raw: flags.raw ? path.resolve(flags.raw) : null,
      tokens: tokenIds.length,
      active_features: result.prepared.space.nActive,
      features_with_rows: lay.nFeatures,
      max_feature_nodes: settings.maxFeatureNodes,
      max_feature_nodes_default: capIsDefault,
      // With --targets: each target's label and influence weight (a token's probability).
      logits: result.logitTokens.map((t) => ({
        token: t.label ?? tokenizer.tokenToString(t.tokenId),
        prob: t.prob,
      })),
      unpruned: { nodes: lay.total },
      pruned: { nodes: pruned.keptNodes.length, edges: pruned.edges.weight.length },
      replacement_score: pruned.replacementScore,
      completeness_score: pruned.completenessScore,
      provider: attributor.provider,
      timings_ms: { compile_and_load: compileMs, ...result.timingsMs, prune: pruneMs },
    };
    if (flags.json) {
      console.log(JSON.stringify(summary));
    } else {
      if (summary.out)
        console.log(`graph        ${summary.out}${summary.raw ? `  (raw: ${summary.raw})` : ''}`);
      if (saved) console.log(`library      trace ${saved.trace_id} in ${saved.data}`);
      console.log(
        `prompt       ${tokenIds.length} tokens: ${tokenIds.map((t) => JSON.stringify(tokenizer.tokenToString(t))).join(' ')}`,
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
      const t = summary.timings_ms;
      console.log(
        `time         ${Object.entries(t)
          .map(([k, v]) => `${k} ${formatSeconds(v / 1000)}`)
          .join(', ')}`,
      );
    }
    return 0;
  } finally {
    await attributor?.close();
    set?.close();
    model?.close();
    store?.close();
  }
}

function slugify(text: string): string {
  return (
    text
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-|-$/g, '')
      .slice(0, 60) || 'graph'
  );
}
