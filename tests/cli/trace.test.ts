/** `circuit trace` end to end on a tiny Gemma-2 fixture with a word-level tokenizer. */
import { execSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readRawGraph } from '../../electron/engine/attribution/raw-file.ts';
import { pruneGraph } from '../../electron/engine/pruning/index.ts';
import { circuitRunner } from '../fixtures/circuit-cli.ts';
import { fixturePath } from '../fixtures/tiny-checkpoints.ts';
import { writeWordTokenizer } from '../fixtures/word-tokenizer.ts';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-trace-'));
const modelDir = path.join(work, 'tiny-gemma2');
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));
beforeAll(() => {
  fs.cpSync(fixturePath('tiny-gemma2'), modelDir, { recursive: true });
  writeWordTokenizer(modelDir, 64);
});

const circuit = circuitRunner(path.join(work, 'cache'));

const PROMPT = 'w5 w9 w17 w33 w8 w40';
/** --model, --transcoders (the fixture's `plt` or `clt` set) and --prompt for the fixture. */
const traceArgs = (transcoders: 'plt' | 'clt') => [
  '--model',
  modelDir,
  '--transcoders',
  path.join(modelDir, `transcoders/${transcoders}`),
  '--prompt',
  PROMPT,
];

describe('circuit trace', () => {
  it('writes graph JSON and the raw adjacency, and prints a summary', () => {
    const out = path.join(work, 'graph.json');
    const raw = path.join(work, 'raw.safetensors');
    const r = circuit(
      'trace',
      ...traceArgs('clt'),
      '--out',
      out,
      '--raw',
      raw,
      '--node-threshold',
      '0.9',
      '--json',
    );
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout);
    expect(summary.tokens).toBe(7);
    // no --max-feature-nodes: the default cap, named in the summary (here above the active count: all)
    expect(summary).toMatchObject({ max_feature_nodes: 7500, max_feature_nodes_default: true });
    expect(summary.features_with_rows).toBe(summary.active_features);
    expect(summary.pruned.nodes).toBeGreaterThan(7);
    expect(summary.replacement_score).toBeGreaterThan(0);
    expect(summary.replacement_score).toBeLessThanOrEqual(1);
    for (const phase of ['forward', 'logits', 'features', 'prune'])
      expect(summary.timings_ms[phase]).toBeGreaterThanOrEqual(0);
    // How the backward ran: a logit run and at least one feature run, none past the batch or the prompt.
    expect(summary.backward).toMatchObject({ provider: 'cpu', device_weight_bytes: 0 });
    expect(summary.backward.runs).toBeGreaterThanOrEqual(2);
    expect(summary.backward.max_rows).toBeGreaterThan(0);
    expect(summary.backward.max_rows).toBeLessThanOrEqual(256);
    expect(summary.backward.max_positions).toBe(7);
    expect(summary.backward.constant_bytes).toBeGreaterThan(0);
    // On the CPU runs are bounded by the micro-batch size only; no device memory to report.
    expect(summary.backward.row_limit).toBeGreaterThanOrEqual(summary.backward.max_rows);
    expect(summary.backward.device_memory).toBeNull();

    const graph = JSON.parse(fs.readFileSync(out, 'utf8'));
    expect(graph.metadata.prompt_tokens).toEqual(['<bos>', 'w5', 'w9', 'w17', 'w33', 'w8', 'w40']);
    expect(graph.metadata.node_threshold).toBe(0.9);
    const ids = new Set(graph.nodes.map((n: { node_id: string }) => n.node_id));
    expect(ids.size).toBe(graph.nodes.length);
    for (let p = 0; p < 7; p++)
      expect(
        [...ids].some((id) => /^E_\d+_\d+$/.test(id as string) && (id as string).endsWith(`_${p}`)),
      ).toBe(true);
    expect(graph.nodes.filter((n: { feature_type: string }) => n.feature_type === 'logit').length).toBe(
      summary.logits.length,
    );
    for (const link of graph.links) {
      expect(ids.has(link.source)).toBe(true);
      expect(ids.has(link.target)).toBe(true);
      expect(Number.isFinite(link.weight)).toBe(true);
    }
    expect(graph.links.length).toBe(summary.pruned.edges);

    // The raw file re-prunes to exactly what the trace wrote.
    const { graph: rawGraph, info } = readRawGraph(raw);
    expect(info.prompt).toBe(PROMPT);
    const again = pruneGraph(rawGraph, { nodeThreshold: 0.9, edgeThreshold: 0.98 });
    expect(again.keptNodes.length).toBe(summary.pruned.nodes);
    expect(again.edges.weight.length).toBe(summary.pruned.edges);
  });

  it('names the feature cap in the text summary: the default, or the one given', () => {
    const args = traceArgs('plt');
    const r = circuit('trace', ...args, '--out', path.join(work, 'cap.json'));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(
      /^features +\d+ active, \d+ in the graph \(--max-feature-nodes 7500 \(the default\)\)$/m,
    );
    const r2 = circuit(
      'trace',
      ...args,
      '--out',
      path.join(work, 'cap.json'),
      '--max-feature-nodes',
      '3',
      '--json',
    );
    expect(r2.code, r2.stderr).toBe(0);
    expect(JSON.parse(r2.stdout)).toMatchObject({
      max_feature_nodes: 3,
      max_feature_nodes_default: false,
      features_with_rows: 3,
    });
  });

  it('refuses a trace that does not fit in memory before the backward pass, with exit 2', () => {
    const limited = circuitRunner(path.join(work, 'cache'), { CIRCUIT_MEMORY_LIMIT_BYTES: '200000' });
    const out = path.join(work, 'big.json');
    const r = limited('trace', ...traceArgs('clt'), '--out', out);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /error \[resources\]: this trace needs about [\d.]+ [KMG]iB more memory \(feature rows [\d.]+ [KMG]iB, adjacency [\d.]+ [KMG]iB, .*\).*, but about [\d.]+ [KMG]iB is available; lower --max-feature-nodes \(now 7500: all \d+ active features\)/,
    );
    // refused after the forward pass and before any backward batch (the logit rows are one)
    expect(r.stderr).toMatch(/^forward/m);
    expect(r.stderr).not.toMatch(/^logits|^features/m);
    expect(fs.existsSync(out)).toBe(false);
    // before the forward pass when even a graph without features cannot fit
    const tiny = circuitRunner(path.join(work, 'cache'), { CIRCUIT_MEMORY_LIMIT_BYTES: '1000' });
    const r2 = tiny('trace', ...traceArgs('clt'), '--out', out);
    expect(r2.code).toBe(2);
    expect(r2.stderr).toMatch(
      /error \[resources\]: .*forward cache.*shorten the prompt.*--max-feature-nodes/,
    );
    expect(r2.stderr).not.toMatch(/^forward/m);
  });

  it.each([
    [['--prompt', '   '], /--prompt is empty/],
    [['--desired-logit-prob', '0'], /desired-logit-prob must be in \(0, 1\]/],
    [['--desired-logit-prob', '1.5'], /desired-logit-prob must be in \(0, 1\]/],
    [['--max-n-logits', '0'], /--max-n-logits must be a positive integer/],
    [['--batch-size=-4'], /--batch-size must be a positive integer/],
    [['--max-feature-nodes', '0'], /--max-feature-nodes must be a positive integer/],
    [['--node-threshold', '2'], /--node-threshold must be in \[0, 1\]/],
  ])('rejects %j before any heavy work', (extra, pattern) => {
    const args = traceArgs('plt');
    const i = args.indexOf(extra[0]);
    if (i >= 0) args.splice(i, 2);
    const r = circuit('trace', ...args, ...extra, '--out', path.join(work, 'x.json'));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(pattern);
    expect(fs.existsSync(path.join(work, 'x.json'))).toBe(false);
  });

  it('rejects transcoders of another model and an over-long prompt, naming the problem', () => {
    const other = path.join(fixturePath('tiny-llama'), 'transcoders/plt-skip');
    const r = circuit(
      'trace',
      '--model',
      modelDir,
      '--transcoders',
      other,
      '--prompt',
      PROMPT,
      '--out',
      path.join(work, 'y.json'),
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/error \[mismatch\]: the transcoders do not belong to this model/);
    const long = Array.from({ length: 1100 }, (_, i) => `w${4 + (i % 60)}`).join(' ');
    const r2 = circuit(
      'trace',
      '--model',
      modelDir,
      '--transcoders',
      path.join(modelDir, 'transcoders/plt'),
      '--prompt',
      long,
      '--out',
      path.join(work, 'y.json'),
    );
    expect(r2.code).toBe(2);
    expect(r2.stderr).toMatch(/beyond the model's context of 1024/);
  });

  it('refuses a prompt for a model folder without tokenizer.json, naming the file', () => {
    const bare = fixturePath('tiny-gemma2');
    const out = path.join(work, 'no-tokenizer.json');
    const r = circuit(
      'trace',
      '--model',
      bare,
      '--transcoders',
      path.join(bare, 'transcoders/plt'),
      '--prompt',
      PROMPT,
      '--out',
      out,
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error \[tokenizer\]: the model has no tokenizer\.json/m);
    expect(r.stderr).toContain(path.join(bare, 'tokenizer.json'));
    expect(fs.existsSync(out)).toBe(false);
  });
});

