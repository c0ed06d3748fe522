/**
 * One WebGL graph view: a sigma 4 instance over a graphology graph, fed with scenes.
 *
 * - Updates are diffs: nodes and edges that leave the scene are dropped from the graph (not
 *   hidden in place), new ones added, moved ones updated; a large change rebuilds the graph.
 *   Drops are batched past sigma's listeners (each would re-style and re-index every item),
 *   and edge-only changes rebuild sigma's edge buffers, not its node buffers.
 * - Big scenes (more than BIG_GRAPH_EDGES edges) put in the graph only what the user looks
 *   at: the strongest edges by |weight| within a budget, plus the hovered and selected nodes'
 *   links and the links between pinned nodes, added and dropped as those change (O(degree)).
 *   "Show all" raises the budget.
 * - Hover dims the rest of the graph (a translucent veil between resting and highlighted
 *   items) and lifts the neighbourhood above it; the restyle touches only the neighbourhood.
 *   The link direction (inputs, outputs, both) picks which neighbours.
 * - Picking is on the CPU (a grid over node positions; edges by distance to the segment):
 *   sigma's pixel read-back stalls the GPU on every mouse move and click.
 * - Labels never overlap: after the camera settles, labels are placed greedily by priority
 *   (labels.ts) and only the placed ones are drawn; zooming in places more.
 * - The bounding box is fixed per frame (setCustomBBox), so a re-pruned view keeps its scale.
 * - kill() releases the WebGL context (compare panes open and close freely).
 */
import Graph from 'graphology';
import Sigma from 'sigma';
import { layerFill, sdfCircle, sdfDiamond, sdfSquare } from 'sigma/rendering';
import type { CameraState, PrimitivesDeclaration } from 'sigma/types';
import { strongestEdges } from './budget.ts';
import { EdgeTail, type SigmaEdgeBufferLike } from './edge-tail.ts';
import { type LabelBox, type LabelCandidate, placeLabels } from './labels.ts';
import { markCpuPicked } from './pick-programs.ts';
import { type EdgeTable, edgeKey, edgeStyle, type Scene, type SceneNode } from './scene.ts';
import { GridIndex, segmentDistance } from './spatial.ts';
import { COLORS } from './style.ts';
import { createVeil } from './veil.ts';

interface NodeAttrs {
  x: number;
  y: number;
  size: number;
  hoverSize: number;
  color: string;
  shape: string;
  label: string;
  /**
   * The label sigma knows of at rest: the text for always-labelled nodes, none for the others
   * (their text is given by the states that draw it). Sigma prepares glyphs and a label-grid
   * entry for every node with a label, drawn or not: at 10k nodes, work for nothing.
   */
  restLabel: string | undefined;
  /** 'visible' for always-labelled nodes; the others are drawn when placed (state labelled). */
  labelVis: 'visible' | 'hidden';
  labelMode: SceneNode['labelMode'];
  labelPos: 'right' | 'below' | 'above' | 'left';
  /** The side the scene asked for (labelPos moves when placement picks another side). */
  labelHome: 'right' | 'below' | 'above';
  priority: number;
  kind: string;
}

interface EdgeAttrs {
  size: number;
  strongSize: number;
  color: string;
  strongColor: string;
}

interface NodeState {
  selected: boolean;
  pinned: boolean;
  marked: boolean;
  hovered: boolean;
  labelled: boolean;
}

/** Which of a hovered node's links are highlighted (and, in big scenes, drawn). */
export type LinkDirection = 'in' | 'out' | 'both';

/** The edge under the pointer, for the weight readout. */
export interface EdgeHover {
  source: string;
  target: string;
  weight: number;
  /** Pointer position in the container (px). */
  x: number;
  y: number;
}

type G = Graph<NodeAttrs, EdgeAttrs>;

/** Live canvases, for the benchmarks and end-to-end checks (window.__circuitCanvases). */
const registry = new Set<GraphCanvas>();
(globalThis as { __circuitCanvases?: Set<GraphCanvas> }).__circuitCanvases = registry;

export interface CanvasOptions {
  /** Node dragging (the subgraph pane); positions are reported through onDragEnd. */
  draggable?: boolean;
  onHover?: (id: string | null) => void;
  onClick?: (id: string, ev: { ctrl: boolean; shift: boolean }) => void;
  onStageClick?: () => void;
  onDragEnd?: (id: string, pos: { x: number; y: number }) => void;
  onCamera?: (state: CameraState) => void;
  /** The edge under the pointer changed (null: none). */
  onEdgeHover?: (edge: EdgeHover | null) => void;
  /** Camera, size or frame changed (after the frame is drawn): overlays reposition. */
  onViewChange?: () => void;
}

function nodeAttrs(n: SceneNode): NodeAttrs {
  return {
    x: n.x,
    y: n.y,
    size: n.size,
    hoverSize: n.size * 1.35 + 1,
    color: n.color,
    shape: n.glyph,
    label: n.label,
    restLabel: n.labelMode === 'always' ? n.label : undefined,
    labelVis: n.labelMode === 'always' ? 'visible' : 'hidden',
    labelMode: n.labelMode,
    labelPos: n.labelPos,
    labelHome: n.labelPos,
    priority: n.priority ?? n.size / 100,
    kind: n.kind,
  };
}

function edgeAttrs(t: EdgeTable, e: number): EdgeAttrs {
  const st = edgeStyle(t.weight[e], t.rel[e]);
  return { size: st.width, strongSize: st.width * 1.4 + 0.6, color: st.color, strongColor: st.strongColor };
}

/** The edges of a scene as a table (scenes built from edge objects: the subgraph). */
function tableOf(scene: Scene, index: ReadonlyMap<string, number>): EdgeTable {
  if (scene.edgeTable) return scene.edgeTable;
  const E = scene.edges.length;
  const t: EdgeTable = {
    source: new Int32Array(E),
    target: new Int32Array(E),
    weight: new Float32Array(E),
    rel: new Float32Array(E),
  };
  scene.edges.forEach((e, i) => {
    t.source[i] = index.get(e.source) ?? -1;
    t.target[i] = index.get(e.target) ?? -1;
    t.weight[i] = e.weight;
    t.rel[i] = e.rel;
  });
  return t;
}

/** Compressed adjacency: the edges out of / into node i are list[start[i] .. start[i + 1]). */
interface Adjacency {
  outStart: Int32Array;
  outList: Int32Array;
  inStart: Int32Array;
  inList: Int32Array;
}

function adjacencyOf(n: number, t: EdgeTable): Adjacency {
  const E = t.source.length;
  const outStart = new Int32Array(n + 1);
  const inStart = new Int32Array(n + 1);
  for (let e = 0; e < E; e++) {
    if (t.source[e] < 0 || t.target[e] < 0) continue;
    outStart[t.source[e] + 1]++;
    inStart[t.target[e] + 1]++;
  }
  for (let i = 0; i < n; i++) {
    outStart[i + 1] += outStart[i];
    inStart[i + 1] += inStart[i];
  }
  const outList = new Int32Array(outStart[n]);
  const inList = new Int32Array(inStart[n]);
  const o = outStart.slice(0, n);
  const q = inStart.slice(0, n);
  for (let e = 0; e < E; e++) {
    if (t.source[e] < 0 || t.target[e] < 0) continue;
    outList[o[t.source[e]]++] = e;
    inList[q[t.target[e]]++] = e;
  }
  return { outStart, outList, inStart, inList };
}

