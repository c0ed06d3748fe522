/**
 * A decode thread of the parallel decoder (parallel-decode.ts): reads a tensor's bytes from its
 * file, decodes them to float32 into a fresh array, checks that every value is finite, and sends
 * the array back (moved, not copied). One message per tensor.
 */
import fs from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { DTYPE_SIZE, decodeToFloat32 } from './dtype.ts';
import type { DecodeRun, DecodeRunReply } from './parallel-decode.ts';

/** Bytes read per piece (a tensor is decoded through it; F32 is read in place). */
const PIECE_BYTES = 8 * 1024 * 1024;
/** Bytes of an F32 tensor read in place per view. */
const F32_WINDOW_BYTES = 1 << 30;

const port = parentPort;
if (!port) throw new Error('decode-thread runs as a worker thread');

let piece: Uint8Array | null = null;

/** Reads exactly `length` bytes at `position` into `into` (from its start). */
function readFully(fd: number, into: Uint8Array, length: number, position: number): void {
  let done = 0;
  while (done < length) {
    const n = fs.readSync(fd, into, done, length - done, position + done);
    if (n === 0) {
      throw Object.assign(new Error(`file ends ${length - done} bytes short of the tensor's data`), {
        truncated: true,
      });
    }
    done += n;
  }
}

/** The values, or the first one that is not finite (x − x is 0 exactly for finite x). */
function decode(fd: number, run: DecodeRun, out: Float32Array): DecodeRunReply | null {
  const size = DTYPE_SIZE[run.dtype];
  if (run.dtype === 'F32') {
    // In place, a window at a time: one Uint8Array view cannot span more than 4 GiB.
    for (let at = 0; at < out.byteLength; at += F32_WINDOW_BYTES) {
      const m = Math.min(F32_WINDOW_BYTES, out.byteLength - at);
      readFully(fd, new Uint8Array(out.buffer, out.byteOffset + at, m), m, run.byteOffset + at);
    }
  } else {
    if (!piece) piece = new Uint8Array(PIECE_BYTES);
    const step = Math.floor(PIECE_BYTES / size);
    for (let i = 0; i < run.count; i += step) {
      const m = Math.min(step, run.count - i);
      readFully(fd, piece, m * size, run.byteOffset + i * size);
      decodeToFloat32(run.dtype, piece.subarray(0, m * size), out.subarray(i, i + m));
    }
  }
  for (let i = 0; i < out.length; i++) {
    const v = out[i];
    if (v - v !== 0) return { id: run.id, ok: false, kind: 'nonfinite', element: i, value: v };
  }
  return null;
}

/** The file is opened per tensor: a terminated thread leaves no descriptor open. */
function decodeRun(run: DecodeRun): { reply: DecodeRunReply; transfer: ArrayBuffer[] } {
  const fd = fs.openSync(run.file, 'r');
  try {
    const out = new Float32Array(run.count);
    const bad = decode(fd, run, out);
    if (bad) return { reply: bad, transfer: [] };
    return { reply: { id: run.id, ok: true, values: out }, transfer: [out.buffer as ArrayBuffer] };
  } finally {
    fs.closeSync(fd);
  }
}

port.on('message', (msg: DecodeRun) => {
  let done: { reply: DecodeRunReply; transfer: ArrayBuffer[] };
  try {
    done = decodeRun(msg);
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { truncated?: boolean };
    const kind = err.truncated ? 'truncated' : err.code === 'ENOENT' ? 'missing' : 'io';
    done = { reply: { id: msg.id, ok: false, kind, message: err.message ?? String(e) }, transfer: [] };
  }
  port.postMessage(done.reply, done.transfer);
});
