/** `circuit library`: what the library holds (list, show), for scripts (--json) and people. */
import { EngineError } from '../../engine/errors.ts';
import { resolveDataDir } from '../../store/data-dir.ts';
import { Store } from '../../store/store.ts';
import type { TraceRecord, TraceStatus } from '../../store/types.ts';
import { TRACE_STATUSES } from '../../store/types.ts';
import { parseFlags, positiveIntFlag } from '../args.ts';

const HELP = `usage: circuit library list [--json] [--data DIR] [--project NAME] [--tag TAG]... [--query TEXT]
                            [--status queued|running|done|failed|cancelled] [--limit 50]
       circuit library show ID [--json] [--data DIR] [--verify]

The library is in --data DIR (default $CIRCUIT_DATA_DIR, else ~/.local/share/circuit-workbench).
--verify checks the graph file of the trace against its recorded size and hash.`;

function openReadonly(dataFlag: string | undefined): Store {
  try {
    return Store.open(resolveDataDir(dataFlag), { readonly: true });
  } catch (e) {
    const err = e as { code?: string; message: string };
    throw new EngineError(err.code === 'not_found' ? 'missing' : 'io', err.message, { field: 'data' });
  }
}

const time = (ms: number | null) =>
  ms === null ? '-' : new Date(ms).toISOString().replace('T', ' ').slice(0, 16);
const clip = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows
    .map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]))).join('  '))
    .join('\n');
}

export async function libraryCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (!sub || sub === '--help' || sub === '-h') {
    console.log(HELP);
    return sub ? 0 : 1;
  }
  if (sub === 'list') return list(rest);
  if (sub === 'show') return show(rest);
  throw new EngineError('argument', `unknown library command "${sub}" (list, show)`, { field: 'command' });
}

