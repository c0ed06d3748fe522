import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { RawAttributionGraph } from '../../electron/engine/attribution/graph-types.ts';
import { pruneGraph } from '../../electron/engine/pruning/index.ts';
import type { Store } from '../../electron/store/store.ts';
import type { TraceRecord, TraceSettings } from '../../electron/store/types.ts';

export const SETTINGS: TraceSettings = {
  maxNLogits: 10,
  desiredLogitProb: 0.95,
  maxFeatureNodes: null,
  batchSize: 64,
  nodeThreshold: 0.8,
  edgeThreshold: 0.98,
  provider: 'cpu',
};

/** A fresh temporary folder, removed by the returned cleanup. */
export function tempDir(prefix: string): { dir: string; cleanup: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** Saves a synthetic graph as a finished trace of a fresh project row. */
export function saveSynthetic(
  store: Store,
  raw: RawAttributionGraph,
  o: { prompt?: string; tags?: string[]; projectId?: number; transcoderSetId?: number | null } = {},
): TraceRecord {
  return store.saveTrace({
    trace: {
      projectId: o.projectId ?? store.projects.ensureDefault().id,
      modelId: null,
      transcoderSetId: o.transcoderSetId ?? null,
      source: 'trace',
      prompt: o.prompt ?? 'The capital of Texas is',
      tokenIds: Array.from(raw.nodes.promptTokenIds),
      settings: SETTINGS,
      tags: o.tags,
    },
    raw,
    views: [{ pruned: pruneGraph(raw, { nodeThreshold: 0.8, edgeThreshold: 0.98 }) }],
    timings: { forward: 1, features: 2 },
  });
}
