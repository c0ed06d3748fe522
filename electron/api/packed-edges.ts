/**
 * The packed form of a view's edges: parallel typed arrays (source and target view indices as
 * Uint32, weights as Float32), each sent as base64 of its little-endian bytes. A 1M-edge view
 * is then ~16 MB of JSON text parsed as three strings, instead of three million numbers (the
 * weights printed as 17-digit doubles), and the renderer gets typed arrays without per-number
 * parsing. Base64 in JSON travels the same over WebSocket text frames and Electron IPC.
 *
 * Dependency-free (no Node Buffer, types only from the contract): the renderer imports it.
 */
import { ApiError } from './api-error.ts';
import type { GraphView, MergedEdge, PackedMergedEdges, PackedViewEdges, TraceDiff } from './contract.ts';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const CODE = new Uint8Array(64);
for (let i = 0; i < 64; i++) CODE[i] = ALPHABET.charCodeAt(i);
/** ASCII code → 6-bit value; 255 for characters outside the alphabet. */
const VALUE = new Uint8Array(256).fill(255);
for (let i = 0; i < 64; i++) VALUE[ALPHABET.charCodeAt(i)] = i;
const PAD = 61; // '='

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Base64 length of n bytes (padded). */
export const base64Length = (n: number) => 4 * Math.ceil(n / 3);

/** Standard padded base64 of `bytes`. */
export function bytesToBase64(bytes: Uint8Array): string {
  const n = bytes.length;
  const out = new Uint8Array(base64Length(n));
  let o = 0;
  let i = 0;
  for (; i + 2 < n; i += 3) {
    const v = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
    out[o++] = CODE[v >> 18];
    out[o++] = CODE[(v >> 12) & 63];
    out[o++] = CODE[(v >> 6) & 63];
    out[o++] = CODE[v & 63];
  }
  if (i < n) {
    const v = (bytes[i] << 16) | (i + 1 < n ? bytes[i + 1] << 8 : 0);
    out[o++] = CODE[v >> 18];
    out[o++] = CODE[(v >> 12) & 63];
    out[o++] = i + 1 < n ? CODE[(v >> 6) & 63] : PAD;
    out[o++] = PAD;
  }
  // ASCII bytes decode to the same characters; TextDecoder avoids building the string a char at a time.
  return new TextDecoder().decode(out);
}

/** Bytes of standard padded base64; throws on a bad length or a character outside the alphabet. */
export function base64ToBytes(text: string, what = 'base64'): Uint8Array {
  const n = text.length;
  if (n % 4 !== 0) throw packedError(`${what}: length ${n} is not a multiple of 4`);
  if (n === 0) return new Uint8Array(0);
  const chars = new TextEncoder().encode(text);
  // A non-ASCII character encodes to more than one byte.
  if (chars.length !== n) throw packedError(`${what}: holds a character that is not base64`);
  const pad = chars[n - 1] === PAD ? (chars[n - 2] === PAD ? 2 : 1) : 0;
  const out = new Uint8Array((n / 4) * 3 - pad);
  let o = 0;
  let bad = 0;
  const full = pad ? n - 4 : n;
  for (let i = 0; i < full; i += 4) {
    const a = VALUE[chars[i]];
    const b = VALUE[chars[i + 1]];
    const c = VALUE[chars[i + 2]];
    const d = VALUE[chars[i + 3]];
    bad |= a | b | c | d;
    const v = (a << 18) | (b << 12) | (c << 6) | d;
    out[o++] = v >> 16;
    out[o++] = (v >> 8) & 255;
    out[o++] = v & 255;
  }
  if (pad) {
    const a = VALUE[chars[n - 4]];
    const b = VALUE[chars[n - 3]];
    const c = pad === 1 ? VALUE[chars[n - 2]] : 0;
    bad |= a | b | c;
    const v = (a << 18) | (b << 12) | (c << 6);
    out[o++] = v >> 16;
    if (pad === 1) out[o++] = (v >> 8) & 255;
  }
  // Every valid value is < 64; 255 (not in the alphabet) sets bits above 63.
  if (bad > 63) throw packedError(`${what}: holds a character that is not base64`);
  return out;
}

/** The little-endian bytes of a 4-byte-per-element typed array (a copy only on big-endian hosts). */
function littleEndianBytes(a: Uint32Array | Float32Array): Uint8Array {
  const bytes = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  return LITTLE_ENDIAN ? bytes : swapWords(bytes);
}

function swapWords(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i += 4) {
    out[i] = bytes[i + 3];
    out[i + 1] = bytes[i + 2];
    out[i + 2] = bytes[i + 1];
    out[i + 3] = bytes[i];
  }
  return out;
}

export interface ViewEdgeArrays {
  source: Uint32Array;
  target: Uint32Array;
  weight: Float32Array;
}

