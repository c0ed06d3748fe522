/** Import of published feature data: circuit-tracer's binary layout, per-feature JSON, JSONL. */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { cantorPair } from '../../../electron/engine/dashboards/cantor.ts';
import {
  decodeFeatureChunk,
  IMPORT_LIMITS,
  importFeatureData,
  writeBinaryFeatureData,
} from '../../../electron/engine/dashboards/import.ts';
import type { FeatureRecord } from '../../../electron/engine/dashboards/types.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-import-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function record(layer: number, index: number): FeatureRecord {
  return {
    index,
    layer,
    feature: cantorPair(layer, index),
    examples_quantiles: [
      {
        quantile_name: 'Top activations',
        examples: [
          {
            tokens: ['<bos>', ' the', ' <b>cat</b>'],
            tokens_acts_list: [0, 0.5, 2.25 + layer],
            train_token_ind: 2,
            is_repeated_datapoint: false,
            token_ids: [2, 5, 9],
          },
        ],
      },
    ],
    top_logits: [' dog', ' mat'],
    bottom_logits: [' no'],
    top_logit_ids: [7, 8],
    top_logit_values: [1.5, 1.25],
    bottom_logit_ids: [3],
    bottom_logit_values: [-2],
    act_min: 0,
    act_max: 2.25 + layer,
    quantile_values: [{ quantile: 0.5, value: 1 }],
    histogram: { bin_edges: [0, 1, 2], counts: [3, 1], exact: true },
    activation_frequency: 0.125,
    activation_count: 4,
    token_count: 32,
  };
}

const RECORDS = [record(0, 0), record(0, 3), record(2, 1)];

async function all(
  src: string,
  opts: Parameters<typeof importFeatureData>[1] = {},
): Promise<FeatureRecord[]> {
  const out: FeatureRecord[] = [];
  for await (const r of importFeatureData(src, opts)) out.push(r);
  return out;
}

