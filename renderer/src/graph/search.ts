/**
 * Node search over a view: by id ("3_1207_4"), layer/feature ("L3/1207", "3/1207", "L3 #1207" —
 * every position of that feature), layer alone ("L3"), or text in labels, tokens and the
 * researcher's node notes.
 */
import type { GraphView, ViewNode } from '../api/types.ts';
import { nodeLabel } from './style.ts';

export interface SearchHit {
  node: ViewNode;
  score: number;
}

export function searchNodes(
  view: GraphView,
  query: string,
  limit = 30,
  notes: Readonly<Record<string, string>> = {},
): SearchHit[] {
  const q = query.trim().toLowerCase();
  if (!q) return [];
  const feat = /^l?(\d+)\s*[/#:\s]\s*#?(\d+)$/.exec(q);
  const layerOnly = /^l(\d+)$/.exec(q);
  const hits: SearchHit[] = [];
  for (const n of view.nodes) {
    let score = 0;
    const label = nodeLabel(n).toLowerCase();
    if (n.id.toLowerCase() === q) score = 100;
    else if (feat && n.kind === 'feature' && n.layer === Number(feat[1]) && n.index === Number(feat[2]))
      score = 90;
    else if (layerOnly && (n.kind === 'feature' || n.kind === 'error') && n.layer === Number(layerOnly[1]))
      score = 40;
    else if (label === q || (n.token ?? '').trim().toLowerCase() === q) score = 80;
    else if (label.startsWith(q)) score = 60;
    else if (label.includes(q) || (n.token ?? '').toLowerCase().includes(q)) score = 50;
    else if ((notes[n.id] ?? '').toLowerCase().includes(q)) score = 45;
    else if (n.id.toLowerCase().startsWith(q)) score = 30;
    if (score > 0) hits.push({ node: n, score: score + (1 - (n.influence ?? 0)) + (n.probability ?? 0) });
  }
  hits.sort((a, b) => b.score - a.score);
  return hits.slice(0, limit);
}
