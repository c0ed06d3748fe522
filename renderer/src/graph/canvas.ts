/**
 * One WebGL graph view: a sigma 4 instance over a graphology graph, fed with scenes.
 *
 * - Updates are diffs: nodes and edges that leave the scene are dropped from the graph (not
 *   hidden in place), new ones added, moved ones updated; a large change rebuilds the graph.
 * - Hover, selection, pins and compare marks are sigma item states, so a hover re-evaluates
 *   the styles of the items whose state changed (plus node colours for dimming), never a full
 *   re-index of the graph.
 * - The bounding box is fixed per frame (setCustomBBox), so a re-pruned view keeps its scale.
 * - kill() releases the WebGL context (compare panes open and close freely).
 */
import Graph from 'graphology';
import Sigma from 'sigma';
import { layerFill, sdfCircle, sdfDiamond, sdfSquare } from 'sigma/rendering';
import type { CameraState } from 'sigma/types';
import type { Scene, SceneEdge, SceneNode } from './scene.ts';
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
  labelVis: 'auto' | 'visible';
  labelPos: 'right' | 'below' | 'above';
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
    labelVis: n.labelMode === 'always' ? 'visible' : 'auto',
    labelPos: n.labelPos,
    kind: n.kind,
  };
}

function edgeAttrs(e: SceneEdge): EdgeAttrs {
  return { size: e.width, strongSize: e.width * 1.4 + 0.6, color: e.color, strongColor: e.strongColor };
}

function sameNode(a: NodeAttrs, b: NodeAttrs): boolean {
  return (
    a.x === b.x &&
    a.y === b.y &&
    a.size === b.size &&
    a.color === b.color &&
    a.label === b.label &&
    a.shape === b.shape
  );
}

/** Above this many edges, edges are hidden while the camera moves. */
export const BIG_GRAPH_EDGES = 20_000;

const BACKDROP_OFF = { backdropVisibility: 'hidden' } as const;

