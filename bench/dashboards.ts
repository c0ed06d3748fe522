/**
 * Dashboards throughput: tokens/s of the activation pass (forward with transcoder encoders +
 * the streaming accumulator), and the time of the records phase (token predictions through
 * the unembedding + record assembly). A benchmark prints figures; it is not a test.
 *
 *   npx tsx bench/dashboards.ts [--max-tokens 20000] [--window 64] [--threads 2] [--only NAME,...] [--json]
 *   npx tsx bench/dashboards.ts --model DIR --transcoders DIR --corpus FILE --only custom
 *
 * Targets: the demo model (resources/models/gemma2-demo, transcoders plt and clt, its
 * corpus/sample.txt; skipped with a message while it is absent); `demo-like`, a synthetic
 * checkpoint with the demo's shapes (4 layers, d 128, vocab 2304, 512 JumpReLU features per
 * layer, ~30 active per token) on sentence-length random documents; and `gemma2-small` of
 * synthetic-gemma2.ts (2 layers, d 256, 1024 features per layer, ~27% active) on long ones. On a shared or loaded machine the figures are noise: check
 * the load average printed in the header.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { runDashboards } from '../electron/engine/dashboards/run.ts';
import { hash32 } from '../tests/fixtures/tiny-checkpoints.ts';
import {
  defaultBenchCacheRoot,
  ensureSyntheticGemma2,
  GEMMA2_SMALL,
  type SyntheticGemma2Spec,
} from './synthetic-gemma2.ts';

/** The demo model's shapes (native/demo-model/main.py defaults), ~30 active features per token. */
const DEMO_LIKE: SyntheticGemma2Spec = {
  name: 'demo-like',
  layers: 4,
  hidden: 128,
  heads: 4,
  kvHeads: 2,
  headDim: 32,
  intermediate: 512,
  vocab: 2304,
  slidingWindow: 4096,
  features: 512,
  thresholdMean: 1.57,
};

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DEMO = path.join(ROOT, 'resources', 'models', 'gemma2-demo');

const { values: flags } = parseArgs({
  options: {
    'max-tokens': { type: 'string', default: '20000' },
    window: { type: 'string', default: '64' },
    threads: { type: 'string' },
    only: { type: 'string' },
    model: { type: 'string' },
    transcoders: { type: 'string' },
    corpus: { type: 'string' },
    json: { type: 'boolean', default: false },
  },
});

interface Target {
  name: string;
  model: string;
  transcoders: string;
  corpus: string;
  /** Synthetic checkpoints have no tokenizer. */
  bosId?: number;
}

function targets(): Target[] {
  const out: Target[] = [];
  if (flags.model && flags.transcoders && flags.corpus) {
    out.push({ name: 'custom', model: flags.model, transcoders: flags.transcoders, corpus: flags.corpus });
  }
  const sample = path.join(DEMO, 'corpus', 'sample.txt');
  if (fs.existsSync(path.join(DEMO, 'config.json')) && fs.existsSync(sample)) {
    for (const tc of ['plt', 'clt']) {
      if (fs.existsSync(path.join(DEMO, 'transcoders', tc))) {
        out.push({
          name: `demo-${tc}`,
          model: DEMO,
          transcoders: path.join(DEMO, 'transcoders', tc),
          corpus: sample,
        });
      }
    }
  } else {
    console.error(`(demo model absent: ${DEMO} — skipped)`);
  }
  // random token ids: long documents for gemma2-small, sentence-length ones (5–15 tokens, like
  // the demo's corpus) for demo-like
  for (const [spec, minLen, span] of [
    [GEMMA2_SMALL, 40, 200],
    [DEMO_LIKE, 5, 11],
  ] as const) {
    const syn = ensureSyntheticGemma2(spec, defaultBenchCacheRoot(), (m) => console.error(m));
    const corpus = path.join(defaultBenchCacheRoot(), `dashboards-random-${spec.name}.jsonl`);
    if (!fs.existsSync(corpus)) {
      const lines = Array.from({ length: 4000 }, (_, i) =>
        JSON.stringify({
          token_ids: Array.from(
            { length: minLen + (hash32(7, i) % span) },
            (_, j) => 3 + (hash32(i, j) % (spec.vocab - 3)),
          ),
        }),
      );
      fs.writeFileSync(corpus, `${lines.join('\n')}\n`);
    }
    out.push({ name: spec.name, model: syn.modelDir, transcoders: syn.transcoderDir, corpus, bosId: 2 });
  }
  const only = flags.only?.split(',');
  return only ? out.filter((t) => only.includes(t.name)) : out;
}

async function main() {
  const maxTokens = Number(flags['max-tokens']);
  const window = Number(flags.window);
  const threads = flags.threads ? Number(flags.threads) : undefined;
  const header = `dashboards bench: ${os.cpus()[0]?.model ?? 'cpu'} × ${os.availableParallelism()}, load ${os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')}, window ${window}, max ${maxTokens} tokens, threads ${threads ?? 'all'}`;
  console.error(header);
  const cacheRoot = path.join(defaultBenchCacheRoot(), 'compiled');
  const rows: Record<string, unknown>[] = [];
  for (const t of targets()) {
    let recordsStart = 0;
    let recordsMs = 0;
    const started = performance.now();
    const s = await runDashboards(
      {
        model: t.model,
        transcoders: t.transcoders,
        corpus: t.corpus,
        window,
        maxTokens,
        threads,
        cacheRoot,
        bosId: t.bosId,
      },
      {
        onRecord: () => undefined,
        onProgress: (p) => {
          if (p.phase === 'records' && recordsStart === 0) recordsStart = performance.now();
          if (p.phase === 'records' && p.done === p.total) recordsMs = performance.now() - recordsStart;
        },
      },
    );
    const row = {
      target: t.name,
      tokens: s.tokens,
      windows: s.windows,
      features: s.features,
      tokensPerSecond: Math.round(s.tokensPerSecond),
      activationSeconds: Number(s.activationSeconds.toFixed(2)),
      recordsSeconds: Number((recordsMs / 1000).toFixed(2)),
      totalSeconds: Number(((performance.now() - started) / 1000).toFixed(2)),
      accumulatorMiB: Number((s.accumulatorBytes / 2 ** 20).toFixed(1)),
      rssMiB: Math.round(process.memoryUsage().rss / 2 ** 20),
    };
    rows.push(row);
    console.error(
      `${t.name.padEnd(14)} ${String(row.tokensPerSecond).padStart(7)} tokens/s  (${row.tokens} tokens, ${row.windows} windows, ${row.activationSeconds} s)  records ${row.recordsSeconds} s for ${row.features} features  accumulator ${row.accumulatorMiB} MiB  rss ${row.rssMiB} MiB`,
    );
  }
  if (flags.json) console.log(JSON.stringify({ header, rows }));
}

await main();
