/** Test helpers for the pure graph code (imported by *.test.ts only, never by the app). */
import type { ViewNode } from '../api/types.ts';

/** A view node with neutral defaults for every field the test does not set. */
export const viewNode = (over: Partial<ViewNode> & Pick<ViewNode, 'id' | 'kind'>): ViewNode => ({
  layer: 0,
  position: 0,
  index: -1,
  activation: null,
  influence: null,
  probability: null,
  token: null,
  label: '',
  ...over,
});
