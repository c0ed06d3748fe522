/**
 * Saving a graph traced outside the service (`circuit trace --save`) into the library: the
 * model is registered (or found) by its folders, the trace stored whole with its pruned view.
 */
import type { RawAttributionGraph } from '../engine/attribution/graph-types.ts';
import type { OpenedModel } from '../engine/model/open-model.ts';
import type { PrunedGraph } from '../engine/pruning/prune.ts';
import type { TranscoderSet } from '../engine/transcoders/types.ts';
import type { Store } from '../store/store.ts';
import type { TraceRecord, TraceSettings } from '../store/types.ts';
import { modelInputFromOpened } from './model-check.ts';

export interface TracedGraphToSave {
  model: OpenedModel;
  set: TranscoderSet;
  prompt: string;
  tokenIds: number[];
  settings: TraceSettings;
  raw: RawAttributionGraph;
  pruned: PrunedGraph;
  timingsMs: Record<string, number>;
  /** Project name (created if missing); default project when absent. */
  project?: string;
  tags?: string[];
  startedAt?: number;
}

export function saveTracedGraph(store: Store, t: TracedGraphToSave): TraceRecord {
  const model = store.models.upsert(
    modelInputFromOpened(t.model, t.set, { checkpointDir: t.model.dir, transcoderDir: t.set.dir }),
  );
  const project = t.project ? store.projects.ensure(t.project) : store.projects.ensureDefault();
  return store.saveTrace({
    trace: {
      projectId: project.id,
      modelId: model.id,
      transcoderSetId: model.transcoderSetId,
      source: 'trace',
      prompt: t.prompt,
      tokenIds: t.tokenIds,
      settings: t.settings,
      tags: t.tags ? [...new Set(t.tags)] : undefined,
      startedAt: t.startedAt ?? null,
    },
    raw: t.raw,
    views: [{ pruned: t.pruned }],
    timings: t.timingsMs,
  });
}