function sameNode(a: NodeAttrs, b: NodeAttrs): boolean {
  return (
    a.x === b.x &&
    a.y === b.y &&
    a.size === b.size &&
    a.color === b.color &&
    a.label === b.label &&
    a.shape === b.shape &&
    a.labelMode === b.labelMode &&
    a.labelHome === b.labelHome &&
    a.priority === b.priority
  );
}

/** Above this many edges a scene is big: it draws a budget of edges, not all of them. */
export const BIG_GRAPH_EDGES = 20_000;
/** Edges drawn at rest in a big scene (the strongest by |weight|). */
export const REST_EDGE_BUDGET = 5_000;
/** Edges drawn in a big scene when the user asks for all of them. */
export const ALL_EDGE_BUDGET = 150_000;
/**
 * Big scenes: most links drawn for the hovered or selected node (the strongest by |weight|).
 * A hub (a token, a logit) can have tens of thousands; each added edge costs sigma an update.
 */
export const FOCUS_LINKS = 500;
/** Nodes in the first frame of a new sigma; the others follow in batches (rebuild). */
const FIRST_FRAME_NODES = 2_000;
/** Nodes added per task after the first frame. */
const BATCH_NODES = 4_000;
/** Above this many drawn edges, edges and labels are hidden while the camera moves. */
const HIDE_ON_MOVE_EDGES = 20_000;
/** Labels placed besides the forced ones. */
const MAX_LABELS = 300;
const LABEL_FONT = 11;

const BACKDROP_OFF = { backdropVisibility: 'hidden' } as const;
/** The label text, given by the states that draw a label (see NodeAttrs.restLabel). */
const LABEL_TEXT = { attribute: 'label' } as const;

/** The hovered node: on top, labelled, enlarged, on a white card. */
const HOVERED = {
  depth: 'topNodes',
  labelVisibility: 'visible',
  label: LABEL_TEXT,
  size: { attribute: 'hoverSize' },
  backdropVisibility: 'visible',
  backdropArea: 'both',
  backdropColor: '#ffffff',
  backdropShadowColor: 'rgba(0, 0, 0, 0.35)',
  backdropShadowBlur: 10,
  backdropPadding: 5,
} as const;

/** Sigma's per-item state store (not in its public types). */
interface StateStoreLike {
  stateManager: {
    nodeStates: Map<string, object>;
    edgeStates: Map<string, object>;
    getNodeState: (key: string) => object;
    getEdgeState: (key: string) => object;
  };
}

/**
 * Gives every node and edge its initial state object before sigma's first (and any full)
 * refresh. Sigma creates each on first use with a transpiled object spread (a defineProperty
 * per field): a fifth of sigma's constructor at 10k nodes in a CPU profile. A plain copy of
 * one template gives the same object.
 */
function seedStates(s: StateStoreLike, graph: G): void {
  const m = s.stateManager;
  const seed = (states: Map<string, object>, make: (k: string) => object, keys: () => string[]) => {
    if (states.size) return;
    const template = stateTemplate(states, make);
    for (const k of keys()) states.set(k, { ...template });
  };
  seed(
    m.nodeStates,
    (k) => m.getNodeState(k),
    () => graph.nodes(),
  );
  seed(
    m.edgeStates,
    (k) => m.getEdgeState(k),
    () => graph.edges(),
  );
}

/**
 * Runs `fn` with the graph's listeners for `events` (sigma's per-item handlers) detached, and
 * puts them back after: the callers do for a batch what those handlers do per item.
 */
function withoutListeners(
  g: G,
  events: ReadonlyArray<'edgeAdded' | 'edgeDropped' | 'nodeAdded' | 'nodeDropped'>,
  fn: () => void,
): void {
  const saved = events.map((ev) => ({ ev, listeners: g.listeners(ev) }));
  for (const ev of events) g.removeAllListeners(ev);
  try {
    fn();
  } finally {
    for (const { ev, listeners } of saved)
      for (const l of listeners) g.on(ev, l as (...args: unknown[]) => void);
  }
}

/** A fresh item state, as sigma makes it (made for a key that no item has, then forgotten). */
function stateTemplate(states: Map<string, object>, make: (k: string) => object): object {
  const probe = '\u0000template';
  const template = make(probe);
  states.delete(probe);
  return template;
}

/** Sigma with its item states seeded (seedStates) before a full refresh. */
class SeededSigma<const P extends PrimitivesDeclaration> extends Sigma<
  NodeAttrs,
  EdgeAttrs,
  object,
  NodeState,
  object,
  object,
  P
> {
  override refresh(opts?: Parameters<Sigma['refresh']>[0]): this {
    if (!opts?.partialGraph) seedStates(this as unknown as StateStoreLike, this.getGraph() as G);
    return super.refresh(opts);
  }
}

