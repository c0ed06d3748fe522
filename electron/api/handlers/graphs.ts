/**
 * A trace's graph: its views (pruned on demand), graph JSON export and import, diffs of two
 * traces, and its node ids.
 */
import { DEFAULT_TRACE_SETTINGS } from '../../engine/attribution/defaults.ts';
import { isEngineError } from '../../engine/errors.ts';
import { importGraphJson } from '../../engine/graph-json/import.ts';
import { type HandlerContext, type Handlers, traceUpdated } from '../context.ts';
import { ApiError } from '../errors.ts';
import { diffTraces, traceNodeIds } from '../graph-diff-handler.ts';
import { exportGraphJsonText, importedToStorable, importFileName, slugify } from '../graph-json-io.ts';
import { traceView } from '../graph-views.ts';

export function graphsHandlers(
  ctx: HandlerContext,
): Handlers<
  | 'graphs.view'
  | 'graphs.prune'
  | 'graphs.views'
  | 'graphs.exportJson'
  | 'graphs.diff'
  | 'graphs.nodeIds'
  | 'graphs.importJson'
> {
  return {
    'graphs.view': async (p) => (await traceView(ctx, p.traceId, p)).view,
    'graphs.prune': async (p) => {
      const r = await traceView(ctx, p.traceId, p);
      return r.stored.summary;
    },
    'graphs.views': (p) => {
      ctx.store.traces.get(p.traceId);
      return ctx.store.graphs.listViews(p.traceId);
    },
    'graphs.exportJson': async (p) => {
      const { trace, view, stored, nodes } = await traceView(ctx, p.traceId, p);
      const labels = new Map<string, string>();
      for (const n of view.nodes) if (n.kind !== 'logit' && n.label) labels.set(n.id, n.label);
      const ann = ctx.store.annotations.get(trace.id);
      const model = trace.modelId === null ? null : ctx.store.models.find(trace.modelId);
      const set =
        trace.transcoderSetId === null ? null : ctx.store.models.findTranscoderSet(trace.transcoderSetId);
      const slug = `${slugify(trace.prompt)}-${trace.id}`;
      const json = exportGraphJsonText({
        nodes,
        pruned: stored.pruned,
        labels,
        pinned: ann.pinned,
        supernodes: ann.supernodes,
        notes: ann.notes,
        slug,
        scan: model?.name ?? '',
        prompt: trace.prompt,
        modelId: model?.name ?? null,
        transcoderList: set ? [set.dir] : [],
        info: JSON.parse(
          JSON.stringify({ traceId: trace.id, settings: trace.settings, tokenIds: trace.tokenIds }),
        ),
      });
      return { fileName: `${slug}.json`, json };
    },
    'graphs.diff': (p) => diffTraces(p, { store: ctx.store, view: (id, q) => traceView(ctx, id, q) }),
    'graphs.nodeIds': (p) => traceNodeIds(ctx.store, p.traceId),
    'graphs.importJson': (p) => {
      let doc: ReturnType<typeof importGraphJson>;
      try {
        doc = importGraphJson(p.json, { file: importFileName(p.fileName) });
      } catch (e) {
        if (isEngineError(e)) {
          throw new ApiError('invalid_params', `graph JSON: ${e.message}`, {
            field: e.field,
            engineCode: e.code,
          });
        }
        throw e;
      }
      const g = importedToStorable(doc);
      const projectId = p.projectId ?? ctx.store.projects.ensureDefault().id;
      ctx.store.projects.get(projectId);
      const trace = ctx.store.saveTrace({
        trace: {
          projectId,
          modelId: null,
          transcoderSetId: null,
          source: 'import',
          prompt: g.prompt,
          tokenIds: null,
          settings: {
            ...DEFAULT_TRACE_SETTINGS,
            nodeThreshold: g.view.nodeThreshold,
            edgeThreshold: g.view.edgeThreshold,
            provider: 'none',
          },
          tags: p.tags,
          notes: g.notes.length ? `Imported graph JSON. ${g.notes.join('; ')}` : 'Imported graph JSON.',
        },
        raw: { nodes: g.nodes, csr: g.csr },
        views: [{ pruned: g.view }],
        annotations: { labels: g.labels, pinned: g.pinned, supernodes: g.supernodes, notes: g.nodeNotes },
      });
      traceUpdated(ctx, trace);
      return { trace, notes: g.notes };
    },
  };
}
