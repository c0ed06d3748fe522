/**
 * `circuit dashboards`: feature dashboards of a transcoder set over a corpus (top activating
 * examples, activation quantiles/histogram/frequency, token predictions), written as JSONL
 * feature records (--out) and/or into the library (--data). Resumable: an interrupted run
 * (Ctrl-C, crash) continues from its checkpoint when run again with the same arguments.
 *
 * `circuit dashboards --import SRC` converts published feature data (circuit-tracer's
 * index.json.gz + layer_N.bin, a folder of per-feature JSON, or JSONL) instead.
 */
import fs from 'node:fs';
import path from 'node:path';
import { importFeatureData } from '../../engine/dashboards/import.ts';
import { AtomicJsonlWriter } from '../../engine/dashboards/records.ts';
import { DASHBOARD_DEFAULTS, type DashboardProgress, runDashboards } from '../../engine/dashboards/run.ts';
import type { FeatureRecord } from '../../engine/dashboards/types.ts';
import { EngineError } from '../../engine/errors.ts';
import { parseFlags, positiveIntFlag, providerFlag, requireFlag } from '../args.ts';
import { formatSeconds } from '../progress.ts';

const HELP = `usage: circuit dashboards --model DIR --transcoders DIR --corpus FILE (--out FILE.jsonl | --data DIR)
       [--top-k ${DASHBOARD_DEFAULTS.topK}] [--context ${DASHBOARD_DEFAULTS.context}] [--window ${DASHBOARD_DEFAULTS.window}] [--max-tokens N]
       [--layers 0,1,…] [--reservoir ${DASHBOARD_DEFAULTS.reservoir}] [--format text|jsonl] [--split line|paragraph]
       [--provider cpu|webgpu|cuda|auto] [--threads N] [--checkpoint-every ${DASHBOARD_DEFAULTS.checkpointEvery}] [--restart] [--json]
       circuit dashboards --import SRC --transcoders DIR (--out FILE.jsonl | --data DIR) [--layers …]

The corpus: plain text (one document per line, or per paragraph with --split paragraph) or
JSONL with a "text" field (or pre-tokenized "token_ids"). Windows of --window tokens (BOS
included); examples keep --context tokens on each side of the max token.
A checkpoint (<out>.checkpoint) lets an interrupted run continue; --restart ignores it.`;

function layersFlag(v: string | undefined): number[] | undefined {
  if (v === undefined) return undefined;
  const parts = v.split(',').map((s) => s.trim());
  const ls = parts.map(Number);
  if (parts.some((p) => p === '') || ls.some((l) => !Number.isInteger(l) || l < 0)) {
    throw new EngineError('argument', `--layers must be comma-separated layer numbers, got "${v}"`, {
      field: 'layers',
    });
  }
  return ls;
}

function choice<T extends string>(v: string | undefined, flag: string, options: readonly T[]): T | undefined {
  if (v === undefined) return undefined;
  if (!(options as readonly string[]).includes(v)) {
    throw new EngineError('argument', `--${flag} must be one of ${options.join(', ')}, got "${v}"`, {
      field: flag,
    });
  }
  return v as T;
}

/** Progress on stderr: a rewritten line on a terminal, a line every few seconds otherwise. */
function dashboardProgress(stream: NodeJS.WriteStream = process.stderr) {
  const tty = stream.isTTY === true;
  let lastWidth = 0;
  let lastLine = 0;
  let lastPhase = '';
  return {
    update(p: DashboardProgress) {
      const now = performance.now();
      const phaseChanged = p.phase !== lastPhase;
      lastPhase = p.phase;
      if (!tty && !phaseChanged && now - lastLine < 5000 && p.done < p.total) return;
      lastLine = now;
      const total = p.estimated ? `~${p.total}` : String(p.total);
      const parts = [`${p.phase.padEnd(11)} ${p.done}/${total} ${p.unit}`];
      if (p.windows !== undefined) parts.push(`${p.windows} windows`);
      if (p.tokensPerSecond) parts.push(`${Math.round(p.tokensPerSecond)} tok/s`);
      if (p.etaSeconds !== undefined && p.done < p.total) parts.push(`ETA ${formatSeconds(p.etaSeconds)}`);
      const line = parts.join(', ');
      if (tty) {
        stream.write(`\r${line.padEnd(lastWidth)}`);
        lastWidth = line.length;
      } else {
        stream.write(`${line}\n`);
      }
    },
    done() {
      if (tty && lastWidth) stream.write(`\r${' '.repeat(lastWidth)}\r`);
    },
  };
}

/** Records into the library's features table, in batches (one transaction each). */
async function librarySink(dataDir: string, transcoderDir: string) {
  // loaded only with --data: the store needs the native SQLite module
  const [{ Store }, { transcoderSetInput }, { loadTranscoderSet }] = await Promise.all([
    import('../../store/store.ts'),
    import('../../api/model-check.ts'),
    import('../../engine/transcoders/load.ts'),
  ]);
  const set = loadTranscoderSet(transcoderDir);
  let input: ReturnType<typeof transcoderSetInput>;
  try {
    input = transcoderSetInput(set);
  } finally {
    set.close();
  }
  const store = Store.open(path.resolve(dataDir));
  const setRecord = store.models.ensureTranscoderSet(input);
  let batch: { layer: number; index: number; dashboard: FeatureRecord }[] = [];
  let count = 0;
  const flush = () => {
    if (batch.length) store.features.putDashboards(setRecord.id, batch);
    count += batch.length;
    batch = [];
  };
  return {
    setId: setRecord.id,
    write(r: FeatureRecord) {
      batch.push({ layer: r.layer, index: r.index, dashboard: r });
      if (batch.length >= 256) flush();
    },
    commit() {
      flush();
      return count;
    },
    close() {
      store.close();
    },
  };
}