function createSigma(graph: G, container: HTMLElement, draggable: boolean, hideOnMove: boolean) {
  return new SeededSigma(graph, container, {
    primitives: {
      // The veil (see veil.ts) sits between resting and highlighted items.
      depthLayers: ['edges', 'nodes', 'veil', 'topEdges', 'topNodes'],
      nodes: {
        shapes: [sdfCircle(), sdfDiamond(), sdfSquare()],
        layers: [layerFill()],
        label: { font: { family: 'system-ui, sans-serif' }, color: COLORS.text, margin: 4 },
      },
    },
    customNodeState: { selected: false, pinned: false, marked: false, hovered: false, labelled: false },
    styles: {
      nodes: [
        {
          x: { attribute: 'x' },
          y: { attribute: 'y' },
          size: { attribute: 'size' },
          color: { attribute: 'color' },
          shape: { attribute: 'shape' },
          label: { attribute: 'restLabel' },
          labelVisibility: { attribute: 'labelVis', defaultValue: 'auto' },
          labelPosition: { attribute: 'labelPos', defaultValue: 'right' },
          labelSize: LABEL_FONT,
          depth: 'nodes',
          ...BACKDROP_OFF,
        },
        { whenState: 'labelled', then: { labelVisibility: 'visible', label: LABEL_TEXT } },
        {
          whenState: 'marked',
          then: {
            backdropVisibility: 'visible',
            backdropArea: 'node',
            backdropColor: 'rgba(217, 70, 239, 0.3)',
            backdropPadding: 2,
            backdropShadowBlur: 0,
            backdropCornerRadius: 20,
          },
        },
        {
          whenState: 'pinned',
          then: {
            backdropVisibility: 'visible',
            backdropArea: 'node',
            backdropColor: COLORS.pinned,
            backdropBorderColor: '#d97706',
            backdropBorderWidth: 1,
            backdropPadding: 3,
            backdropShadowBlur: 0,
            backdropCornerRadius: 20,
            labelVisibility: 'visible',
            label: LABEL_TEXT,
          },
        },
        { whenState: 'isHighlighted', then: { depth: 'topNodes' } },
        {
          whenState: 'selected',
          then: {
            depth: 'topNodes',
            labelVisibility: 'visible',
            label: LABEL_TEXT,
            size: { attribute: 'hoverSize' },
            backdropVisibility: 'visible',
            backdropArea: 'both',
            backdropColor: '#ffffff',
            backdropBorderColor: COLORS.selected,
            backdropBorderWidth: 2,
            backdropPadding: 4,
            backdropShadowBlur: 6,
            backdropCornerRadius: 4,
          },
        },
        { whenState: 'isHovered', then: HOVERED },
        { whenState: 'hovered', then: HOVERED },
      ],
      edges: [
        { size: { attribute: 'size' }, color: { attribute: 'color' }, depth: 'edges' },
        {
          whenState: 'isHighlighted',
          then: { color: { attribute: 'strongColor' }, size: { attribute: 'strongSize' }, depth: 'topEdges' },
        },
      ],
      stage: { background: COLORS.background },
    },
    settings: {
      itemSizesReference: 'screen',
      zoomToSizeRatioFunction: (r: number) => Math.sqrt(r),
      autoRescale: true,
      enableCameraRotation: false,
      enableCameraMouseRotation: false,
      minEdgeThickness: 0.6,
      // Placement is ours (labels.ts): sigma draws the labels it is told to.
      labelDensity: 1,
      labelRenderedSizeThreshold: 0,
      enableEdgeEvents: false,
      // Node picking is on the CPU (see installCpuPicking, pick-programs.ts); keep the unused buffer small.
      pickingDownSizingRatio: draggable ? 2 : 8,
      stagePadding: 40,
      zoomDuration: 150,
      minCameraRatio: 0.02,
      maxCameraRatio: 4,
      enableNodeDrag: draggable,
      dragPositionToAttributes: draggable ? (p) => ({ x: p.x, y: p.y }) : null,
      // Given here, not by setSetting after construction: each setSetting re-styles and
      // re-indexes every node and edge (a full refresh).
      hideEdgesOnMove: hideOnMove,
      hideLabelsOnMove: hideOnMove,
    },
  });
}

type SigmaInstance = ReturnType<typeof createSigma>;

/** Sigma internals the CPU picking replaces (not in its public types). */
interface HoverResolverLike {
  lastEvent: { x: number; y: number } | null;
  options: { onIndex: (index: number, event: unknown) => void };
  startRead: () => void;
}
interface SigmaInternalsLike {
  internals: { hoverResolver: HoverResolverLike };
  pickingState: { idsByKind: { node: Map<string, number> } };
  getHitAtPosition: (pos: { x: number; y: number }) => { kind: string; key: string } | null;
}
/** Sigma internals the batched removal uses (dropFromGraph; not in its public types). */
interface SigmaIndexLike {
  edgeGroups: {
    getSiblings: (edge: string) => string[];
    register: (edge: string) => void;
    unregister: (edge: string) => void;
  };
  addEdge: (edge: string) => void;
  addNode: (node: string) => void;
  removeEdge: (edge: string) => void;
  removeNode: (node: string) => void;
  pendingProcess: 'none' | 'nodes' | 'full';
}

export class GraphCanvas {
  private graph: G = new Graph<NodeAttrs, EdgeAttrs>({ type: 'directed', multi: false });
  /**
   * Created with the first scene, and created again (camera kept) for changes too big to diff:
   * sigma 4's setGraph leaves its parallel-edge index on the old graph, so it is never used.
   */
  private sigma: SigmaInstance | null = null;
  private scene: Scene | null = null;
  private nodeIndex = new Map<string, number>();
  private table: EdgeTable | null = null;
  private adj: Adjacency | null = null;
  /** Edges drawn at rest (null: all of them). */
  private base: Uint8Array | null = null;
  /** Edges drawn beyond `base` because the user looks at them (big scenes). */
  private focusEdges = new Set<number>();
  /** Graph edge key → table index, for every edge in the graph. */
  private edgeIndex = new Map<string, number>();
  private highlighted: { nodes: string[]; edges: string[] } = { nodes: [], edges: [] };
  private hoverId: string | null = null;
  private hoverEdge: string | null = null;
  private selectedId: string | null = null;
  private pinnedIds = new Set<string>();
  private markedIds = new Set<string>();
  private direction: LinkDirection = 'both';
  private showAll = false;
  private bbox: Scene['frame']['bbox'] | null = null;
  private bboxKey = '';
  private big = false;
  private syncingCamera = false;
  private killed = false;
  private grid: GridIndex | null = null;
  private gridIds: string[] = [];
  private maxSize = 1;
  private labelled = new Set<string>();
  private placed: LabelBox[] = [];
  private labelTimer: ReturnType<typeof setTimeout> | null = null;
  private edgeTimer: ReturnType<typeof setTimeout> | null = null;
  private viewKey = '';
  /** Edges added or dropped outside sigma's listeners, written to its edge buffer before a frame. */
  private edgeTail: EdgeTail | null = null;
  /** Frames drawn (sigma draws the first one synchronously when it is created). */
  private frames = 0;
  /** Label placement: scheduled, placed (not drawn yet), or drawn. */
  private labelStage: 'scheduled' | 'placed' | 'drawn' = 'drawn';
  private completeWaiters: Array<() => void> = [];

  constructor(
    readonly container: HTMLElement,
    private readonly opts: CanvasOptions = {},
  ) {
    registry.add(this);
    if (!opts.draggable) markCpuPicked(container);
  }

  /** `edges`: the edges the graph will have once every batch is in (hide-on-move). */
  private create(graph: G, camera: CameraState | null, edges: number): SigmaInstance {
    this.sigma?.kill();
    this.graph = graph;
    const s = createSigma(graph, this.container, this.opts.draggable ?? false, edges > HIDE_ON_MOVE_EDGES);
    this.sigma = s;
    this.frames++;
    this.edgeTail = new EdgeTail(s as unknown as SigmaEdgeBufferLike);
    // The veil's shader is compiled after the first frame (a third of a second in software GL),
    // or on the first hover if that comes sooner.
    this.veilReady = false;
    requestAnimationFrame(() => setTimeout(() => this.ensureVeil(), 0));
    if (this.bbox) s.setCustomBBox(this.bbox);
    if (camera) s.getCamera().setState(camera);
    if (!this.opts.draggable) this.installCpuPicking(s);
    this.bindEvents(s);
    this.labelled = new Set();
    return s;
  }

  private veilReady = false;

  private ensureVeil(): void {
    const s = this.sigma;
    if (this.veilReady || !s || this.killed) return;
    this.veilReady = true;
    // 'veil' is declared in primitives.depthLayers (the explicit type arguments hide it from the type).
    s.addCustomLayerProgram('veil', 'veil' as never, (gl) =>
      createVeil(gl, () => this.hoverId !== null && this.highlighted.nodes.length > 0, [1, 1, 1, 0.45]),
    );
  }

