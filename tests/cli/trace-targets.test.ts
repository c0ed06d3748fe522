/** `circuit trace --targets FILE` end to end on the tiny Gemma-2 fixture with a word-level tokenizer. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodeLayout } from '../../electron/engine/attribution/graph-types.ts';
import { readRawGraph } from '../../electron/engine/attribution/raw-file.ts';
import { writeSafetensors } from '../../electron/engine/checkpoint/safetensors-writer.ts';
import { importGraphJson } from '../../electron/engine/graph-json/import.ts';
import { circuitRunner } from '../fixtures/circuit-cli.ts';
import { fixturePath } from '../fixtures/tiny-checkpoints.ts';
import { writeWordTokenizer } from '../fixtures/word-tokenizer.ts';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-trace-targets-'));
const modelDir = path.join(work, 'tiny-gemma2');
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));
let d = 0;
beforeAll(() => {
  fs.cpSync(fixturePath('tiny-gemma2'), modelDir, { recursive: true });
  writeWordTokenizer(modelDir, 64);
  d = (JSON.parse(fs.readFileSync(path.join(modelDir, 'config.json'), 'utf8')) as { hidden_size: number })
    .hidden_size;
});

const circuit = circuitRunner(path.join(work, 'cache'));
const PROMPT = 'w5 w9 w17 w33 w8 w40';
const args = [
  '--model',
  modelDir,
  '--transcoders',
  path.join(modelDir, 'transcoders/plt'),
  '--prompt',
  PROMPT,
  '--node-threshold',
  '1',
  '--edge-threshold',
  '1',
  '--json',
];

/** A float32 .npy of one vector (format 1.0, header padded to 64 bytes). */
function writeNpy(file: string, v: Float32Array): void {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${v.length},), }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64);
  header += '\n';
  const head = Buffer.alloc(10);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]).copy(head);
  head.writeUInt16LE(header.length, 8);
  fs.writeFileSync(file, Buffer.concat([head, Buffer.from(header, 'latin1'), Buffer.from(v.buffer)]));
}

const ramp = (n: number, k: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * k + 1));

describe('circuit trace --targets', () => {
  it('traces a logit difference, a token and two direction vectors; top1 − top2 edges are the difference', () => {
    // The ordinary graph, unpruned, for its top two tokens and their rows.
    const rawPlain = path.join(work, 'plain.safetensors');
    const r0 = circuit(
      'trace',
      ...args,
      '--max-n-logits',
      '2',
      '--desired-logit-prob',
      '1',
      '--out',
      path.join(work, 'plain.json'),
      '--raw',
      rawPlain,
    );
    expect(r0.code, r0.stderr).toBe(0);
    const [t1, t2] = (JSON.parse(r0.stdout) as { logits: { token: string }[] }).logits.map((l) => l.token);

    fs.mkdirSync(path.join(work, 'vectors'), { recursive: true });
    writeNpy(path.join(work, 'vectors', 'dir.npy'), ramp(d, 0.3));
    writeSafetensors(path.join(work, 'vectors', 'dir.safetensors'), [
      { name: 'direction', dtype: 'F32', shape: [1, d], data: ramp(d, 0.7) },
    ]);
    const file = path.join(work, 'targets.json');
    fs.writeFileSync(
      file,
      JSON.stringify([
        { label: 'top1 vs top2', weights: { [t1]: 1, [t2]: -1 } },
        { token: t1 },
        { label: 'd', vector: 'vectors/dir.npy' },
        { label: 'e', vector: 'vectors/dir.safetensors', weight: 0.5 },
      ]),
    );
    const out = path.join(work, 'targets-graph.json');
    const rawTargets = path.join(work, 'targets.safetensors');
    const r = circuit('trace', ...args, '--targets', file, '--out', out, '--raw', rawTargets);
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout) as { logits: { token: string; prob: number }[] };
    expect(summary.logits.map((l) => l.token)).toEqual(['top1 vs top2', t1, 'd', 'e']);
    expect(summary.logits[3].prob).toBe(0.5);

    // Logit nodes: feature_type logit, a clerp naming the target, token_prob = its weight.
    const graph = JSON.parse(fs.readFileSync(out, 'utf8')) as {
      nodes: { node_id: string; feature_type: string; clerp: string; token_prob?: number }[];
      metadata: { info?: { settings?: { targets?: unknown[] } } };
    };
    const logits = graph.nodes.filter((n) => n.feature_type === 'logit');
    expect(logits.map((n) => n.clerp)).toEqual([
      expect.stringContaining('top1 vs top2'),
      expect.stringContaining(t1),
      expect.stringContaining('"d"'),
      expect.stringContaining('"e"'),
    ]);
    expect(new Set(logits.map((n) => n.node_id)).size).toBe(4);
    // The file reads back (a logit node with a virtual id past the vocabulary is valid JSON here).
    const back = importGraphJson(fs.readFileSync(out, 'utf8'), { file: out });
    expect(back.nodes.filter((n) => n.feature_type === 'logit').map((n) => n.node_id)).toEqual(
      logits.map((n) => n.node_id),
    );

    // Edges into top1 − top2 equal the difference of the ordinary graph's edges (1e-4 of the row scale).
    const plain = readRawGraph(rawPlain).graph;
    const custom = readRawGraph(rawTargets).graph;
    const lp = nodeLayout(plain.nodes);
    const lc = nodeLayout(custom.nodes);
    expect(lc.logitOffset).toBe(lp.logitOffset);
    const row = (g: typeof plain, N: number, r: number) => g.adjacency.subarray(r * N, (r + 1) * N);
    const a = row(plain, lp.total, lp.logitOffset);
    const b = row(plain, lp.total, lp.logitOffset + 1);
    const diff = row(custom, lc.total, lc.logitOffset);
    let scale = 0;
    let worst = 0;
    for (let s = 0; s < lp.logitOffset; s++) scale = Math.max(scale, Math.abs(a[s]), Math.abs(b[s]));
    for (let s = 0; s < lp.logitOffset; s++) worst = Math.max(worst, Math.abs(diff[s] - (a[s] - b[s])));
    expect(scale).toBeGreaterThan(0);
    expect(worst / scale).toBeLessThanOrEqual(1e-4);
  });

  it.each([
    [
      'a string of two tokens',
      () => [{ token: 'w5' }, { token: 'w5 w9' }],
      /target 1 \(token "w5 w9"\).*is 2 tokens/,
    ],
    [
      'a vector of the wrong size',
      () => [{ token: 'w5' }, { label: 'short', vector: 'short.npy' }],
      /target 1 \("short"\): vector has 3 entries, the model's d_model is/,
    ],
    ['empty weights', () => [{ label: 'none', weights: {} }], /target 0 \("none"\): "weights" is empty/],
    [
      'a missing vector file',
      () => [{ label: 'gone', vector: 'nope.npy' }],
      /target 0: vector file .*nope\.npy does not exist/,
    ],
    ['not a list', () => ({ token: 'w5' }), /targets must be a non-empty JSON list/],
  ])('refuses %s with exit 2, naming the file and the target', (_what, specs, message) => {
    writeNpy(path.join(work, 'short.npy'), Float32Array.from([1, 2, 3]));
    const file = path.join(work, 'bad-targets.json');
    fs.writeFileSync(file, JSON.stringify(specs()));
    const r = circuit('trace', ...args, '--targets', file, '--out', path.join(work, 'bad.json'));
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toContain(file);
    expect(fs.existsSync(path.join(work, 'bad.json'))).toBe(false);
  });
});
