/** `circuit dashboards` as a real child process: JSONL out, progress on stderr, --data, --import. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { circuitRunner } from '../../fixtures/circuit-cli.ts';
import { fixturePath, hash32 } from '../../fixtures/tiny-checkpoints.ts';

const FIX = fixturePath('tiny-gemma2');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-dash-cli-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const circuit = circuitRunner(path.join(tmp, 'cache'));

const corpus = path.join(tmp, 'corpus.jsonl');
fs.writeFileSync(
  corpus,
  Array.from({ length: 30 }, (_, i) =>
    JSON.stringify({ token_ids: Array.from({ length: 5 + (i % 9) }, (_, j) => 3 + (hash32(i, j) % 61)) }),
  ).join('\n'),
);

describe('circuit dashboards', () => {
  it('writes JSONL feature records and stores them in the library', () => {
    const out = path.join(tmp, 'features.jsonl');
    const data = path.join(tmp, 'library');
    const r = circuit(
      'dashboards',
      '--model',
      FIX,
      '--transcoders',
      path.join(FIX, 'transcoders', 'plt'),
      '--corpus',
      corpus,
      '--out',
      out,
      '--data',
      data,
      '--window',
      '16',
      '--top-k',
      '5',
      '--context',
      '4',
      '--json',
    );
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout);
    expect(summary.features).toBe(144);
    expect(summary.tokensPerSecond).toBeGreaterThan(0);
    expect(summary.data.features).toBe(144);
    expect(r.stderr).toMatch(/activations +\d+\/~?\d+ tokens, \d+ windows/);
    expect(r.stderr).toMatch(/records +144\/144 features/);
    const lines = fs
      .readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines).toHaveLength(144);
    for (const k of [
      'index',
      'examples_quantiles',
      'top_logits',
      'bottom_logits',
      'act_min',
      'act_max',
      'quantile_values',
      'histogram',
      'activation_frequency',
    ]) {
      expect(lines[0]).toHaveProperty(k);
    }
    const db = new Database(path.join(data, 'library.sqlite'), { readonly: true });
    try {
      const row = db
        .prepare('SELECT dashboard FROM features WHERE layer = ? AND feature_index = ?')
        .get(lines[50].layer, lines[50].index) as { dashboard: string };
      expect(JSON.parse(row.dashboard)).toEqual(lines[50]);
    } finally {
      db.close();
    }

    // import converts published layouts (here: our own JSONL back)
    const again = path.join(tmp, 'again.jsonl');
    const imp = circuit('dashboards', '--import', out, '--out', again, '--json');
    expect(imp.code, imp.stderr).toBe(0);
    expect(JSON.parse(imp.stdout).imported).toBe(144);
    const back = fs
      .readFileSync(again, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(back).toEqual(lines);
  });
});