  /**
   * Replaces sigma's GPU picking (a pixel read-back per mouse move and per click) with a
   * lookup in the node grid. Sigma's own hover pipeline (enter/leave/click events) is kept:
   * only where the hit comes from changes. Dragging canvases keep the GPU picking.
   */
  private installCpuPicking(s: SigmaInstance): void {
    const inner = s as unknown as SigmaInternalsLike;
    const resolver = inner.internals.hoverResolver;
    const idOf = (node: string | null) => (node ? (inner.pickingState.idsByKind.node.get(node) ?? 0) : 0);
    resolver.startRead = () => {
      const ev = resolver.lastEvent;
      if (!ev) return;
      const node = this.pick(ev.x, ev.y);
      resolver.options.onIndex(idOf(node), ev);
      if (node) this.setEdgeHover(null);
      else this.scheduleEdgePick(ev.x, ev.y);
    };
    inner.getHitAtPosition = (pos) => {
      const node = this.pick(pos.x, pos.y);
      return node ? { kind: 'node', key: node } : null;
    };
  }

  private bindEvents(s: SigmaInstance): void {
    s.on('beforeRender', () => this.flushEdgeBuffers(s));
    s.on('enterNode', ({ node }) => this.opts.onHover?.(node));
    s.on('leaveNode', () => this.opts.onHover?.(null));
    s.on('leaveStage', () => {
      this.setEdgeHover(null);
      this.opts.onHover?.(null);
    });
    s.on('clickNode', ({ node, event }) => {
      const o = event.original as MouseEvent;
      this.opts.onClick?.(node, { ctrl: !!(o.ctrlKey || o.metaKey), shift: !!o.shiftKey });
    });
    s.on('clickStage', () => this.opts.onStageClick?.());
    s.on('nodeDragEnd', ({ node }) => {
      const a = this.graph.getNodeAttributes(node);
      this.opts.onDragEnd?.(node, { x: a.x, y: a.y });
      this.buildGrid();
    });
    s.getCamera().on('updated', (state) => {
      if (!this.syncingCamera) this.opts.onCamera?.(state);
    });
    s.on('afterRender', () => {
      this.frames++;
      if (this.labelStage === 'placed') this.labelStage = 'drawn';
      if (this.isComplete()) this.settle();
      const c = s.getCamera().getState();
      const d = s.getDimensions();
      const key = `${c.x},${c.y},${c.ratio},${d.width},${d.height},${this.bboxKey}`;
      if (key === this.viewKey) return;
      this.viewKey = key;
      this.scheduleLabels();
      this.opts.onViewChange?.();
    });
  }

  /** Replaces what is drawn by `scene` (a diff when it is small, a rebuild otherwise). */
  setScene(scene: Scene): void {
    if (this.killed) return;
    // A rebuild still adding batches: what is missing is added by this diff instead.
    this.cancelBatches();
    const key = `${scene.frame.bbox.x.join(',')}|${scene.frame.bbox.y.join(',')}`;
    const bboxChanged = key !== this.bboxKey;
    this.bbox = scene.frame.bbox;
    this.bboxKey = key;
    this.scene = scene;
    this.nodeIndex = new Map(scene.nodes.map((n, i) => [n.id, i]));
    const table = tableOf(scene, this.nodeIndex);
    this.table = table;
    this.adj = adjacencyOf(scene.nodes.length, table);
    const E = table.source.length;
    this.big = E > BIG_GRAPH_EDGES;
    this.base = this.big
      ? strongestEdges(table.weight, this.showAll ? ALL_EDGE_BUDGET : REST_EDGE_BUDGET)
      : null;
    this.focusEdges = this.computeFocus();
    // The edges to draw: key → table index.
    const wanted = new Map<string, number>();
    for (let e = 0; e < E; e++) {
      if (table.source[e] < 0 || table.target[e] < 0) continue;
      if (this.base && !this.base[e] && !this.focusEdges.has(e)) continue;
      wanted.set(this.keyOf(e), e);
    }
    const g = this.graph;
    const want = this.nodeIndex;
    let removedEdges = 0;
    g.forEachEdge((e) => {
      if (!wanted.has(e)) removedEdges++;
    });
    const change = removedEdges + Math.abs(wanted.size - (g.size - removedEdges));
    if (!this.sigma || change > 20_000) {
      this.rebuild(scene, wanted);
    } else {
      const s = this.sigma;
      if (bboxChanged) s.setCustomBBox(scene.frame.bbox);
      const hide = wanted.size > HIDE_ON_MOVE_EDGES;
      if (hide !== s.getSetting('hideEdgesOnMove')) {
        s.setSetting('hideEdgesOnMove', hide);
        s.setSetting('hideLabelsOnMove', hide);
      }
      // Edges first, one by one: sigma 4 does not forget the edges graphology drops
      // implicitly with their node (its parallel-edge index keeps them).
      const dropEdges: string[] = [];
      g.forEachEdge((e, _a, src, tgt) => {
        if (!wanted.has(e) || !want.has(src) || !want.has(tgt)) dropEdges.push(e);
      });
      const dropNodes: string[] = [];
      g.forEachNode((n) => {
        if (!want.has(n)) dropNodes.push(n);
      });
      this.dropFromGraph(dropEdges, dropNodes);
      for (const n of dropNodes) this.labelled.delete(n);
      const newNodes: Array<{ key: string; attrs: NodeAttrs }> = [];
      for (const n of scene.nodes) {
        const a = nodeAttrs(n);
        if (!g.hasNode(n.id)) newNodes.push({ key: n.id, attrs: a });
        else if (!sameNode(g.getNodeAttributes(n.id), a)) g.replaceNodeAttributes(n.id, a);
      }
      this.addNodesToGraph(newNodes);
      const newEdges: Array<{ key: string; source: string; target: string; attrs: EdgeAttrs }> = [];
      for (const [k, e] of wanted) {
        const a = edgeAttrs(table, e);
        if (!g.hasEdge(k))
          newEdges.push({
            key: k,
            source: scene.nodes[table.source[e]].id,
            target: scene.nodes[table.target[e]].id,
            attrs: a,
          });
        else {
          const old = g.getEdgeAttributes(k);
          if (old.size !== a.size || old.color !== a.color) g.replaceEdgeAttributes(k, a);
        }
      }
      this.addToGraph(newEdges);
    }
    this.edgeIndex = wanted;
    this.buildGrid();
    this.reapplyStates();
    this.scheduleLabels();
  }