function createSigma(graph: G, container: HTMLElement, draggable: boolean) {
  return new Sigma<NodeAttrs, EdgeAttrs, object, NodeState>(graph, container, {
    primitives: {
      // The veil (see veil.ts) sits between resting and highlighted items.
      depthLayers: ['edges', 'nodes', 'veil', 'topEdges', 'topNodes'],
      nodes: {
        shapes: [sdfCircle(), sdfDiamond(), sdfSquare()],
        layers: [layerFill()],
        label: { font: { family: 'system-ui, sans-serif' }, color: COLORS.text, margin: 4 },
      },
    },
    customNodeState: { selected: false, pinned: false, marked: false },
    styles: {
      nodes: [
        {
          x: { attribute: 'x' },
          y: { attribute: 'y' },
          size: { attribute: 'size' },
          color: { attribute: 'color' },
          shape: { attribute: 'shape' },
          label: { attribute: 'label' },
          labelVisibility: { attribute: 'labelVis', defaultValue: 'auto' },
          labelPosition: { attribute: 'labelPos', defaultValue: 'right' },
          labelSize: 11,
          depth: 'nodes',
          ...BACKDROP_OFF,
        },
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
          },
        },
        { whenState: 'isHighlighted', then: { depth: 'topNodes', labelVisibility: 'visible' } },
        {
          whenState: 'selected',
          then: {
            depth: 'topNodes',
            labelVisibility: 'visible',
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
        {
          whenState: 'isHovered',
          then: {
            depth: 'topNodes',
            labelVisibility: 'visible',
            size: { attribute: 'hoverSize' },
            backdropVisibility: 'visible',
            backdropArea: 'both',
            backdropColor: '#ffffff',
            backdropShadowColor: 'rgba(0, 0, 0, 0.35)',
            backdropShadowBlur: 10,
            backdropPadding: 5,
          },
        },
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
      labelDensity: 0.6,
      labelGridCellSize: 120,
      labelRenderedSizeThreshold: 7,
      stagePadding: 40,
      zoomDuration: 150,
      minCameraRatio: 0.02,
      maxCameraRatio: 4,
      enableNodeDrag: draggable,
      dragPositionToAttributes: draggable ? (p) => ({ x: p.x, y: p.y }) : null,
    },
  });
}

type SigmaInstance = ReturnType<typeof createSigma>;

export class GraphCanvas {
  private graph: G = new Graph<NodeAttrs, EdgeAttrs>({ type: 'directed', multi: false });
  /**
   * Created with the first scene, and created again (camera kept) for changes too big to diff:
   * sigma 4's setGraph leaves its parallel-edge index on the old graph, so it is never used.
   */
  private sigma: SigmaInstance | null = null;
  private highlighted: { nodes: string[]; edges: string[] } = { nodes: [], edges: [] };
  private hoverId: string | null = null;
  private selectedId: string | null = null;
  private pinnedIds = new Set<string>();
  private markedIds = new Set<string>();
  private bbox: Scene['frame']['bbox'] | null = null;
  private bboxKey = '';
  private big = false;
  private syncingCamera = false;
  private killed = false;

  constructor(
    readonly container: HTMLElement,
    private readonly opts: CanvasOptions = {},
  ) {
    registry.add(this);
  }

  private create(graph: G, camera: CameraState | null): SigmaInstance {
    this.sigma?.kill();
    this.graph = graph;
    const s = createSigma(graph, this.container, this.opts.draggable ?? false);
    this.sigma = s;
    // 'veil' is declared in primitives.depthLayers (the explicit type arguments hide it from the type).
    s.addCustomLayerProgram('veil', 'veil' as never, (gl) =>
      createVeil(gl, () => this.hoverId !== null && this.highlighted.nodes.length > 0, [1, 1, 1, 0.72]),
    );
    if (this.bbox) s.setCustomBBox(this.bbox);
    s.setSetting('hideEdgesOnMove', this.big);
    s.setSetting('hideLabelsOnMove', this.big);
    if (camera) s.getCamera().setState(camera);
    this.bindEvents(s);
    return s;
  }

  private bindEvents(s: SigmaInstance): void {
    s.on('enterNode', ({ node }) => this.opts.onHover?.(node));
    s.on('leaveNode', () => this.opts.onHover?.(null));
    s.on('clickNode', ({ node, event }) => {
      const o = event.original as MouseEvent;
      this.opts.onClick?.(node, { ctrl: !!(o.ctrlKey || o.metaKey), shift: !!o.shiftKey });
    });
    s.on('clickStage', () => this.opts.onStageClick?.());
    s.on('nodeDragEnd', ({ node }) => {
      const a = this.graph.getNodeAttributes(node);
      this.opts.onDragEnd?.(node, { x: a.x, y: a.y });
    });
    s.getCamera().on('updated', (state) => {
      if (!this.syncingCamera) this.opts.onCamera?.(state);
    });
  }

  /** Replaces what is drawn by `scene` (a diff when it is small, a rebuild otherwise). */
  setScene(scene: Scene): void {
    if (this.killed) return;
    // Big graphs: draw nodes only while the camera moves (edges and labels come back at rest).
    const big = scene.edges.length > BIG_GRAPH_EDGES;
    const key = `${scene.frame.bbox.x.join(',')}|${scene.frame.bbox.y.join(',')}`;
    const bboxChanged = key !== this.bboxKey;
    this.bbox = scene.frame.bbox;
    this.bboxKey = key;
    const g = this.graph;
    const want = new Set<string>();
    for (const n of scene.nodes) want.add(n.id);
    const wantEdges = new Set<string>();
    for (const e of scene.edges) wantEdges.add(e.id);
    let removedEdges = 0;
    g.forEachEdge((e) => {
      if (!wantEdges.has(e)) removedEdges++;
    });
    const change = removedEdges + Math.abs(scene.edges.length - (g.size - removedEdges));
    if (!this.sigma || change > 20_000) {
      this.big = big;
      this.rebuild(scene);
    } else {
      const s = this.sigma;
      if (bboxChanged) s.setCustomBBox(scene.frame.bbox);
      if (big !== this.big) {
        this.big = big;
        s.setSetting('hideEdgesOnMove', big);
        s.setSetting('hideLabelsOnMove', big);
      }
      // Edges first, one by one: sigma 4 does not forget the edges graphology drops
      // implicitly with their node (its parallel-edge index keeps them).
      const dropEdges: string[] = [];
      g.forEachEdge((e, _a, src, tgt) => {
        if (!wantEdges.has(e) || !want.has(src) || !want.has(tgt)) dropEdges.push(e);
      });
      for (const e of dropEdges) g.dropEdge(e);
      const dropNodes: string[] = [];
      g.forEachNode((n) => {
        if (!want.has(n)) dropNodes.push(n);
      });
      for (const n of dropNodes) g.dropNode(n);
      for (const n of scene.nodes) {
        const a = nodeAttrs(n);
        if (!g.hasNode(n.id)) g.addNode(n.id, a);
        else if (!sameNode(g.getNodeAttributes(n.id), a)) g.replaceNodeAttributes(n.id, a);
      }
      for (const e of scene.edges) {
        const a = edgeAttrs(e);
        if (!g.hasEdge(e.id)) g.addEdgeWithKey(e.id, e.source, e.target, a);
        else {
          const old = g.getEdgeAttributes(e.id);
          if (old.size !== a.size || old.color !== a.color) g.replaceEdgeAttributes(e.id, a);
        }
      }
    }
    this.reapplyStates();
  }

  private rebuild(scene: Scene): void {
    const g = new Graph<NodeAttrs, EdgeAttrs>({ type: 'directed', multi: false });
    for (const n of scene.nodes) g.addNode(n.id, nodeAttrs(n));
    for (const e of scene.edges) g.addEdgeWithKey(e.id, e.source, e.target, edgeAttrs(e));
    const camera = this.sigma ? this.sigma.getCamera().getState() : null;
    this.highlighted = { nodes: [], edges: [] };
    this.create(g, camera);
  }

  private reapplyStates(): void {
    const hover = this.hoverId;
    this.hoverId = null;
    this.setHover(hover);
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

  /** Highlights a node's neighbourhood (or clears it with null). */
  setHover(id: string | null): void {
    if (this.killed || id === this.hoverId) return;
    const s = this.sigma;
    const g = this.graph;
    this.hoverId = id;
    if (!s) return;
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
    if (id === null || !g.hasNode(id)) {
      this.highlighted = { nodes: [], edges: [] };
      s.scheduleRender();
      return;
    }
    const nodes = [id, ...g.neighbors(id)];
    const edges = g.edges(id);
    s.setNodesState(nodes, { isHighlighted: true });
    s.setEdgesState(edges, { isHighlighted: true });
    this.highlighted = { nodes, edges };
    s.scheduleRender();
  }

  setSelected(id: string | null): void {
    if (this.killed || id === this.selectedId) return;
    const g = this.graph;
    const s = this.sigma;
    if (s && this.selectedId && g.hasNode(this.selectedId))
      s.setNodeState(this.selectedId, { selected: false });
    this.selectedId = id;
    if (s && id && g.hasNode(id)) s.setNodeState(id, { selected: true });
  }

  setPinned(ids: ReadonlySet<string>): void {
    if (this.killed) return;
    this.setFlag('pinned', this.pinnedIds, ids);
    this.pinnedIds = new Set(ids);
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

  hasNode(id: string): boolean {
    return this.graph.hasNode(id);
  }

  counts(): { nodes: number; edges: number } {
    return { nodes: this.graph.order, edges: this.graph.size };
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
    this.sigma?.kill();
    this.sigma = null;
    this.graph.clear();
  }
}
