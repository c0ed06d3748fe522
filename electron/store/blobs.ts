/** Typed arrays ↔ SQLite BLOBs (little-endian, as the machine stores them). */

export function blob(a: Int32Array | Float32Array): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

function aligned(b: Uint8Array): Uint8Array {
  return b.byteOffset % 4 === 0 ? b : new Uint8Array(b);
}

export function int32s(b: Uint8Array): Int32Array {
  const a = aligned(b);
  return new Int32Array(a.buffer, a.byteOffset, Math.floor(a.byteLength / 4));
}

export function float32s(b: Uint8Array): Float32Array {
  const a = aligned(b);
  return new Float32Array(a.buffer, a.byteOffset, Math.floor(a.byteLength / 4));
}

/** JSON.parse of a column the store wrote itself. */
export function parseJson<T>(text: string | null): T | null {
  return text === null ? null : (JSON.parse(text) as T);
}