  /**
   * Drops edges, then nodes, from the graph and from sigma's indices, with one reprocess of
   * sigma's buffers on the next frame. Sigma 4 answers every graphology edgeDropped and
   * nodeDropped event with a full refresh (every node and edge re-styled and re-indexed,
   * synchronously: ~0.1–1 s at 10k nodes in software GL), so dropping a hub's 500 focus links
   * one by one stalled for minutes. Its per-drop listeners are detached meanwhile, and what
   * they do for one item (sigma's removeEdge / removeNode, parallel-edge group upkeep) is
   * done here per item. Callers drop a node's edges with it (sigma keeps the others indexed).
   */
  private dropFromGraph(edges: readonly string[], nodes: readonly string[]): void {
    const g = this.graph;
    const s = this.sigma;
    if (!edges.length && !nodes.length) return;
    if (!s) {
      for (const e of edges) if (g.hasEdge(e)) g.dropEdge(e);
      for (const n of nodes) if (g.hasNode(n)) g.dropNode(n);
      return;
    }
    const inner = s as unknown as SigmaIndexLike;
    const siblings = new Set<string>();
    const tail = this.edgeTail;
    const dropEdge = (e: string) => {
      g.dropEdge(e);
      tail?.dropped(e);
      for (const sib of inner.edgeGroups.getSiblings(e)) siblings.add(sib);
      inner.edgeGroups.unregister(e);
      inner.removeEdge(e);
      siblings.delete(e);
    };
    withoutListeners(g, ['edgeDropped', 'nodeDropped'], () => {
      for (const e of edges) if (g.hasEdge(e)) dropEdge(e);
      for (const n of nodes) {
        if (!g.hasNode(n)) continue;
        for (const e of g.edges(n)) dropEdge(e);
        g.dropNode(n);
        inner.removeNode(n);
      }
    });
    // Parallel edges left in a group are re-styled (their spread changes), as sigma does.
    for (const sib of siblings) if (g.hasEdge(sib)) inner.addEdge(sib);
    if (siblings.size) tail?.invalidate();
    if (nodes.length) inner.pendingProcess = 'full';
    s.scheduleRender();
  }

  /**
   * Adds edges to the graph and to sigma's indices; they are written to its edge buffer on the
   * next frame (edge-tail.ts: after the built part, not a rebuild). Sigma's own edgeAdded
   * listener would re-process every node and edge on that frame (O(nodes) per hover in a big
   * graph); the edges do not move any node.
   */
  private addToGraph(
    edges: ReadonlyArray<{ key: string; source: string; target: string; attrs: EdgeAttrs }>,
  ): void {
    const g = this.graph;
    const s = this.sigma;
    if (!edges.length) return;
    if (!s) {
      for (const e of edges) g.addEdgeWithKey(e.key, e.source, e.target, e.attrs);
      return;
    }
    const inner = s as unknown as SigmaIndexLike;
    const m = (s as unknown as StateStoreLike).stateManager;
    const template = stateTemplate(m.edgeStates, (k) => m.getEdgeState(k));
    withoutListeners(g, ['edgeAdded'], () => {
      for (const e of edges) {
        g.addEdgeWithKey(e.key, e.source, e.target, e.attrs);
        if (!m.edgeStates.has(e.key)) m.edgeStates.set(e.key, { ...template });
        inner.edgeGroups.register(e.key);
        inner.addEdge(e.key);
        for (const sib of inner.edgeGroups.getSiblings(e.key)) {
          // A parallel edge's spread changed: its built data is stale.
          inner.addEdge(sib);
          this.edgeTail?.invalidate();
        }
      }
    });
    this.edgeTail?.added(edges.map((e) => e.key));
    s.scheduleRender();
  }

  /**
   * Adds nodes to the graph and to sigma's indices (state seeded, style evaluated once); every
   * node is re-processed once on the next frame. Sigma's own nodeAdded listener evaluates each
   * new node's style twice and makes its state with the slow spread (seedStates).
   */
  private addNodesToGraph(nodes: ReadonlyArray<{ key: string; attrs: NodeAttrs }>, render = true): void {
    const g = this.graph;
    const s = this.sigma;
    if (!nodes.length) return;
    if (!s) {
      for (const n of nodes) g.addNode(n.key, n.attrs);
      return;
    }
    const inner = s as unknown as SigmaIndexLike;
    const m = (s as unknown as StateStoreLike).stateManager;
    const template = stateTemplate(m.nodeStates, (k) => m.getNodeState(k));
    withoutListeners(g, ['nodeAdded'], () => {
      for (const n of nodes) {
        g.addNode(n.key, n.attrs);
        if (!m.nodeStates.has(n.key)) m.nodeStates.set(n.key, { ...template });
        inner.addNode(n.key);
      }
    });
    inner.pendingProcess = 'full';
    // Rebuild batches: the frame comes after the last batch (one re-process, not one per batch).
    if (render) s.scheduleRender();
  }

  /**
   * Before a frame: edge-only changes are written to sigma's edge buffer (the added edges after
   * the built part, or a rebuild of the edges), not to every node's.
   */
  private flushEdgeBuffers(s: SigmaInstance): void {
    const tail = this.edgeTail;
    if (!tail?.pending()) return;
    const inner = s as unknown as SigmaIndexLike;
    if (inner.pendingProcess === 'none') tail.flush();
    else {
      // Sigma rebuilds everything on this frame (which resets the tail).
      tail.invalidate();
      inner.pendingProcess = 'full';
    }
  }

  private keyOf(e: number): string {
    const t = this.table as EdgeTable;
    const nodes = (this.scene as Scene).nodes;
    return edgeKey(nodes[t.source[e]].id, nodes[t.target[e]].id);
  }

  /**
   * A new sigma over the scene. Big scenes draw their first frame with the FIRST_FRAME_NODES
   * most important nodes (and the wanted edges between them); the other nodes and edges are
   * added in batches on the following tasks (addNodesToGraph / addToGraph), so the first frame
   * does not wait for sigma to style and index every item. Once the last batch is in, the
   * graph is the one a single build would give.
   */
  private rebuild(scene: Scene, wanted: ReadonlyMap<string, number>): void {
    this.cancelBatches();
    const g = new Graph<NodeAttrs, EdgeAttrs>({ type: 'directed', multi: false });
    const t = this.table as EdgeTable;
    const all = scene.nodes.map((n) => ({ key: n.id, attrs: nodeAttrs(n) }));
    let first = all;
    let later: typeof all = [];
    if (all.length > FIRST_FRAME_NODES) {
      const keep = (k: string) => k === this.hoverId || k === this.selectedId || this.pinnedIds.has(k);
      const order = all
        .map((n, i) => ({
          i,
          p: keep(n.key) || n.attrs.labelMode === 'always' ? Infinity : n.attrs.priority,
        }))
        .sort((a, b) => b.p - a.p || a.i - b.i);
      const inFirst = new Uint8Array(all.length);
      for (let r = 0; r < FIRST_FRAME_NODES; r++) inFirst[order[r].i] = 1;
      first = all.filter((_, i) => inFirst[i]);
      later = all.filter((_, i) => !inFirst[i]);
    }
    for (const n of first) g.addNode(n.key, n.attrs);
    const laterEdges: Array<{ key: string; source: string; target: string; attrs: EdgeAttrs }> = [];
    for (const [k, e] of wanted) {
      const source = scene.nodes[t.source[e]].id;
      const target = scene.nodes[t.target[e]].id;
      const attrs = edgeAttrs(t, e);
      if (g.hasNode(source) && g.hasNode(target)) g.addEdgeWithKey(k, source, target, attrs);
      else laterEdges.push({ key: k, source, target, attrs });
    }
    const camera = this.sigma ? this.sigma.getCamera().getState() : null;
    this.highlighted = { nodes: [], edges: [] };
    this.hoverEdge = null;
    this.create(g, camera, wanted.size);
    if (later.length) this.queueBatches(later, laterEdges);
  }

