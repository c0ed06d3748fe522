/** `circuit diff` on graph JSON files traced from the demo model by `circuit trace`. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { circuitRunner, REPO_ROOT } from '../fixtures/circuit-cli.ts';

const DEMO = path.join(REPO_ROOT, 'resources/models/gemma2-demo');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-diff-cli-'));
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));
const circuit = circuitRunner(path.join(work, 'cache'));
const file = (name: string) => path.join(work, name);

function trace(prompt: string, out: string, transcoders = 'clt'): void {
  const r = circuit(
    'trace',
    '--model',
    DEMO,
    '--transcoders',
    path.join(DEMO, 'transcoders', transcoders),
    '--prompt',
    prompt,
    '--out',
    out,
  );
  expect(r.code, r.stderr).toBe(0);
}

describe.skipIf(!fs.existsSync(path.join(DEMO, 'model.safetensors')))('circuit diff', () => {
  beforeAll(() => {
    trace('The capital of state containing Dallas is', file('dallas.json'));
    trace('The capital of state containing Oakland is', file('oakland.json'));
    trace('The capital of state containing Dallas is', file('dallas-plt.json'), 'plt');
  }, 120_000);

  it('--json: nodes only in A / only in B / changed and edges, as documented', () => {
    const r = circuit('diff', file('dallas.json'), file('oakland.json'), '--json');
    expect(r.code, r.stderr).toBe(0);
    const d = JSON.parse(r.stdout);
    expect(Object.keys(d.nodes)).toEqual(expect.arrayContaining(['only_a', 'only_b', 'changed']));
    expect(typeof d.edges.only_a).toBe('number');
    expect(typeof d.edges.only_b).toBe('number');
    expect(d.edges.only_a + d.edges.only_b).toBeGreaterThan(0);
    expect(
      d.nodes.only_a.some(
        (n: { kind: string; label: string }) => n.kind === 'logit' && n.label === ' Austin',
      ),
    ).toBe(true);
    expect(
      d.nodes.only_b.some(
        (n: { kind: string; label: string }) => n.kind === 'logit' && n.label === ' Sacramento',
      ),
    ).toBe(true);
    const c = d.nodes.changed[0];
    for (const k of ['id_a', 'id_b', 'activation_a', 'activation_b', 'influence_a', 'influence_b', 'change'])
      expect(c).toHaveProperty(k);
    const e = d.edges.changed[0];
    for (const k of ['source_a', 'target_a', 'weight_a', 'weight_b']) expect(e).toHaveProperty(k);
    // Without --top, --json lists everything.
    expect(d.nodes.changed).toHaveLength(d.nodes.totals.changed);
    expect(d.edges.changed).toHaveLength(d.edges.totals.changed);

    const top = JSON.parse(
      circuit('diff', file('dallas.json'), file('oakland.json'), '--json', '--top', '3').stdout,
    );
    expect(top.nodes.changed).toEqual(d.nodes.changed.slice(0, 3));
    expect(top.edges.changed).toEqual(d.edges.changed.slice(0, 3));
    expect(top.nodes.only_a.length).toBeLessThanOrEqual(3);
  });

  it('text: a readable summary with the substitution and the largest changes', () => {
    const r = circuit('diff', file('dallas.json'), file('oakland.json'), '--top', '4');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('substituted 6: " Dallas" → " Oakland"');
    expect(r.stdout).toMatch(/nodes: \d+ only in A, \d+ only in B, \d+ changed/);
    expect(r.stdout).toMatch(/changed nodes \(4 of \d+, largest change first\)/);
    expect(r.stdout).toMatch(/changed edges \(4 of \d+/);
    expect(r.stdout).toContain('" Sacramento"');
  });

  it('a graph diffed with itself is empty', () => {
    const j = circuit('diff', file('dallas.json'), file('dallas.json'), '--json');
    expect(j.code, j.stderr).toBe(0);
    const d = JSON.parse(j.stdout);
    expect(d.nodes).toMatchObject({ only_a: [], only_b: [], changed: [] });
    expect(d.edges).toMatchObject({ only_a: 0, only_b: 0, changed: [] });
    const t = circuit('diff', file('dallas.json'), file('dallas.json'));
    expect(t.stdout).toContain('no differences');
  });

  it('bad files and mismatched graphs: exit 2 naming the file or the field', () => {
    fs.writeFileSync(file('broken.json'), '{"metadata": {}');
    let r = circuit('diff', file('dallas.json'), file('broken.json'));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('broken.json');
    r = circuit('diff', file('missing.json'), file('dallas.json'));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/error \[io\]: cannot read graph A .*missing\.json/);
    r = circuit('diff', file('dallas.json'), file('dallas-plt.json'));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/error \[mismatch\].*metadata\.transcoder_list/);
    r = circuit('diff', file('dallas.json'));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('two graph JSON files');
    r = circuit('diff', file('dallas.json'), file('oakland.json'), '--top', '0');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--top');
  });
});