describe('circuit trace --out / --raw: only a new path or a regular file is written', () => {
  const dir = path.join(work, 'outputs');
  const refusalArgs = ['--model', path.join(work, 'no-such-model'), '--transcoders', 'x', '--prompt', PROMPT];
  const leftovers = () => fs.readdirSync(dir).filter((n) => n.endsWith('.tmp'));
  beforeAll(() => {
    fs.mkdirSync(dir, { recursive: true });
    execSync(`mkfifo ${JSON.stringify(path.join(dir, 'fifo'))}`);
    fs.mkdirSync(path.join(dir, 'folder'));
    fs.symlinkSync(path.join(dir, 'nowhere'), path.join(dir, 'dangling'));
    fs.symlinkSync('/dev/null', path.join(dir, 'to-null'));
  });

  it.each([
    ['fifo', 'out', /--out .*fifo is a FIFO; give a regular file or a new path/],
    ['folder', 'out', /--out .*folder is a directory; give a regular file or a new path/],
    ['dangling', 'out', /--out .*dangling is a symlink to nothing/],
    ['to-null', 'out', /--out .*to-null is a symlink to a character device \(\/dev\/null\)/],
    ['fifo', 'raw', /--raw .*fifo is a FIFO/],
  ])('refuses %s as --%s before computing anything (exit 2), leaving it as it was', (name, flag, pattern) => {
    const p = path.join(dir, name);
    const before = fs.lstatSync(p);
    const extra = flag === 'raw' ? ['--out', path.join(dir, 'new.json'), '--raw', p] : ['--out', p];
    // The model folder does not exist: the path is refused before the model is even opened.
    const r = circuit('trace', ...refusalArgs, ...extra);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error \[argument\]: /);
    expect(r.stderr).toMatch(pattern);
    const after = fs.lstatSync(p);
    expect([after.mode, after.ino]).toEqual([before.mode, before.ino]);
    expect(leftovers()).toEqual([]);
    expect(fs.existsSync(path.join(dir, 'new.json'))).toBe(false);
  });

  it('refuses /dev/null itself (a character device) and never writes to it', () => {
    const before = fs.statSync('/dev/null');
    const r = circuit('trace', ...refusalArgs, '--out', '/dev/null');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--out \/dev\/null is a character device/);
    expect(fs.statSync('/dev/null').isCharacterDevice()).toBe(true);
    expect(fs.statSync('/dev/null').ino).toBe(before.ino);
  });

  it('writes through a symlink to a regular file: the link stays, its target gets the graph', () => {
    const target = path.join(dir, 'target.json');
    const link = path.join(dir, 'link.json');
    fs.writeFileSync(target, 'old');
    fs.symlinkSync(target, link);
    const r = circuit('trace', ...traceArgs('plt'), '--out', link);
    expect(r.code).toBe(0);
    expect(fs.lstatSync(link).isSymbolicLink()).toBe(true);
    expect(fs.readlinkSync(link)).toBe(target);
    expect(JSON.parse(fs.readFileSync(target, 'utf8')).metadata.prompt).toBe(PROMPT);
    expect(leftovers()).toEqual([]);
  });
});