  /** Pending batches of a rebuild (nodes, then the edges that need them). */
  private batches: Array<() => void> = [];
  private batchTimer: ReturnType<typeof setTimeout> | null = null;

  private queueBatches(
    nodes: ReadonlyArray<{ key: string; attrs: NodeAttrs }>,
    edges: ReadonlyArray<{ key: string; source: string; target: string; attrs: EdgeAttrs }>,
  ): void {
    for (let i = 0; i < nodes.length; i += BATCH_NODES) {
      const chunk = nodes.slice(i, i + BATCH_NODES);
      this.batches.push(() => this.addNodesToGraph(chunk, false));
    }
    this.batches.push(() => {
      const g = this.graph;
      // A focus link (hover, selection) may have come in meanwhile.
      this.addToGraph(edges.filter((e) => !g.hasEdge(e.key)));
    });
    // After the first frame is on screen: a task queued from the next animation frame.
    requestAnimationFrame(() => {
      if (!this.killed && this.batches.length && this.batchTimer === null)
        this.batchTimer = setTimeout(() => this.runBatch(), 0);
    });
  }

  private runBatch(): void {
    this.batchTimer = null;
    if (this.killed) return;
    const next = this.batches.shift();
    if (!next) return;
    next();
    if (this.batches.length) {
      this.batchTimer = setTimeout(() => this.runBatch(), 0);
      return;
    }
    // All in: picking, hover and selection states, and labels over the whole graph.
    this.buildGrid();
    this.reapplyStates();
    this.scheduleLabels();
    this.sigma?.scheduleRender();
  }

  private cancelBatches(): void {
    if (this.batchTimer) clearTimeout(this.batchTimer);
    this.batchTimer = null;
    this.batches = [];
  }

  /** Table indices of node i's links in the current direction. */
  private linksOf(i: number, dir: LinkDirection, out: number[] = []): number[] {
    const a = this.adj;
    if (!a) return out;
    if (dir !== 'in') for (let k = a.outStart[i]; k < a.outStart[i + 1]; k++) out.push(a.outList[k]);
    if (dir !== 'out') for (let k = a.inStart[i]; k < a.inStart[i + 1]; k++) out.push(a.inList[k]);
    return out;
  }

  /** Big scenes: edges beyond the budget that are drawn because the user looks at them. */
  private computeFocus(): Set<number> {
    const out = new Set<number>();
    const base = this.base;
    const t = this.table;
    if (!base || !t) return out;
    const add = (e: number) => {
      if (!base[e]) out.add(e);
    };
    for (const id of [this.hoverId, this.selectedId]) {
      const i = id === null ? undefined : this.nodeIndex.get(id);
      if (i === undefined) continue;
      let links = this.linksOf(i, this.direction);
      if (links.length > FOCUS_LINKS) {
        const w = t.weight;
        links = links.sort((a, b) => Math.abs(w[b]) - Math.abs(w[a])).slice(0, FOCUS_LINKS);
      }
      for (const e of links) add(e);
    }
    // Links inside the pinned set.
    for (const id of this.pinnedIds) {
      const i = this.nodeIndex.get(id);
      if (i === undefined) continue;
      for (const e of this.linksOf(i, 'out')) {
        const other = (this.scene as Scene).nodes[t.target[e]].id;
        if (this.pinnedIds.has(other)) add(e);
      }
    }
    return out;
  }

  /** Adds and drops focus edges after hover, selection, pins or direction changed: O(degree). */
  private syncFocus(): void {
    if (!this.base || !this.scene || !this.table) return;
    const next = this.computeFocus();
    const g = this.graph;
    const t = this.table;
    const gone: string[] = [];
    for (const e of this.focusEdges) {
      if (next.has(e)) continue;
      const k = this.keyOf(e);
      gone.push(k);
      this.edgeIndex.delete(k);
      if (this.hoverEdge === k) this.hoverEdge = null;
    }
    this.dropFromGraph(gone, []);
    const added: Array<{ key: string; source: string; target: string; attrs: EdgeAttrs }> = [];
    for (const e of next) {
      if (this.focusEdges.has(e)) continue;
      const k = this.keyOf(e);
      const src = this.scene.nodes[t.source[e]].id;
      const tgt = this.scene.nodes[t.target[e]].id;
      if (!g.hasEdge(k) && g.hasNode(src) && g.hasNode(tgt))
        added.push({ key: k, source: src, target: tgt, attrs: edgeAttrs(t, e) });
      this.edgeIndex.set(k, e);
    }
    this.addToGraph(added);
    this.focusEdges = next;
  }

  private reapplyStates(): void {
    const hover = this.hoverId;
    this.hoverId = null;
    // A hovered node that left the scene (a filter, an intervention row removed under the
    // pointer) must not leave the graph stuck in its neighbourhood: clear it for everyone.
    if (hover !== null && !this.graph.hasNode(hover)) this.opts.onHover?.(null);
    else this.setHover(hover, true);
    const sel = this.selectedId;
    this.selectedId = null;
    this.setSelected(sel);
    const pins = this.pinnedIds;
    this.pinnedIds = new Set();
    this.setPinned(pins);
    const marks = this.markedIds;
    this.markedIds = new Set();
    this.setMarked(marks);
  }

  /** Highlights a node's neighbourhood (or clears it with null); the rest is dimmed. */
  setHover(id: string | null, force = false): void {
    if (this.killed || (id === this.hoverId && !force)) return;
    const s = this.sigma;
    const g = this.graph;
    const prev = this.hoverId;
    this.hoverId = id;
    if (!s) return;
    if (prev !== null && g.hasNode(prev)) s.setNodeState(prev, { hovered: false });
    if (this.highlighted.nodes.length) {
      s.setNodesState(
        this.highlighted.nodes.filter((n) => g.hasNode(n)),
        { isHighlighted: false },
      );
      s.setEdgesState(
        this.highlighted.edges.filter((e) => g.hasEdge(e)),
        { isHighlighted: false },
      );
    }
    this.highlighted = { nodes: [], edges: [] };
    this.syncFocus();
    if (id !== null) this.ensureVeil();
    const i = id === null ? undefined : this.nodeIndex.get(id);
    if (id === null || i === undefined || !g.hasNode(id)) {
      s.scheduleRender();
      this.scheduleLabels();
      return;
    }
    const t = this.table as EdgeTable;
    const nodes = (this.scene as Scene).nodes;
    const hn = new Set<string>([id]);
    const he: string[] = [];
    for (const e of this.linksOf(i, this.direction)) {
      const k = this.keyOf(e);
      if (!g.hasEdge(k)) continue;
      he.push(k);
      hn.add(nodes[t.source[e]].id);
      hn.add(nodes[t.target[e]].id);
    }
    const hnodes = [...hn];
    s.setNodesState(hnodes, { isHighlighted: true });
    s.setEdgesState(he, { isHighlighted: true });
    s.setNodeState(id, { hovered: true });
    this.highlighted = { nodes: hnodes, edges: he };
    s.scheduleRender();
    this.scheduleLabels();
  }

