/** DiffGraph from an imported graph JSON document (the CLI's `circuit diff A.json B.json`). */
import type { ImportedGraph } from '../graph-json/import.ts';
import type { GraphDocument } from '../graph-json/types.ts';
import type { DiffGraph, DiffGraphNode } from './types.ts';

/** A logit clerp as circuit-tracer writes it for an output token: `Output " tok" (p=0.123)`. */
const TOKEN_CLERP = /^Output "(.*)" \(p=[-+0-9.eE]+\)$/s;

/**
 * How a logit is matched: an output token by its id; a target named by something other than
 * a token clerp (e.g. "Austin vs Dallas") by that name.
 */
export function logitKeyOf(index: number, label: string): string {
  return label === '' || TOKEN_CLERP.test(label) ? `token:${index}` : `label:${label}`;
}

/**
 * The model and transcoder set a graph was made with: metadata.scan (the model's name;
 * circuit-tracer and Neuronpedia write it too) and metadata.transcoder_list (names).
 */
export function graphIdentity(doc: Pick<GraphDocument, 'metadata'>): Record<string, string> {
  return {
    'metadata.scan': JSON.stringify(doc.metadata.scan),
    'metadata.transcoder_list': JSON.stringify(doc.metadata.transcoder_list),
  };
}

export function diffGraphFromDocument(doc: GraphDocument | ImportedGraph, name: string): DiffGraph {
  const tokens = doc.metadata.prompt_tokens;
  const nodes: DiffGraphNode[] = doc.nodes.map((n) => {
    const p = n.parsed;
    const node: DiffGraphNode = {
      id: n.node_id,
      kind: p.kind,
      layer: p.layer,
      index: p.index,
      position: p.position,
      activation: n.activation,
      influence: n.influence,
      probability: p.kind === 'logit' ? n.token_prob : null,
      label: p.kind === 'token' ? (tokens[p.position] ?? n.clerp) : n.clerp,
    };
    if (p.kind === 'logit') {
      node.logitKey = logitKeyOf(p.index, n.clerp);
      node.label = TOKEN_CLERP.exec(n.clerp)?.[1] ?? n.clerp;
    }
    return node;
  });
  return {
    name,
    identity: graphIdentity(doc),
    promptTokens: [...tokens],
    nodes,
    edges: doc.links,
  };
}
