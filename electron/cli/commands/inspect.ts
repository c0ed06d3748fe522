/**
 * `circuit inspect`: what a checkpoint (and optionally a transcoder set) is, and whether the
 * engine can run it — every problem found, each naming its file and tensor or field.
 */
import fs from 'node:fs';
import path from 'node:path';
import { isEngineError } from '../../engine/errors.ts';
import { type OpenedModel, openModel } from '../../engine/model/open-model.ts';
import { transcoderProblemsFor } from '../../engine/model/transcoder-fit.ts';
import { loadTranscoderSet } from '../../engine/transcoders/load.ts';
import type { TranscoderSet } from '../../engine/transcoders/types.ts';
import { parseFlags, requireFlag } from '../args.ts';

const HELP = 'usage: circuit inspect --model DIR [--transcoders DIR] [--json]';

interface Problem {
  code: string;
  message: string;
  file?: string;
  tensor?: string;
  field?: string;
}

const asProblem = (e: unknown): Problem => {
  if (!isEngineError(e)) throw e;
  return { code: e.code, message: e.message, file: e.file, tensor: e.tensor, field: e.field };
};

function describeModel(m: OpenedModel) {
  const c = m.config;
  return {
    dir: m.dir,
    family: c.family,
    model_type: c.modelType,
    layers: c.nLayers,
    hidden_size: c.hiddenSize,
    heads: c.nHeads,
    kv_heads: c.nKvHeads,
    head_dim: c.headDim,
    intermediate_size: c.intermediateSize,
    vocab_size: c.vocabSize,
    max_positions: c.maxPositions,
    norm: c.normKind,
    tied_embeddings: c.tiedEmbeddings,
    attn_softcap: c.attnSoftcap ?? null,
    final_softcap: c.finalSoftcap ?? null,
    sliding_window_layers: c.slidingWindows.flatMap((w, i) => (w === undefined ? [] : [i])),
    rope: c.rope ?? null,
    dtypes: m.dtypes,
    tensors: m.expectedShapes.size,
    unused_tensors: m.unusedTensors,
    bytes_on_disk: m.bytesOnDisk,
    tokenizer: fs.existsSync(path.join(m.dir, 'tokenizer.json')),
  };
}

function describeTranscoders(t: TranscoderSet) {
  return {
    dir: t.dir,
    kind: t.kind,
    layout: t.layout,
    model_name: t.modelName ?? null,
    layers: t.nLayers,
    d_model: t.dModel,
    d_transcoder: t.dTranscoder,
    read_hook: t.readHook,
    write_hook: t.writeHook,
    activation: t.activation,
    skip: t.hasSkip,
  };
}

export async function inspectCommand(argv: string[]): Promise<number> {
  const flags = parseFlags(argv, {
    model: { type: 'string' },
    transcoders: { type: 'string' },
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (flags.help) {
    console.log(HELP);
    return 0;
  }
  const modelDir = requireFlag(flags.model, 'model');
  const problems: Problem[] = [];
  let model: OpenedModel | undefined;
  let transcoders: TranscoderSet | undefined;
  try {
    model = openModel(modelDir);
  } catch (e) {
    problems.push(asProblem(e));
  }
  if (flags.transcoders) {
    try {
      transcoders = loadTranscoderSet(flags.transcoders);
    } catch (e) {
      problems.push(asProblem(e));
    }
  }
  if (model && transcoders) problems.push(...transcoderProblemsFor(model, transcoders).map(asProblem));
  const report = {
    model: model ? describeModel(model) : null,
    transcoders: transcoders ? describeTranscoders(transcoders) : null,
    valid: problems.length === 0,
    problems,
  };
  model?.close();
  transcoders?.close();
  if (flags.json) {
    console.log(JSON.stringify(report, null, 2));
  } else {
    printReport(report);
  }
  return report.valid ? 0 : 2;
}

function printReport(r: {
  model: ReturnType<typeof describeModel> | null;
  transcoders: ReturnType<typeof describeTranscoders> | null;
  valid: boolean;
  problems: Problem[];
}) {
  const m = r.model;
  if (m) {
    console.log(`model        ${m.dir}`);
    console.log(`family       ${m.family} (model_type ${m.model_type})`);
    console.log(
      `sizes        ${m.layers} layers, hidden ${m.hidden_size}, ${m.heads} heads / ${m.kv_heads} kv, head_dim ${m.head_dim}, mlp ${m.intermediate_size}, vocab ${m.vocab_size}`,
    );
    console.log(
      `dtypes       ${Object.entries(m.dtypes)
        .map(([k, v]) => `${k}×${v}`)
        .join(', ')}`,
    );
    console.log(
      `on disk      ${(m.bytes_on_disk / 2 ** 20).toFixed(1)} MiB, tokenizer.json ${m.tokenizer ? 'yes' : 'no'}`,
    );
    if (m.unused_tensors.length) console.log(`unused       ${m.unused_tensors.join(', ')}`);
  }
  const t = r.transcoders;
  if (t) {
    console.log(`transcoders  ${t.dir}`);
    console.log(
      `  kind       ${t.kind} (${t.layout}), ${t.layers} layers, d_model ${t.d_model}, d_transcoder ${t.d_transcoder}`,
    );
    console.log(`  hooks      reads ${t.read_hook}, writes ${t.write_hook}`);
    console.log(
      `  activation ${t.activation.kind}${t.activation.kind === 'topk' ? ` k=${t.activation.k}` : ''}${t.skip ? ', W_skip' : ''}`,
    );
  }
  if (r.valid) {
    console.log('verdict      OK');
  } else {
    console.log(`verdict      ${r.problems.length} problem(s):`);
    for (const p of r.problems) console.log(`  [${p.code}] ${p.message}`);
  }
}
