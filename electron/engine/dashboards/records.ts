/**
 * Feature records from an accumulator and token predictions, and a JSONL sink that writes
 * atomically (a temporary file renamed into place when complete).
 */
import fs from 'node:fs';
import path from 'node:path';
import { type FeatureAccumulator, histogramSorted, quantileSorted } from './accumulator.ts';
import { cantorPair } from './cantor.ts';
import type { LogitLensRows } from './logit-lens.ts';
import { type FeatureExample, type FeatureRecord, TOP_ACTIVATIONS } from './types.ts';

/** 7 significant digits: float32 values stay faithful, the JSON stays short. */
export function round7(x: number): number {
  return x === 0 || !Number.isFinite(x) ? x : Number(x.toPrecision(7));
}

export interface RecordOptions {
  quantiles: readonly number[];
  bins: number;
  tokenToString: (id: number) => string;
}

/** Token predictions of one feature: `rows` covers a batch, `i` is the row in it. */
export interface FeatureLogits {
  rows: LogitLensRows;
  i: number;
}

export function buildRecord(
  acc: FeatureAccumulator,
  layerPos: number,
  f: number,
  logits: FeatureLogits | null,
  o: RecordOptions,
): FeatureRecord {
  const g = acc.globalIndex(layerPos, f);
  const layer = acc.cfg.layers[layerPos];
  const a = acc.arrays;
  const count = a.activeCount[g];
  const seen = acc.tokensSeen;
  const seenKeys = new Set<string>();
  const examples: FeatureExample[] = acc.topExamples(g).map((ex) => {
    const key = ex.tokenIds.join(',');
    const repeated = seenKeys.has(key);
    seenKeys.add(key);
    return {
      tokens: ex.tokenIds.map(o.tokenToString),
      tokens_acts_list: ex.acts.map(round7),
      train_token_ind: ex.trainIndex,
      is_repeated_datapoint: repeated,
      token_ids: ex.tokenIds,
    };
  });
  const sample = acc.sortedSample(g);
  const actMax = count > 0 ? a.actMax[g] : 0;
  const actMin = count === 0 ? 0 : count < seen ? 0 : a.minPositive[g];
  const record: FeatureRecord = {
    index: f,
    layer,
    feature: cantorPair(layer, f),
    examples_quantiles: [{ quantile_name: TOP_ACTIVATIONS, examples }],
    top_logits: [],
    bottom_logits: [],
    act_min: round7(actMin),
    act_max: round7(actMax),
    quantile_values: o.quantiles.map((q) => ({ quantile: q, value: round7(quantileSorted(sample, q)) })),
    histogram:
      count > 0
        ? (() => {
            const h = histogramSorted(sample, actMax, o.bins, count);
            return { ...h, bin_edges: h.bin_edges.map(round7) };
          })()
        : null,
    activation_frequency: seen > 0 ? count / seen : 0,
    activation_count: count,
    token_count: seen,
  };
  if (logits) {
    const { rows, i } = logits;
    const k = rows.k;
    const top = Array.from(rows.topIds.subarray(i * k, (i + 1) * k));
    const bottom = Array.from(rows.bottomIds.subarray(i * k, (i + 1) * k));
    record.top_logits = top.map(o.tokenToString);
    record.bottom_logits = bottom.map(o.tokenToString);
    record.top_logit_ids = top;
    record.top_logit_values = Array.from(rows.topValues.subarray(i * k, (i + 1) * k), round7);
    record.bottom_logit_ids = bottom;
    record.bottom_logit_values = Array.from(rows.bottomValues.subarray(i * k, (i + 1) * k), round7);
  }
  return record;
}

/** JSON Lines written to a temporary file and renamed onto `file` by `commit()`. */
export class AtomicJsonlWriter {
  private readonly tmp: string;
  private readonly fd: number;
  private buffer: string[] = [];
  private bufferedBytes = 0;
  count = 0;

  constructor(readonly file: string) {
    const abs = path.resolve(file);
    this.tmp = path.join(path.dirname(abs), `.${path.basename(abs)}.${process.pid}.${Date.now()}.tmp`);
    this.fd = fs.openSync(this.tmp, 'w');
  }

  write(value: unknown): void {
    const line = `${JSON.stringify(value)}\n`;
    this.buffer.push(line);
    this.bufferedBytes += line.length;
    this.count++;
    if (this.bufferedBytes > 1 << 20) this.flush();
  }

  private flush(): void {
    if (!this.buffer.length) return;
    fs.writeSync(this.fd, this.buffer.join(''));
    this.buffer = [];
    this.bufferedBytes = 0;
  }

  commit(): void {
    this.flush();
    fs.fsyncSync(this.fd);
    fs.closeSync(this.fd);
    fs.renameSync(this.tmp, this.file);
  }

  abort(): void {
    try {
      fs.closeSync(this.fd);
    } catch {}
    fs.rmSync(this.tmp, { force: true });
  }
}
