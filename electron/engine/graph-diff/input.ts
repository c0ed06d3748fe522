/** DiffGraph from an imported graph JSON document (the CLI's `circuit diff A.json B.json`). */
import type { ImportedGraph } from '../graph-json/import.ts';
import type { GraphDocument } from '../graph-json/types.ts';
import type { DiffGraph, DiffGraphNode } from './types.ts';

/** A logit clerp as circuit-tracer writes it for an output token: `Output " tok" (p=0.123)`. */
const TOKEN_CLERP = /^Output "(.*)" \(p=[-+0-9.eE]+\)$/s;

/**
 * How a logit is matched: by the text it stands for, the output token's string, or the label
 * of a custom target (e.g. "Austin vs Dallas"). Not by its id: a custom target's id is a
 * virtual one (vocabulary size + its rank among the targets), which differs between traces.
 */
export function logitKeyOf(text: string): string {
  return `text:${text}`;
}

/** The text of a logit clerp: the token of `Output " tok" (p=0.123)`, else the clerp itself. */
export function logitText(clerp: string): string {
  return TOKEN_CLERP.exec(clerp)?.[1] ?? clerp;
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
      node.label = logitText(n.clerp);
      node.logitKey = node.label === '' ? `token:${p.index}` : logitKeyOf(node.label);
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
