/**
 * The unpruned graph on disk, for re-pruning at any thresholds later (`circuit trace --raw`).
 * It is a safetensors file (readable by numpy/torch/safetensors as well as by the engine):
 *
 *   adjacency          F32 [N, N]   rows = targets, columns = sources (graph-types.ts layout)
 *   feature_layer      I32 [F]      selected features, ordered by (layer, position, index)
 *   feature_position   I32 [F]
 *   feature_index      I32 [F]
 *   feature_activation F32 [F]
 *   logit_token_id     I32 [K]      ordered by probability, descending
 *   logit_probability  F32 [K]
 *   prompt_token_id    I32 [T]
 *
 * and `__metadata__` = {"format": "circuit-workbench-raw-graph", "version": "1",
 * "n_layers", "prompt_tokens" (JSON list), "logit_tokens" (JSON list), "info" (JSON object:
 * model, transcoders, prompt, settings)}.
 */
import { openSafetensors } from '../checkpoint/safetensors.ts';
import { writeSafetensors } from '../checkpoint/safetensors-writer.ts';
import { EngineError } from '../errors.ts';
import { nodeLayout, type RawAttributionGraph } from './graph-types.ts';

export const RAW_GRAPH_FORMAT = 'circuit-workbench-raw-graph';

export function writeRawGraph(
  file: string,
  graph: RawAttributionGraph,
  info: Record<string, unknown> = {},
): void {
  const n = graph.nodes;
  const N = nodeLayout(n).total;
  const F = n.features.layer.length;
  const K = n.logits.tokenId.length;
  const T = n.nPositions;
  writeSafetensors(
    file,
    [
      { name: 'adjacency', dtype: 'F32', shape: [N, N], data: graph.adjacency },
      { name: 'feature_layer', dtype: 'I32', shape: [F], data: n.features.layer },
      { name: 'feature_position', dtype: 'I32', shape: [F], data: n.features.position },
      { name: 'feature_index', dtype: 'I32', shape: [F], data: n.features.index },
      { name: 'feature_activation', dtype: 'F32', shape: [F], data: n.features.activation },
      { name: 'logit_token_id', dtype: 'I32', shape: [K], data: n.logits.tokenId },
      { name: 'logit_probability', dtype: 'F32', shape: [K], data: n.logits.probability },
      { name: 'prompt_token_id', dtype: 'I32', shape: [T], data: n.promptTokenIds },
    ],
    {
      format: RAW_GRAPH_FORMAT,
      version: '1',
      n_layers: String(n.nLayers),
      prompt_tokens: JSON.stringify(n.promptTokens),
      logit_tokens: JSON.stringify(n.logits.token),
      info: JSON.stringify(info),
    },
  );
}

export function readRawGraph(file: string): { graph: RawAttributionGraph; info: Record<string, unknown> } {
  const store = openSafetensors(file);
  try {
    const meta = store.metadata ?? {};
    if (meta.format !== RAW_GRAPH_FORMAT) {
      throw new EngineError(
        'header',
        `not a raw attribution graph (metadata format is ${JSON.stringify(meta.format)})`,
        {
          file,
          field: '__metadata__.format',
        },
      );
    }
    const ints = (name: string) => {
      const raw = store.readRaw(name);
      return new Int32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
    };
    const parseList = (field: string): string[] => {
      try {
        const v = JSON.parse(meta[field] ?? '[]');
        if (Array.isArray(v) && v.every((s) => typeof s === 'string')) return v;
      } catch {}
      throw new EngineError('header', `metadata ${field} must be a JSON list of strings`, { file, field });
    };
    const promptTokenIds = ints('prompt_token_id');
    const graph: RawAttributionGraph = {
      nodes: {
        nLayers: Number(meta.n_layers),
        nPositions: promptTokenIds.length,
        promptTokenIds,
        promptTokens: parseList('prompt_tokens'),
        features: {
          layer: ints('feature_layer'),
          position: ints('feature_position'),
          index: ints('feature_index'),
          activation: store.readFloat32('feature_activation'),
        },
        logits: {
          tokenId: ints('logit_token_id'),
          probability: store.readFloat32('logit_probability'),
          token: parseList('logit_tokens'),
        },
      },
      adjacency: store.readFloat32('adjacency'),
    };
    const N = nodeLayout(graph.nodes).total;
    if (!Number.isInteger(graph.nodes.nLayers) || graph.adjacency.length !== N * N) {
      throw new EngineError('shape', `adjacency is not [${N}, ${N}] for this node table`, {
        file,
        tensor: 'adjacency',
      });
    }
    let info: Record<string, unknown> = {};
    try {
      info = JSON.parse(meta.info ?? '{}');
    } catch {
      throw new EngineError('header', 'metadata info is not JSON', { file, field: 'info' });
    }
    return { graph, info };
  } finally {
    store.close();
  }
}