  /** Which links a hovered node highlights (and draws, in big scenes). */
  setLinkDirection(dir: LinkDirection): void {
    if (this.killed || dir === this.direction) return;
    this.direction = dir;
    this.setHover(this.hoverId, true);
    this.syncFocus();
  }

  /** Big scenes: draw every edge up to ALL_EDGE_BUDGET instead of the rest budget. */
  setShowAllEdges(all: boolean): void {
    if (this.killed || all === this.showAll) return;
    this.showAll = all;
    if (this.scene) this.setScene(this.scene);
  }

  setSelected(id: string | null): void {
    if (this.killed || id === this.selectedId) return;
    const g = this.graph;
    const s = this.sigma;
    if (s && this.selectedId && g.hasNode(this.selectedId))
      s.setNodeState(this.selectedId, { selected: false });
    this.selectedId = id;
    this.syncFocus();
    if (s && id && g.hasNode(id)) s.setNodeState(id, { selected: true });
    this.scheduleLabels();
  }

  setPinned(ids: ReadonlySet<string>): void {
    if (this.killed) return;
    this.setFlag('pinned', this.pinnedIds, ids);
    this.pinnedIds = new Set(ids);
    this.syncFocus();
    this.scheduleLabels();
  }

  /** Marks nodes (compare: present in this pane and missing from another). */
  setMarked(ids: ReadonlySet<string>): void {
    if (this.killed) return;
    this.setFlag('marked', this.markedIds, ids);
    this.markedIds = new Set(ids);
  }

  private setFlag(flag: 'pinned' | 'marked', before: ReadonlySet<string>, after: ReadonlySet<string>): void {
    const s = this.sigma;
    if (!s) return;
    const g = this.graph;
    const off = [...before].filter((n) => !after.has(n) && g.hasNode(n));
    const on = [...after].filter((n) => g.hasNode(n));
    if (off.length) s.setNodesState(off, { [flag]: false });
    if (on.length) s.setNodesState(on, { [flag]: true });
  }

  // ---- picking

  private buildGrid(): void {
    const ids: string[] = [];
    const xs: number[] = [];
    const ys: number[] = [];
    let maxSize = 1;
    this.graph.forEachNode((id, a) => {
      ids.push(id);
      xs.push(a.x);
      ys.push(a.y);
      maxSize = Math.max(maxSize, a.hoverSize);
    });
    const f = this.scene?.frame;
    const extent = f ? Math.max(f.bbox.x[1] - f.bbox.x[0], f.bbox.y[1] - f.bbox.y[0]) : 1;
    this.grid = new GridIndex(xs, ys, Math.max(extent / 256, 1e-9));
    this.gridIds = ids;
    this.maxSize = maxSize;
  }

  /** Viewport px per graph unit (uniform: sigma keeps the aspect ratio and no rotation). */
  private pxPerUnit(): number {
    const s = this.sigma as SigmaInstance;
    const a = s.graphToViewport({ x: 0, y: 0 });
    const b = s.graphToViewport({ x: 1, y: 0 });
    return Math.hypot(b.x - a.x, b.y - a.y) || 1;
  }

  /** The node under a viewport point (px in the container), or null. O(nodes near it). */
  pick(x: number, y: number): string | null {
    const s = this.sigma;
    const grid = this.grid;
    if (!s || !grid || this.killed) return null;
    const p = s.viewportToGraph({ x, y });
    const k = this.pxPerUnit();
    const g = this.graph;
    const pad = 2;
    const i = grid.nearest(p.x, p.y, (s.scaleSize(this.maxSize) + pad) / k, (j, d) => {
      const id = this.gridIds[j];
      const a = g.getNodeAttributes(id);
      const size = id === this.hoverId || id === this.selectedId ? a.hoverSize : a.size;
      return d * k <= s.scaleSize(size) + pad;
    });
    return i >= 0 ? this.gridIds[i] : null;
  }

  /** The drawn edge under a viewport point, or null (a scan of the drawn edges). */
  pickEdge(x: number, y: number): string | null {
    const s = this.sigma;
    if (!s || this.killed) return null;
    const p = s.viewportToGraph({ x, y });
    const k = this.pxPerUnit();
    let best: string | null = null;
    let bestD = Number.POSITIVE_INFINITY;
    this.graph.forEachEdge((key, a, _s, _t, sa, ta) => {
      const d = segmentDistance(p.x, p.y, sa.x, sa.y, ta.x, ta.y) * k;
      if (d < bestD && d <= a.size / 2 + 3) {
        best = key;
        bestD = d;
      }
    });
    return best;
  }

  private scheduleEdgePick(x: number, y: number): void {
    if (!this.opts.onEdgeHover) return;
    if (this.edgeTimer) clearTimeout(this.edgeTimer);
    this.edgeTimer = setTimeout(() => {
      this.edgeTimer = null;
      if (this.killed) return;
      const key = this.pick(x, y) ? null : this.pickEdge(x, y);
      this.setEdgeHover(key, x, y);
    }, 40);
  }

  private setEdgeHover(key: string | null, x = 0, y = 0): void {
    const s = this.sigma;
    if (!s) return;
    if (key === this.hoverEdge) {
      if (key === null) return;
    } else {
      const g = this.graph;
      const prev = this.hoverEdge;
      // A hovered node's highlighted links keep their highlight.
      if (prev && g.hasEdge(prev) && !this.highlighted.edges.includes(prev))
        s.setEdgeState(prev, { isHighlighted: false });
      this.hoverEdge = key;
      if (key && g.hasEdge(key)) s.setEdgeState(key, { isHighlighted: true });
    }
    const e = key === null ? undefined : this.edgeIndex.get(key);
    if (e === undefined || !this.table || !this.scene) {
      this.opts.onEdgeHover?.(null);
      return;
    }
    const t = this.table;
    this.opts.onEdgeHover?.({
      source: this.scene.nodes[t.source[e]].id,
      target: this.scene.nodes[t.target[e]].id,
      weight: t.weight[e],
      x,
      y,
    });
  }

  // ---- labels

  /**
   * Places labels once hover and camera have been still for a moment (a debounce: a pointer
   * sweeping across nodes or a pan does not pay for a placement per frame).
   */
  private scheduleLabels(): void {
    if (this.killed) return;
    this.labelStage = 'scheduled';
    if (this.labelTimer) clearTimeout(this.labelTimer);
    this.labelTimer = setTimeout(() => {
      this.labelTimer = null;
      this.placeLabelsNow();
    }, 120);
  }

