/**
 * `circuit diff A.json B.json`: what differs between two attribution graphs (graph JSON) of
 * one model and transcoder set — nodes and edges only in A, only in B, and changed.
 */
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { EngineError } from '../../engine/errors.ts';
import {
  diffGraphFromDocument,
  diffGraphs,
  type GraphDiff,
  type NodeSide,
} from '../../engine/graph-diff/index.ts';
import { importGraphJson } from '../../engine/graph-json/import.ts';
import { positiveIntFlag } from '../args.ts';

const HELP = `usage: circuit diff A.json B.json [--json] [--top N]

Compares two graph JSON files of the same model and transcoder set (metadata.scan and
metadata.transcoder_list must agree). Features match by (layer, feature index) at the same
prompt position; error nodes by (layer, position); tokens by position (prompts of one length
that differ in some tokens are substitutions; prompts of other lengths are aligned along their
longest common token subsequence); logits by output token.

--json prints {"nodes": {"only_a": [...], "only_b": [...], "changed": [...]},
               "edges": {"only_a": n, "only_b": n, "changed": [...]}, ...}
--top N  longest lists shown (default: all with --json, 10 in the text form).

Exit 2 on a file that cannot be read or is not valid graph JSON (naming it), or on graphs of
different models or transcoder sets (naming the metadata field).`;

function readGraph(file: string, which: 'A' | 'B') {
  let bytes: Buffer;
  try {
    const st = fs.statSync(file);
    if (!st.isFile()) throw new Error('not a regular file');
    bytes = fs.readFileSync(file);
  } catch (e) {
    throw new EngineError('io', `cannot read graph ${which} ${file}: ${(e as Error).message}`, { file });
  }
  return diffGraphFromDocument(importGraphJson(bytes, { file }), file);
}

const num = (v: number | null) =>
  v === null ? '-' : Math.abs(v) >= 1e-3 || v === 0 ? v.toFixed(3) : v.toExponential(2);
const arrow = (a: number | null, b: number | null) =>
  a === null && b === null ? '-' : `${num(a)} → ${num(b)}`;
const signed = (v: number) => (v > 0 ? `+${num(v)}` : num(v));
const clip = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows
    .map((r) =>
      r
        .map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c])))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

function onlyTable(title: string, list: NodeSide[], total: number): string {
  if (total === 0) return `${title}: none`;
  const rows = [['ID', 'KIND', 'LAYER', 'POS', 'LABEL', 'ACTIVATION', 'INFLUENCE', 'P']];
  for (const n of list)
    rows.push([
      n.id,
      n.kind,
      n.kind === 'token' ? 'E' : String(n.layer),
      String(n.position),
      clip(JSON.stringify(n.label), 24),
      num(n.activation),
      num(n.influence),
      num(n.token_prob),
    ]);
  return `${title} (${list.length} of ${total}):\n${table(rows)}`;
}

export function formatDiff(d: GraphDiff, nameA: string, nameB: string): string {
  const out: string[] = [];
  const a = d.prompt_tokens.a;
  const b = d.prompt_tokens.b;
  out.push(`A  ${nameA}  (${a.length} tokens)`);
  out.push(`B  ${nameB}  (${b.length} tokens)`);
  if (d.alignment.method === 'identical') out.push('prompts: identical');
  else {
    const subs = d.alignment.substitutions.map(
      (s) => `${s.position_a}: ${JSON.stringify(s.token_a)} → ${JSON.stringify(s.token_b)}`,
    );
    const unmatched = d.alignment.columns.filter((c) => c.a === null || c.b === null).length;
    out.push(
      `prompts: ${d.alignment.method === 'lcs' ? 'aligned by common tokens' : 'same length'}` +
        (subs.length ? `; substituted ${subs.join(', ')}` : '') +
        (unmatched ? `; ${unmatched} positions in one prompt only` : ''),
    );
  }
  const t = d.nodes.totals;
  out.push(
    `nodes: ${t.only_a} only in A, ${t.only_b} only in B, ${t.changed} changed, ${t.unchanged} unchanged`,
  );
  out.push(
    `edges: ${d.edges.only_a} only in A, ${d.edges.only_b} only in B, ${d.edges.totals.changed} changed, ${d.edges.totals.unchanged} unchanged`,
  );
  if (t.only_a + t.only_b + t.changed + d.edges.only_a + d.edges.only_b + d.edges.totals.changed === 0) {
    out.push('no differences');
    return out.join('\n');
  }
  out.push('', onlyTable('only in A', d.nodes.only_a, t.only_a));
  out.push('', onlyTable('only in B', d.nodes.only_b, t.only_b));
  if (t.changed > 0) {
    const rows = [['A', 'B', 'KIND', 'LABEL', 'ACTIVATION', 'INFLUENCE', 'P', 'CHANGE']];
    for (const c of d.nodes.changed)
      rows.push([
        c.id_a,
        c.id_b === c.id_a ? '=' : c.id_b,
        c.kind,
        clip(
          c.label_a === c.label_b
            ? JSON.stringify(c.label_a)
            : `${JSON.stringify(c.label_a)}→${JSON.stringify(c.label_b)}`,
          28,
        ),
        arrow(c.activation_a, c.activation_b),
        arrow(c.influence_a, c.influence_b),
        arrow(c.token_prob_a, c.token_prob_b),
        signed(c.change),
      ]);
    out.push(
      '',
      `changed nodes (${d.nodes.changed.length} of ${t.changed}, largest change first):\n${table(rows)}`,
    );
  }
  if (d.edges.totals.changed > 0) {
    const rows = [['SOURCE', 'TARGET', 'WEIGHT A', 'WEIGHT B', 'DELTA']];
    for (const e of d.edges.changed)
      rows.push([
        e.source_a === e.source_b ? e.source_a : `${e.source_a}|${e.source_b}`,
        e.target_a === e.target_b ? e.target_a : `${e.target_a}|${e.target_b}`,
        num(e.weight_a),
        num(e.weight_b),
        signed(e.delta),
      ]);
    out.push(
      '',
      `changed edges (${d.edges.changed.length} of ${d.edges.totals.changed}, largest |Δweight| first):\n${table(rows)}`,
    );
  }
  return out.join('\n');
}

export async function diffCommand(argv: string[]): Promise<number> {
  let parsed: ReturnType<
    typeof parseArgs<{
      options: { json: { type: 'boolean' }; top: { type: 'string' }; help: { type: 'boolean'; short: 'h' } };
      allowPositionals: true;
    }>
  >;
  try {
    parsed = parseArgs({
      args: argv,
      options: { json: { type: 'boolean' }, top: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
  } catch (e) {
    throw new EngineError('argument', (e as Error).message);
  }
  const { values: flags, positionals } = parsed;
  if (flags.help) {
    console.log(HELP);
    return 0;
  }
  if (positionals.length !== 2) {
    throw new EngineError(
      'argument',
      `diff needs two graph JSON files (A.json B.json), got ${positionals.length}`,
      { field: 'files' },
    );
  }
  const top = flags.top === undefined ? (flags.json ? undefined : 10) : positiveIntFlag(flags.top, 'top', 10);
  const [fileA, fileB] = positionals;
  const a = readGraph(fileA, 'A');
  const b = readGraph(fileB, 'B');
  const d = diffGraphs(a, b, { top });
  console.log(flags.json ? JSON.stringify(d) : formatDiff(d, fileA, fileB));
  return 0;
}