describe('feature data import', () => {
  it("reads circuit-tracer's index.json.gz + layer_N.bin, with or without the 4-byte prefix", async () => {
    for (const prefix of [true, false]) {
      const dir = path.join(tmp, `bin-${prefix}`, 'features');
      writeBinaryFeatureData(dir, RECORDS, prefix);
      const index = JSON.parse(
        (await import('node:zlib')).gunzipSync(fs.readFileSync(path.join(dir, 'index.json.gz'))).toString(),
      );
      expect(index['0'].filename).toBe('layer_0.bin');
      expect(index['0'].offsets).toHaveLength(5); // features 0..3 + end; 1 and 2 are empty
      for (const src of [dir, path.dirname(dir), path.join(dir, 'index.json.gz')]) {
        const got = await all(src);
        expect(got).toEqual(RECORDS);
      }
      expect((await all(dir, { layers: [2] })).map((r) => r.index)).toEqual([1]);
    }
  });

  it('reads a folder of per-feature JSON named by Cantor id, by layer_index, or by their fields', async () => {
    const dir = path.join(tmp, 'json');
    fs.mkdirSync(path.join(dir, 'scan'), { recursive: true });
    // the shape circuit-tracer's frontend reads: logits as strings, no index fields
    const ct = {
      top_logits: [' Texas', ' Austin'],
      bottom_logits: [' Paris'],
      act_min: 0,
      act_max: 1.4,
      examples_quantiles: [
        {
          quantile_name: 'Top activations',
          examples: [
            {
              tokens: ['a', 'b'],
              tokens_acts_list: [0.2, 1.4],
              train_token_ind: 1,
              is_repeated_datapoint: true,
            },
          ],
        },
      ],
      activation_frequency: 0.01,
    };
    fs.writeFileSync(path.join(dir, 'scan', `${cantorPair(20, 15589)}.json`), JSON.stringify(ct));
    fs.writeFileSync(path.join(dir, 'scan', '3_7.json.gz'), gzipSync(JSON.stringify({ ...ct, act_max: 2 })));
    fs.writeFileSync(path.join(dir, 'named.json'), JSON.stringify({ ...ct, layer: 1, feature: 9 }));
    fs.writeFileSync(path.join(dir, 'README.json'), JSON.stringify({ note: 'not a feature' }));
    const warnings: string[] = [];
    const got = await all(dir, { onWarning: (m) => warnings.push(m) });
    expect(got.map((r) => [r.layer, r.index])).toEqual([
      [1, 9],
      [3, 7],
      [20, 15589],
    ]);
    const r = got[2];
    expect(r.feature).toBe(cantorPair(20, 15589));
    expect(r.top_logits).toEqual([' Texas', ' Austin']);
    expect(r.examples_quantiles[0].examples[0]).toEqual(ct.examples_quantiles[0].examples[0]);
    expect(r.quantile_values).toEqual([]);
    expect(r.histogram).toBeNull();
    expect(got[1].act_max).toBe(2);
    expect(warnings.join()).toMatch(/README\.json/);
  });

  it('reads JSONL records and a single feature file, and converts a Neuronpedia-style export', async () => {
    const jsonl = path.join(tmp, 'records.jsonl');
    fs.writeFileSync(jsonl, RECORDS.map((r) => JSON.stringify(r)).join('\n'));
    expect(await all(jsonl)).toEqual(RECORDS);

    const np = path.join(tmp, '5_12.json');
    fs.writeFileSync(
      np,
      JSON.stringify({
        layer: '5-gemmascope-res-16k',
        index: '12',
        pos_str: [' yes', ' ok'],
        pos_values: [0.9, 0.8],
        neg_str: [' no'],
        neg_values: [-0.7],
        frac_nonzero: 0.002,
        maxActApprox: 7.5,
        freq_hist_data_bar_values: [0.5, 1.5, 2.5],
        freq_hist_data_bar_heights: [10, 4, 1],
        activations: [
          { tokens: ['x', 'y'], values: [0, 3], maxValue: 3, maxValueTokenIndex: 1 },
          { tokens: ['p', 'q', 'r'], values: [7.5, 0, 1], maxValue: 7.5, maxValueTokenIndex: 0 },
        ],
      }),
    );
    const [r] = await all(np);
    expect([r.layer, r.index]).toEqual([5, 12]);
    expect(r.top_logits).toEqual([' yes', ' ok']);
    expect(r.top_logit_values).toEqual([0.9, 0.8]);
    expect(r.bottom_logit_values).toEqual([-0.7]);
    expect(r.activation_frequency).toBe(0.002);
    expect(r.act_max).toBe(7.5);
    expect(r.examples_quantiles[0].examples.map((e) => e.train_token_ind)).toEqual([0, 1]);
    expect(r.histogram).toEqual({ bin_edges: [0, 1, 2, 3], counts: [10, 4, 1], exact: false });
  });

  it('rejects malformed or hostile data with the file and field', async () => {
    const dir = path.join(tmp, 'bad');
    writeBinaryFeatureData(dir, RECORDS);
    const idx = path.join(dir, 'index.json.gz');
    const write = (v: unknown) => fs.writeFileSync(idx, gzipSync(JSON.stringify(v)));
    write({ 0: { filename: '../../etc/passwd', offsets: [0, 10] } });
    await expect(all(dir)).rejects.toThrow(/outside the index's folder/);
    write({ 0: { filename: 'layer_0.bin', offsets: [0, 10 ** 9] } });
    await expect(all(dir)).rejects.toThrow(/go beyond the/);
    write({ 0: { filename: 'layer_0.bin', offsets: [5, 2] } });
    await expect(all(dir)).rejects.toThrow(/decrease/);
    write({ x: { filename: 'layer_0.bin', offsets: [0] } });
    await expect(all(dir)).rejects.toThrow(/not a layer number/);
    const f = path.join(tmp, '1_1.json');
    fs.writeFileSync(
      f,
      JSON.stringify({ examples_quantiles: [{ examples: [{ tokens: ['a'], tokens_acts_list: [1, 2] }] }] }),
    );
    await expect(all(f)).rejects.toThrow(/differ in length/);
    expect(() => decodeFeatureChunk(Buffer.from([0x1f, 0x8b, 0, 1, 2]), 'x')).toThrow(/cannot decompress/);
  });
  it('refuses a FIFO, a device or an oversized file before reading it, naming it', async () => {
    const dir = path.join(tmp, 'hostile');
    fs.mkdirSync(dir);
    const fifo = path.join(dir, '0_1.json');
    execFileSync('mkfifo', [fifo]);
    const t0 = performance.now();
    await expect(all(fifo)).rejects.toThrow(/0_1\.json is not a regular file.*0_1\.json/);
    const index = path.join(dir, 'index.json.gz');
    fs.symlinkSync('/dev/zero', index);
    await expect(all(dir)).rejects.toThrow(/the feature index is not a regular file/);
    expect(performance.now() - t0).toBeLessThan(2000);
    const big = path.join(dir, '0_2.json');
    fs.writeFileSync(big, '');
    fs.truncateSync(big, IMPORT_LIMITS.featureBytes + 1);
    await expect(all(big)).rejects.toThrow(new RegExp(`at most ${IMPORT_LIMITS.featureBytes} are read`));
  });
});
