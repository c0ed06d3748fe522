/**
 * Edges added since sigma last built its edge buffer, written after it instead of rebuilding it.
 *
 * Sigma 4 draws edges from one vertex buffer, filled in depth order by `processEdges` (O(all
 * drawn edges): ~10 ms at 5,000 edges in software GL), and draws it by ranges per depth. A big
 * scene adds and drops the hovered or selected node's links on every hover, so a full rebuild
 * per hover was most of its cost. Here the buffer's first `start` positions keep the last full
 * build; the edges added since live at positions `start…`, rewritten as a whole on each change
 * (O(tail)). Anything else (a built edge dropped, a re-style of a built neighbour, a tail grown
 * past TAIL_MAX) asks for the full rebuild, which resets the tail.
 *
 * Tail edges get no picking id (sigma's ids are contiguous per kind); canvases that use this pick
 * on the CPU and have no edge events. Relies on sigma internals, typed below.
 */

/** Above this many appended edges a full rebuild is cheaper than rewriting the tail each time. */
export const TAIL_MAX = 4096;

interface Range {
  offset: number;
  count: number;
}

/** Sigma internals (not in its public types). */
export interface SigmaEdgeBufferLike {
  edgeProgram: {
    floats: Float32Array;
    capacity: number;
    reallocate(capacity: number): void;
    invalidateBuffers(): void;
  };
  depthRanges: { edges: Record<string, Range[]> };
  internals: { edgeDataCache: Record<string, { depth: string } | undefined> };
  addEdgeToProgram(edge: string, position: number): void;
  processEdges(): void;
}

export class EdgeTail {
  /** Positions [0, start) hold the edges of the last full build. */
  private start = 0;
  /** The edges at positions start, start + 1, … */
  private keys: string[] = [];
  private readonly inTail = new Set<string>();
  private readonly pendingAdds: string[] = [];
  private readonly pendingDrops = new Set<string>();
  private needsFull = false;

  /**
   * Hooks the instance's processEdges: every full build (ours or sigma's own, after a node
   * change) resets the tail to empty.
   */
  constructor(private readonly sigma: SigmaEdgeBufferLike) {
    const build = sigma.processEdges.bind(sigma);
    sigma.processEdges = () => {
      build();
      this.reset(this.builtCount());
    };
    // Sigma may have built its buffer already (in its constructor).
    this.reset(this.builtCount());
  }

  /** Positions drawn by sigma's ranges right after a full build (one range per depth). */
  private builtCount(): number {
    let n = 0;
    for (const list of Object.values(this.sigma.depthRanges.edges)) for (const r of list) n += r.count;
    return n;
  }

  /** Edges were added to the graph and to sigma's index (not to its buffer). */
  added(keys: readonly string[]): void {
    for (const k of keys) this.pendingAdds.push(k);
    if (this.keys.length + this.pendingAdds.length > TAIL_MAX) this.needsFull = true;
  }

  /** An edge left the graph and sigma's index; only a tail edge can leave without a rebuild. */
  dropped(key: string): void {
    if (this.inTail.has(key)) this.pendingDrops.add(key);
    else this.needsFull = true;
  }

  /** Something the tail cannot express changed (e.g. a built edge's data): rebuild all. */
  invalidate(): void {
    this.needsFull = true;
  }

  pending(): boolean {
    return this.needsFull || this.pendingAdds.length > 0 || this.pendingDrops.size > 0;
  }

  /**
   * Brings sigma's edge buffer up to date: the tail rewritten, or (when needed) a full build.
   * Returns 'tail', 'full' or 'none'.
   */
  flush(): 'tail' | 'full' | 'none' {
    if (!this.pending()) return 'none';
    if (this.needsFull) {
      this.sigma.processEdges();
      return 'full';
    }
    const keys = this.keys.filter((k) => !this.pendingDrops.has(k));
    for (const k of this.pendingAdds) if (!this.pendingDrops.has(k)) keys.push(k);
    this.write(keys);
    return 'tail';
  }

  private reset(start: number): void {
    this.start = start;
    this.keys = [];
    this.inTail.clear();
    this.pendingAdds.length = 0;
    this.pendingDrops.clear();
    this.needsFull = false;
  }

  private write(keys: string[]): void {
    const s = this.sigma;
    const ranges = s.depthRanges.edges;
    // Forget every range past the built part: the tail is laid out afresh.
    for (const depth of Object.keys(ranges)) {
      const kept: Range[] = [];
      for (const r of ranges[depth]) {
        if (r.offset >= this.start) continue;
        kept.push({ offset: r.offset, count: Math.min(r.count, this.start - r.offset) });
      }
      ranges[depth] = kept;
    }
    this.grow(this.start + keys.length);
    const cache = s.internals.edgeDataCache;
    const live: string[] = [];
    for (const k of keys) {
      const data = cache[k];
      if (!data) continue; // left sigma's index by another path (a node drop): not drawn.
      const position = this.start + live.length;
      live.push(k);
      s.addEdgeToProgram(k, position);
      const list = ranges[data.depth] ?? [];
      ranges[data.depth] = list;
      const last = list[list.length - 1];
      if (last && last.offset + last.count === position) last.count++;
      else list.push({ offset: position, count: 1 });
    }
    s.edgeProgram.invalidateBuffers();
    this.keys = live;
    this.inTail.clear();
    for (const k of live) this.inTail.add(k);
    this.pendingAdds.length = 0;
    this.pendingDrops.clear();
  }

  /** Sigma's reallocate starts from an empty buffer: the built part is copied over. */
  private grow(items: number): void {
    const p = this.sigma.edgeProgram;
    if (items <= p.capacity) return;
    const built = p.floats;
    p.reallocate(Math.max(items, Math.ceil(p.capacity * 1.5), this.start + 1024));
    p.floats.set(built.subarray(0, Math.min(built.length, p.floats.length)));
  }

  /** For tests: where the tail starts and what it holds. */
  state(): { start: number; keys: readonly string[] } {
    return { start: this.start, keys: this.keys };
  }
}