export async function dashboardsCommand(argv: string[]): Promise<number> {
  const flags = parseFlags(argv, {
    model: { type: 'string' },
    transcoders: { type: 'string' },
    corpus: { type: 'string' },
    import: { type: 'string' },
    out: { type: 'string' },
    data: { type: 'string' },
    'top-k': { type: 'string' },
    context: { type: 'string' },
    window: { type: 'string' },
    'max-tokens': { type: 'string' },
    layers: { type: 'string' },
    reservoir: { type: 'string' },
    format: { type: 'string' },
    split: { type: 'string' },
    provider: { type: 'string' },
    threads: { type: 'string' },
    'checkpoint-every': { type: 'string' },
    restart: { type: 'boolean' },
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (flags.help) {
    console.log(HELP);
    return 0;
  }
  if (!flags.out && !flags.data) {
    throw new EngineError('argument', '--out FILE.jsonl or --data DIR is required', { field: 'out' });
  }
  if (flags.out) {
    const dir = path.dirname(path.resolve(flags.out));
    if (!fs.existsSync(dir))
      throw new EngineError('argument', `folder of --out does not exist: ${dir}`, { field: 'out' });
  }
  const layers = layersFlag(flags.layers);
  const writer = flags.out ? new AtomicJsonlWriter(flags.out) : null;
  let library: Awaited<ReturnType<typeof librarySink>> | null = null;
  const progress = dashboardProgress();
  const controller = new AbortController();
  const onSignal = () => controller.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    if (flags.data) library = await librarySink(flags.data, requireFlag(flags.transcoders, 'transcoders'));
    const sink = (r: FeatureRecord) => {
      writer?.write(r);
      library?.write(r);
    };
    let summary: Record<string, unknown>;
    if (flags.import) {
      let n = 0;
      for await (const r of importFeatureData(flags.import, {
        layers,
        onWarning: (m) => console.error(`warning: ${m}`),
      })) {
        if (controller.signal.aborted) throw new EngineError('cancelled', 'the import was interrupted');
        sink(r);
        n++;
      }
      summary = { imported: n, source: path.resolve(flags.import) };
    } else {
      const model = requireFlag(flags.model, 'model');
      const transcoders = requireFlag(flags.transcoders, 'transcoders');
      const corpus = requireFlag(flags.corpus, 'corpus');
      const checkpoint = flags.out ? `${path.resolve(flags.out)}.checkpoint` : undefined;
      const s = await runDashboards(
        {
          model,
          transcoders,
          corpus,
          topK: positiveIntFlag(flags['top-k'], 'top-k', DASHBOARD_DEFAULTS.topK),
          context:
            flags.context === undefined
              ? DASHBOARD_DEFAULTS.context
              : flags.context === '0'
                ? 0
                : positiveIntFlag(flags.context, 'context', DASHBOARD_DEFAULTS.context),
          window: positiveIntFlag(flags.window, 'window', DASHBOARD_DEFAULTS.window),
          maxTokens:
            flags['max-tokens'] === undefined
              ? undefined
              : positiveIntFlag(flags['max-tokens'], 'max-tokens', 1),
          layers,
          reservoir: positiveIntFlag(flags.reservoir, 'reservoir', DASHBOARD_DEFAULTS.reservoir),
          format: choice(flags.format, 'format', ['text', 'jsonl'] as const),
          split: choice(flags.split, 'split', ['line', 'paragraph'] as const),
          provider: providerFlag(flags.provider),
          threads: flags.threads === undefined ? undefined : positiveIntFlag(flags.threads, 'threads', 1),
          checkpoint,
          checkpointEvery: positiveIntFlag(
            flags['checkpoint-every'],
            'checkpoint-every',
            DASHBOARD_DEFAULTS.checkpointEvery,
          ),
          resume: !flags.restart,
        },
        {
          signal: controller.signal,
          onProgress: (p) => progress.update(p),
          onRecord: sink,
          onWarning: (m) => console.error(`warning: ${m}`),
        },
      );
      summary = { ...s };
      if (s.resumedFromWindow !== null) console.error(`resumed after window ${s.resumedFromWindow}`);
    }
    progress.done();
    writer?.commit();
    const stored = library?.commit();
    const out = {
      ...summary,
      out: flags.out ? path.resolve(flags.out) : null,
      data: flags.data
        ? { dir: path.resolve(flags.data), transcoderSetId: library!.setId, features: stored }
        : null,
    };
    if (flags.json) {
      console.log(JSON.stringify(out));
    } else {
      if (out.out) console.log(`features     ${out.out}`);
      if (out.data)
        console.log(
          `library      ${out.data.dir} (transcoder set ${out.data.transcoderSetId}, ${stored} features)`,
        );
      if ('imported' in summary) {
        console.log(`imported     ${summary.imported} features from ${summary.source}`);
      } else {
        const s = summary as unknown as Awaited<ReturnType<typeof runDashboards>>;
        console.log(`corpus       ${s.windows} windows, ${s.tokens} tokens (${s.tokensSeen} without BOS)`);
        console.log(`features     ${s.features} in layers ${s.layers.join(',')}`);
        console.log(
          `throughput   ${Math.round(s.tokensPerSecond)} tokens/s over ${formatSeconds(s.activationSeconds)} (${s.provider})`,
        );
      }
    }
    return 0;
  } catch (e) {
    progress.done();
    writer?.abort();
    if (controller.signal.aborted) {
      console.error('interrupted: run the same command again to continue from the checkpoint');
      return 130;
    }
    throw e;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    library?.close();
  }
}
