/**
 * Where a backward run's rows come from in its joined output, for the `rows` form
 * (BackwardOutputs): the graph turns the joined [t, B, W] output into finished rows over the
 * source space's columns itself, so a GPU run downloads rows and the host scatters nothing.
 *
 * A row of the joined output, flattened to [t·W] (position-major: per position the blocks of the
 * layers below the batch's top in order, then the token column), holds each source column's
 * entries: a per-layer transcoder's feature or an error term at one place, a cross-layer
 * transcoder's feature at one place per layer it writes to (their sum is its entry), a token at
 * its position's last place. Columns at positions ≥ t or at layers ≥ the top have no place
 * (their entries are zero): they point at t·W, the zero the graph appends to each row.
 */
import { EngineError } from '../errors.ts';
import type { SourceSpace } from './sources.ts';

export interface RowGather {
  /** Places per column (the most any column has, at least 1); columns with fewer repeat the zero. */
  places: number;
  /** [places, C] int32: indices into a joined row with its appended zero. */
  indices: Int32Array;
}

/** The joined output's width W for a run returning the first `layers` layers' blocks. */
export function joinedWidth(space: SourceSpace, layers: number): number {
  let width = 1; // the token column
  for (let l = 0; l < layers; l++) width += space.blocks[l].n;
  return width;
}

/** The most places any column has (at least 1) among the first `layers` layers' blocks at positions < t. */
export function gatherPlaces(space: SourceSpace, t: number, layers: number): number {
  const count = new Int32Array(space.nColumns);
  let places = 1;
  for (let l = 0; l < layers; l++) {
    const { n, columns } = space.blocks[l];
    for (let i = 0; i < t * n; i++) {
      const col = columns[i];
      if (col >= 0 && ++count[col] > places) places = count[col];
    }
  }
  return places;
}

/** The gather indices for a run stopping at position t (exclusive) with `layers` layers' blocks. */
export function rowGatherIndices(space: SourceSpace, t: number, layers: number): RowGather {
  const C = space.nColumns;
  const width = joinedWidth(space, layers);
  const zero = t * width;
  if (zero >= 2 ** 31)
    throw new EngineError(
      'resources',
      `backward output too wide for int32 gather indices: ${t} positions × ${width} columns (BackwardOutputs 'rows'); use CIRCUIT_BACKWARD_OUTPUTS=joined`,
    );
  const places = gatherPlaces(space, t, layers);
  const indices = new Int32Array(places * C).fill(zero);
  const count = new Int32Array(C);
  // Layers in increasing order, as the host scatter adds them: the same sum, in the same order.
  let offset = 0;
  for (let l = 0; l < layers; l++) {
    const { n, columns } = space.blocks[l];
    for (let p = 0; p < t; p++) {
      for (let j = 0; j < n; j++) {
        const col = columns[p * n + j];
        if (col < 0) continue;
        indices[count[col]++ * C + col] = p * width + offset + j;
      }
    }
    offset += n;
  }
  for (let p = 0; p < t; p++) indices[space.tokenOffset + p] = p * width + width - 1;
  return { places, indices };
}