  /** Places labels by priority without overlap and draws the placed ones. */
  placeLabelsNow(): LabelBox[] {
    const s = this.sigma;
    if (!s || this.killed) return [];
    const { width, height } = s.getDimensions();
    const g = this.graph;
    const lifted = new Set(this.highlighted.nodes);
    const cands: LabelCandidate[] = [];
    // Graph → viewport is affine here (no rotation): three points give it, instead of a
    // matrix product per node. Sizes scale linearly too.
    const o = s.graphToViewport({ x: 0, y: 0 });
    const ux = s.graphToViewport({ x: 1, y: 0 });
    const uy = s.graphToViewport({ x: 0, y: 1 });
    const sizeScale = s.scaleSize(1);
    g.forEachNode((id, a) => {
      const px = o.x + a.x * (ux.x - o.x) + a.y * (uy.x - o.x);
      const py = o.y + a.x * (ux.y - o.y) + a.y * (uy.y - o.y);
      if (px < -300 || py < -30 || px > width + 30 || py > height + 30) return;
      const forced =
        a.labelMode === 'always' || id === this.hoverId || id === this.selectedId || this.pinnedIds.has(id);
      cands.push({
        id,
        x: px,
        y: py,
        radius: a.size * sizeScale,
        // Unlabelled nodes (tokens: the axis names them) still block other labels.
        text: a.labelMode === 'none' ? '' : a.label,
        position: a.labelHome,
        priority: a.priority + (lifted.has(id) ? 10 : 0),
        forced,
      });
    });
    const placed = placeLabels(cands, { width, height, fontSize: LABEL_FONT, max: MAX_LABELS });
    const next = new Set<string>();
    for (const b of placed) {
      const a = g.getNodeAttributes(b.id);
      if (a.labelMode === 'auto') next.add(b.id);
      const side = b.forced ? a.labelHome : (b.position ?? a.labelHome);
      if (side !== a.labelPos) g.setNodeAttribute(b.id, 'labelPos', side);
    }
    const on = [...next].filter((id) => !this.labelled.has(id));
    const off = [...this.labelled].filter((id) => !next.has(id) && g.hasNode(id));
    if (on.length) s.setNodesState(on, { labelled: true });
    if (off.length) s.setNodesState(off, { labelled: false });
    this.labelled = next;
    this.placed = placed;
    // Drawn on the next frame (whenComplete waits for it).
    this.labelStage = 'placed';
    if (this.completeWaiters.length) s.scheduleRender();
    return placed;
  }

  /** Frames drawn so far (benchmarks: the first frame of a scene). */
  framesDrawn(): number {
    return this.frames;
  }

  /**
   * Resolves once everything the last scene asked for is drawn: every batch added after the
   * first frame, and the labels placed (benchmarks and checks).
   */
  whenComplete(): Promise<void> {
    return new Promise((resolve) => {
      this.completeWaiters.push(resolve);
      if (this.isComplete()) this.settle();
    });
  }

  private isComplete(): boolean {
    return this.sigma !== null && this.labelStage === 'drawn' && this.batches.length === 0;
  }

  private settle(): void {
    const waiters = this.completeWaiters;
    this.completeWaiters = [];
    for (const w of waiters) w();
  }

  /** The label boxes last placed (viewport px; checks and tests). */
  labelBoxes(): LabelBox[] {
    return this.placed;
  }

  // ---- camera and queries

  getCamera(): CameraState {
    return this.sigma?.getCamera().getState() ?? { x: 0.5, y: 0.5, ratio: 1, angle: 0 };
  }

  /** Sets the camera without reporting it back (camera sync between panes). */
  setCamera(state: CameraState): void {
    if (this.killed || !this.sigma) return;
    this.syncingCamera = true;
    try {
      this.sigma.getCamera().setState(state);
    } finally {
      this.syncingCamera = false;
    }
  }

  resetCamera(): void {
    void this.sigma?.getCamera().reset({ duration: 200 });
  }

  /** Centres the camera on a node. */
  focus(id: string): void {
    const s = this.sigma;
    if (this.killed || !s || !this.graph.hasNode(id)) return;
    const d = s.getNodeDisplayData(id);
    if (!d) return;
    const cam = s.getCamera();
    void cam.animate({ x: d.x, y: d.y, ratio: Math.min(cam.ratio, 0.6) }, { duration: 250 });
  }

  /** A graph point in viewport px (overlays: the layer and token axes). */
  toViewport(x: number, y: number): { x: number; y: number } | null {
    return this.sigma && !this.killed ? this.sigma.graphToViewport({ x, y }) : null;
  }

  /** The node whose neighbourhood is highlighted (null: none). */
  hoveredNode(): string | null {
    return this.hoverId;
  }

  hasNode(id: string): boolean {
    return this.graph.hasNode(id);
  }

  /** Nodes and edges in the graph (drawn), and the edges of the scene. */
  counts(): { nodes: number; edges: number; sceneEdges: number; big: boolean } {
    return {
      nodes: this.graph.order,
      edges: this.graph.size,
      sceneEdges: this.table?.source.length ?? 0,
      big: this.big,
    };
  }

  /** The container changed size: sigma resizes itself on the next render; refit the scene. */
  resize(): void {
    const s = this.sigma;
    if (this.killed || !s) return;
    const d = s.getDimensions();
    if (d.width !== this.container.offsetWidth || d.height !== this.container.offsetHeight)
      s.scheduleRefresh();
  }

  /** The sigma instance (benchmarks, checks); null until the first scene. */
  get instance(): Sigma {
    if (!this.sigma) throw new Error('no scene drawn yet');
    return this.sigma as unknown as Sigma;
  }

  /** Releases the WebGL context and every listener. */
  kill(): void {
    if (this.killed) return;
    this.killed = true;
    registry.delete(this);
    this.settle();
    if (this.labelTimer) clearTimeout(this.labelTimer);
    if (this.edgeTimer) clearTimeout(this.edgeTimer);
    this.cancelBatches();
    this.sigma?.kill();
    this.sigma = null;
    this.graph.clear();
  }
}

/**
 * Compiles the shader programs of a graph canvas once, in a throwaway sigma on a hidden element,
 * so that the first graph a user opens does not wait for them (~0.15 s in software GL, before
 * the first frame). Chromium keeps compiled programs in its GPU process (Electron also on
 * disk), keyed by source: a later canvas links from that cache. Call when the app starts, when
 * idle. Returns the milliseconds spent.
 */
export function prewarmShaders(): number {
  const t0 = performance.now();
  const el = document.createElement('div');
  el.style.cssText = 'position:fixed;left:-4000px;top:0;width:64px;height:64px;visibility:hidden';
  document.body.append(el);
  try {
    markCpuPicked(el);
    const s = createSigma(
      new Graph<NodeAttrs, EdgeAttrs>({ type: 'directed', multi: false }),
      el,
      false,
      false,
    );
    createVeil(s.getWebGLContext(), () => false, [1, 1, 1, 0]).kill();
    s.kill();
  } finally {
    el.remove();
  }
  return performance.now() - t0;
}