export function packEdges(e: ViewEdgeArrays): PackedViewEdges {
  const count = e.source.length;
  if (e.target.length !== count || e.weight.length !== count)
    throw packedError(`edge arrays differ in length (${count}, ${e.target.length}, ${e.weight.length})`);
  return {
    count,
    source: bytesToBase64(littleEndianBytes(e.source)),
    target: bytesToBase64(littleEndianBytes(e.target)),
    weight: bytesToBase64(littleEndianBytes(e.weight)),
  };
}

/**
 * Typed arrays of packed edges, checked: each array holds exactly `count` × 4 bytes, and every
 * source and target is a node index < `nodeCount`.
 */
export function unpackEdges(p: PackedViewEdges, nodeCount: number): ViewEdgeArrays {
  const { count } = p;
  if (!Number.isSafeInteger(count) || count < 0)
    throw packedError(`count ${count} is not a whole number ≥ 0`);
  const words = (text: unknown, name: string): ArrayBuffer => {
    if (typeof text !== 'string') throw packedError(`${name} is not a base64 string`);
    const bytes = base64ToBytes(text, `packed edges: ${name}`);
    if (bytes.length !== count * 4)
      throw packedError(`${name} holds ${bytes.length} bytes, expected ${count * 4} (${count} edges × 4)`);
    return (LITTLE_ENDIAN ? bytes : swapWords(bytes)).buffer as ArrayBuffer;
  };
  const source = new Uint32Array(words(p.source, 'source'));
  const target = new Uint32Array(words(p.target, 'target'));
  const weight = new Float32Array(words(p.weight, 'weight'));
  let maxIndex = 0;
  for (let e = 0; e < count; e++) {
    const s = source[e];
    const t = target[e];
    if (s > maxIndex) maxIndex = s;
    if (t > maxIndex) maxIndex = t;
  }
  if (count > 0 && maxIndex >= nodeCount) {
    const e = source.findIndex((s, i) => s >= nodeCount || target[i] >= nodeCount);
    throw packedError(
      `edge ${e} (${source[e]} → ${target[e]}) names a node index ≥ the view's ${nodeCount} nodes`,
    );
  }
  return { source, target, weight };
}

/**
 * A view asked for with `edges: 'packed'`, with its edges as typed arrays (`packedEdges`
 * removed). A view without packed edges is returned as it is.
 */
export function decodeViewEdges(view: GraphView): GraphView {
  if (!view.packedEdges) return view;
  view.edges = unpackEdges(view.packedEdges, view.nodes.length);
  delete view.packedEdges;
  return view;
}

/** A diff's merged edges as typed arrays; a weight is NaN where the edge is not in that graph. */
export interface MergedEdgeArrays {
  source: Uint32Array;
  target: Uint32Array;
  weightA: Float32Array;
  weightB: Float32Array;
}

/** Merged edges as typed arrays (a weight absent on a side: NaN). */
function mergedObjectsToArrays(edges: readonly MergedEdge[]): MergedEdgeArrays {
  const n = edges.length;
  const out: MergedEdgeArrays = {
    source: new Uint32Array(n),
    target: new Uint32Array(n),
    weightA: new Float32Array(n),
    weightB: new Float32Array(n),
  };
  for (let i = 0; i < n; i++) {
    const e = edges[i];
    out.source[i] = e.source;
    out.target[i] = e.target;
    out.weightA[i] = e.weight_a ?? Number.NaN;
    out.weightB[i] = e.weight_b ?? Number.NaN;
  }
  return out;
}

export function packMergedEdges(edges: readonly MergedEdge[]): PackedMergedEdges {
  const a = mergedObjectsToArrays(edges);
  const b64 = (x: Uint32Array | Float32Array) => bytesToBase64(littleEndianBytes(x));
  return {
    count: edges.length,
    source: b64(a.source),
    target: b64(a.target),
    weightA: b64(a.weightA),
    weightB: b64(a.weightB),
  };
}

/** Typed arrays of packed merged edges, checked as unpackEdges checks a view's (indices < `nodeCount`). */
export function unpackMergedEdges(p: PackedMergedEdges, nodeCount: number): MergedEdgeArrays {
  const a = unpackEdges({ count: p.count, source: p.source, target: p.target, weight: p.weightA }, nodeCount);
  const b = unpackEdges({ count: p.count, source: p.source, target: p.target, weight: p.weightB }, nodeCount);
  return { source: a.source, target: a.target, weightA: a.weight, weightB: b.weight };
}

/** The merged edges of a diff as typed arrays, whichever form they came in. */
export function mergedEdgeArrays(m: NonNullable<TraceDiff['merged']>): MergedEdgeArrays {
  return m.packedEdges ? unpackMergedEdges(m.packedEdges, m.nodes.length) : mergedObjectsToArrays(m.edges);
}

function packedError(message: string): ApiError {
  return new ApiError('internal', `packed edges: ${message}`);
}