function list(argv: string[]): number {
  const flags = parseFlags(argv, {
    json: { type: 'boolean' },
    data: { type: 'string' },
    project: { type: 'string' },
    tag: { type: 'string', multiple: true },
    query: { type: 'string' },
    status: { type: 'string' },
    limit: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (flags.help) {
    console.log(HELP);
    return 0;
  }
  if (flags.status !== undefined && !TRACE_STATUSES.includes(flags.status as TraceStatus)) {
    throw new EngineError('argument', `--status must be one of ${TRACE_STATUSES.join(', ')}`, {
      field: 'status',
    });
  }
  const store = openReadonly(flags.data);
  try {
    let projectId: number | undefined;
    if (flags.project !== undefined) {
      const p = store.projects.findByName(flags.project);
      if (!p) throw new EngineError('argument', `no project named "${flags.project}"`, { field: 'project' });
      projectId = p.id;
    }
    const { traces, total } = store.traces.list({
      projectId,
      tags: flags.tag,
      query: flags.query,
      status: flags.status as TraceStatus | undefined,
      limit: positiveIntFlag(flags.limit, 'limit', 50),
    });
    if (flags.json) {
      console.log(JSON.stringify({ total, traces }));
      return 0;
    }
    if (traces.length === 0) {
      console.log(`no traces in ${store.dataDir}`);
      return 0;
    }
    const models = new Map(store.models.list().map((m) => [m.id, m.name]));
    const rows = [['ID', 'STATUS', 'CREATED', 'MODEL', 'NODES', 'TAGS', 'PROMPT']];
    for (const t of traces) {
      rows.push([
        String(t.id),
        t.status,
        time(t.createdAt),
        clip(
          t.modelId === null ? (t.source === 'import' ? '(imported)' : '-') : (models.get(t.modelId) ?? '-'),
          24,
        ),
        t.graph ? String(t.graph.nNodes) : '-',
        clip(t.tags.join(','), 24),
        clip(JSON.stringify(t.prompt), 60),
      ]);
    }
    console.log(table(rows));
    if (total > traces.length) console.log(`(${traces.length} of ${total}; --limit for more)`);
    return 0;
  } finally {
    store.close();
  }
}

function show(argv: string[]): number {
  const [idText, ...rest] = argv;
  const id = Number(idText);
  if (!Number.isSafeInteger(id) || id <= 0) {
    throw new EngineError('argument', `library show needs a trace id, got "${idText ?? ''}"`, {
      field: 'id',
    });
  }
  const flags = parseFlags(rest, {
    json: { type: 'boolean' },
    data: { type: 'string' },
    verify: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  const store = openReadonly(flags.data);
  try {
    const t = store.traces.find(id);
    if (!t) throw new EngineError('argument', `no trace ${id} in ${store.dataDir}`, { field: 'id' });
    const views = t.graph ? store.graphs.listViews(id) : [];
    const model = t.modelId === null ? null : store.models.find(t.modelId);
    const project = store.projects.find(t.projectId);
    const annotations = store.annotations.get(id);
    const problems = flags.verify && t.graph ? store.graphs.verify(id) : null;
    const detail = {
      ...t,
      project: project?.name ?? null,
      model: model
        ? {
            id: model.id,
            name: model.name,
            checkpointDir: model.checkpointDir,
            transcoderDir: model.transcoderDir,
          }
        : null,
      views,
      annotations: { pinned: annotations.pinned.length, supernodes: annotations.supernodes.length },
      verify: problems === null ? undefined : { ok: problems.length === 0, problems },
    };
    if (flags.json) {
      console.log(JSON.stringify(detail));
      return problems?.length ? 2 : 0;
    }
    printTrace(t, detail);
    return problems?.length ? 2 : 0;
  } finally {
    store.close();
  }
}

function printTrace(
  t: TraceRecord,
  d: {
    project: string | null;
    model: { name: string; checkpointDir: string; transcoderDir: string } | null;
    views: Array<{
      nodeThreshold: number;
      edgeThreshold: number;
      nNodes: number;
      nEdges: number;
      isDefault: boolean;
      pinned: string;
      replacementScore: number | null;
      completenessScore: number | null;
    }>;
    verify?: { ok: boolean; problems: string[] };
  },
): void {
  const line = (k: string, v: string) => console.log(`${k.padEnd(12)} ${v}`);
  line(
    'trace',
    `${t.id} (${t.source === 'import' ? 'imported graph JSON' : 'traced'})${t.deletedAt ? ' [in the trash]' : ''}`,
  );
  line('project', d.project ?? '-');
  line('status', t.status + (t.error ? `: [${t.error.code}] ${t.error.message}` : ''));
  if (t.progress && t.status === 'running')
    line('progress', `${t.progress.phase} ${t.progress.done}/${t.progress.total}`);
  line('prompt', JSON.stringify(t.prompt));
  if (t.tokenIds) line('token ids', t.tokenIds.join(','));
  if (d.model)
    line('model', `${d.model.name} (${d.model.checkpointDir}; transcoders ${d.model.transcoderDir})`);
  const s = t.settings;
  line(
    'settings',
    `max_n_logits ${s.maxNLogits}, desired_logit_prob ${s.desiredLogitProb}, max_feature_nodes ${s.maxFeatureNodes ?? 'all'}, batch ${s.batchSize}, node ${s.nodeThreshold}, edge ${s.edgeThreshold}, provider ${s.provider}`,
  );
  line('created', time(t.createdAt) + (t.finishedAt ? `, finished ${time(t.finishedAt)}` : ''));
  if (t.timings) {
    line(
      'timings',
      Object.entries(t.timings)
        .map(([k, v]) => `${k} ${(v / 1000).toFixed(2)}s`)
        .join(', '),
    );
  }
  if (t.graph) {
    const g = t.graph;
    line(
      'graph',
      `${g.nNodes} nodes (${g.nFeatures} features, ${g.nLogits} logits, ${g.nLayers} layers × ${g.nPositions} positions), ${g.nnz} nonzero edges, ${(g.sidecarBytes / 2 ** 20).toFixed(2)} MiB`,
    );
    for (const v of d.views) {
      const scores =
        v.replacementScore === null
          ? ''
          : `, replacement ${v.replacementScore.toFixed(3)}, completeness ${(v.completenessScore ?? 0).toFixed(3)}`;
      line(
        v.isDefault ? 'view' : '  re-pruned',
        `node ${v.nodeThreshold} / edge ${v.edgeThreshold}${v.pinned ? ' (with pins)' : ''}: ${v.nNodes} nodes, ${v.nEdges} edges${scores}`,
      );
    }
  }
  if (t.tags.length) line('tags', t.tags.join(', '));
  if (t.notes) line('notes', t.notes);
  if (d.verify) line('verify', d.verify.ok ? 'ok' : d.verify.problems.join('; '));
}
