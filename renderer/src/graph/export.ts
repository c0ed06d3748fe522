/**
 * Image export of a scene: SVG (vector; labels, legend and prompt as real text) and PNG (the
 * same SVG rasterized at the chosen size and scale). Built with DOM APIs and serialized with
 * XMLSerializer, so every piece of user or imported text ends up as an escaped text node.
 */
import type { Scene, SceneNode } from './scene.ts';
import { COLORS } from './style.ts';

const SVG_NS = 'http://www.w3.org/2000/svg';

export interface ExportOptions {
  width: number;
  height: number;
  /** Second line under the title (thresholds, counts). */
  subtitle?: string;
  /** Node ids to label whatever the density (pinned, selected). */
  emphasize?: ReadonlySet<string>;
}

type Attrs = Record<string, string | number>;

function el(doc: Document, name: string, attrs: Attrs = {}, text?: string): SVGElement {
  const e = doc.createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

function glyph(
  doc: Document,
  n: { glyph: string; color: string },
  x: number,
  y: number,
  r: number,
): SVGElement {
  if (n.glyph === 'square')
    return el(doc, 'rect', { x: x - r, y: y - r, width: 2 * r, height: 2 * r, fill: n.color });
  if (n.glyph === 'diamond') {
    return el(doc, 'polygon', {
      points: `${x},${y - r * 1.2} ${x + r * 1.2},${y} ${x},${y + r * 1.2} ${x - r * 1.2},${y}`,
      fill: n.color,
    });
  }
  return el(doc, 'circle', { cx: x, cy: y, r, fill: n.color });
}

const clip = (s: string, max = 48) => (s.length > max ? `${s.slice(0, max - 1)}…` : s);

/** The scene as an SVG document (a string with an XML declaration). */
export function sceneToSvg(scene: Scene, opts: ExportOptions): string {
  const doc = document.implementation.createDocument(SVG_NS, 'svg', null);
  const { width: W, height: H } = opts;
  const svg = doc.documentElement as unknown as SVGElement;
  svg.setAttribute('xmlns', SVG_NS);
  svg.setAttribute('width', String(W));
  svg.setAttribute('height', String(H));
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  svg.setAttribute('font-family', 'Helvetica, Arial, sans-serif');
  svg.appendChild(el(doc, 'title', {}, scene.title));
  svg.appendChild(el(doc, 'rect', { x: 0, y: 0, width: W, height: H, fill: COLORS.background }));

  const k = Math.min(3, Math.max(0.75, Math.min(W, H) / 700));
  const font = 11 * k;
  const top = 58 * k;
  const left = 54 * k;
  const bottom = 46 * k;
  const right = 16 * k;
  const legendH = 22 * k;
  const areaW = W - left - right;
  const areaH = H - top - bottom - legendH;
  const [bx0, bx1] = scene.frame.bbox.x;
  const [by0, by1] = scene.frame.bbox.y;
  const s = Math.min(areaW / (bx1 - bx0), areaH / (by1 - by0));
  const ox = left + (areaW - (bx1 - bx0) * s) / 2;
  const oy = top + (areaH - (by1 - by0) * s) / 2;
  const X = (x: number) => ox + (x - bx0) * s;
  const Y = (y: number) => oy + (by1 - y) * s;

  // Title: the prompt, then thresholds and counts.
  svg.appendChild(
    el(
      doc,
      'text',
      { x: 14 * k, y: 24 * k, 'font-size': 16 * k, 'font-weight': 600, fill: COLORS.text },
      clip(scene.title, 110),
    ),
  );
  if (opts.subtitle) {
    svg.appendChild(
      el(doc, 'text', { x: 14 * k, y: 44 * k, 'font-size': font, fill: '#4b5563' }, opts.subtitle),
    );
  }

  // Row and column guides.
  const guides = el(doc, 'g', { class: 'guides' });
  for (const r of scene.rows) {
    guides.appendChild(
      el(doc, 'line', {
        x1: left,
        x2: W - right,
        y1: Y(r.y),
        y2: Y(r.y),
        stroke: '#f1f5f9',
        'stroke-width': 1,
      }),
    );
    guides.appendChild(
      el(
        doc,
        'text',
        { x: left - 8 * k, y: Y(r.y) + font / 3, 'font-size': font, fill: '#6b7280', 'text-anchor': 'end' },
        r.label,
      ),
    );
  }
  for (const c of scene.columns) {
    guides.appendChild(
      el(
        doc,
        'text',
        {
          x: X(c.x),
          y: H - bottom - legendH + 28 * k,
          'font-size': font,
          fill: COLORS.text,
          'text-anchor': 'middle',
        },
        clip(c.label, 18),
      ),
    );
  }
  svg.appendChild(guides);

  const pos = new Map<string, SceneNode>();
  for (const n of scene.nodes) pos.set(n.id, n);
  const edges = el(doc, 'g', { class: 'edges', fill: 'none' });
  const sorted = [...scene.edges].sort((a, b) => a.rel - b.rel);
  for (const e of sorted) {
    const a = pos.get(e.source);
    const b = pos.get(e.target);
    if (!a || !b) continue;
    edges.appendChild(
      el(doc, 'line', {
        x1: X(a.x).toFixed(1),
        y1: Y(a.y).toFixed(1),
        x2: X(b.x).toFixed(1),
        y2: Y(b.y).toFixed(1),
        stroke: e.color,
        'stroke-width': (e.width * k * 0.8).toFixed(2),
      }),
    );
  }
  svg.appendChild(edges);

  const nodes = el(doc, 'g', { class: 'nodes' });
  for (const n of scene.nodes) {
    const g = glyph(doc, n, X(n.x), Y(n.y), n.size * k * 0.8);
    g.setAttribute('data-id', n.id);
    nodes.appendChild(g);
  }
  svg.appendChild(nodes);

  // Labels: always-on ones first, then by size, skipping any that would overlap.
  const labels = el(doc, 'g', { class: 'labels', 'font-size': font, fill: COLORS.text });
  const placed: Array<[number, number, number, number]> = [];
  const candidates = scene.nodes
    .filter((n) => n.kind !== 'token')
    .sort((a, b) => {
      const pa = a.labelMode === 'always' || opts.emphasize?.has(a.id) ? 1 : 0;
      const pb = b.labelMode === 'always' || opts.emphasize?.has(b.id) ? 1 : 0;
      return pb - pa || b.size - a.size;
    });
  for (const n of candidates) {
    const text = clip(n.label, 40);
    const w = text.length * font * 0.55;
    const r = n.size * k * 0.8;
    let x = X(n.x) + r + 3 * k;
    let y = Y(n.y) + font / 3;
    let anchor = 'start';
    if (n.labelPos === 'above') {
      x = X(n.x);
      y = Y(n.y) - r - 4 * k;
      anchor = 'middle';
    }
    const x0 = anchor === 'middle' ? x - w / 2 : x;
    const box: [number, number, number, number] = [x0, y - font, x0 + w, y + 2];
    const forced = n.labelMode === 'always' || opts.emphasize?.has(n.id);
    if (!forced && placed.some((p) => box[0] < p[2] && box[2] > p[0] && box[1] < p[3] && box[3] > p[1]))
      continue;
    if (!forced && placed.length > 60) continue;
    placed.push(box);
    labels.appendChild(el(doc, 'text', { x: x.toFixed(1), y: y.toFixed(1), 'text-anchor': anchor }, text));
  }
  svg.appendChild(labels);

  // Legend along the bottom.
  const legend = el(doc, 'g', { class: 'legend', 'font-size': font, fill: '#374151' });
  const ly = H - legendH / 2 - 4 * k;
  let lx = 14 * k;
  const hasGroups = scene.nodes.some((n) => n.kind === 'supernode');
  const entries: Array<[string, { glyph: string; color: string } | string]> = [
    ['feature', { glyph: 'circle', color: COLORS.feature }],
    ['error', { glyph: 'diamond', color: COLORS.error }],
    ['token', { glyph: 'square', color: COLORS.token }],
    ['logit', { glyph: 'square', color: COLORS.logit }],
    ...(hasGroups
      ? [
          ['supernode', { glyph: 'circle', color: COLORS.supernode }] as [
            string,
            { glyph: string; color: string },
          ],
        ]
      : []),
    ['positive edge', COLORS.positive],
    ['negative edge', COLORS.negative],
  ];
  for (const [name, g] of entries) {
    if (typeof g === 'string') {
      legend.appendChild(
        el(doc, 'line', { x1: lx, x2: lx + 18 * k, y1: ly, y2: ly, stroke: g, 'stroke-width': 2.5 * k }),
      );
      lx += 22 * k;
    } else {
      legend.appendChild(glyph(doc, g, lx + 5 * k, ly, 5 * k));
      lx += 14 * k;
    }
    legend.appendChild(el(doc, 'text', { x: lx, y: ly + font / 3 }, name));
    lx += (name.length * 0.58 + 1.6) * font;
  }
  svg.appendChild(legend);

  return `<?xml version="1.0" encoding="UTF-8"?>\n${new XMLSerializer().serializeToString(doc)}`;
}

/** Rasterizes an SVG document to a PNG of width·scale × height·scale pixels. */
export async function svgToPng(svgText: string, width: number, height: number, scale: number): Promise<Blob> {
  const url = URL.createObjectURL(new Blob([svgText], { type: 'image/svg+xml' }));
  try {
    const img = new Image();
    img.decoding = 'sync';
    await new Promise<void>((resolve, reject) => {
      img.onload = () => resolve();
      img.onerror = () => reject(new Error('the SVG could not be rasterized'));
      img.src = url;
    });
    const canvas = document.createElement('canvas');
    canvas.width = Math.round(width * scale);
    canvas.height = Math.round(height * scale);
    const ctx = canvas.getContext('2d');
    if (!ctx) throw new Error('no 2D canvas');
    ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
    return await new Promise<Blob>((resolve, reject) =>
      canvas.toBlob((b) => (b ? resolve(b) : reject(new Error('PNG encoding failed'))), 'image/png'),
    );
  } finally {
    URL.revokeObjectURL(url);
  }
}

export function downloadBlob(blob: Blob, fileName: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = fileName;
  a.rel = 'noopener';
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** A file name from a prompt. */
export function slug(text: string): string {
  return (
    text
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-|-$/g, '')
      .slice(0, 50) || 'graph'
  );
}
