/**
 * External-data sink: tensors are appended to one weights file inside the compiled model's
 * folder (ONNX Runtime only accepts external data there). Float32 checkpoint files can
 * instead be hard-linked into the folder and referenced in place, so the weights exist
 * once on disk; a failed link (other filesystem) falls back to copying into weights.bin.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { TensorData } from './model-proto.ts';

const PAGE = 4096;

export class ExternalWeights {
  private fd: number;
  private offset = 0;
  private readonly linked = new Map<string, string | null>();
  bytesWritten = 0;
  bytesLinked = 0;

  constructor(
    private readonly dir: string,
    private readonly fileName = 'weights.bin',
  ) {
    this.fd = fs.openSync(path.join(dir, fileName), 'w');
  }

  /** Appends bytes; large tensors start on a page boundary so the runtime may map them. */
  add(bytes: Uint8Array): TensorData {
    const align = bytes.length >= PAGE ? PAGE : 64;
    const pad = (align - (this.offset % align)) % align;
    if (pad) {
      fs.writeSync(this.fd, new Uint8Array(pad), 0, pad, this.offset);
      this.offset += pad;
    }
    const start = this.offset;
    let written = 0;
    while (written < bytes.length) {
      written += fs.writeSync(this.fd, bytes, written, bytes.length - written, start + written);
    }
    this.offset += bytes.length;
    this.bytesWritten += bytes.length;
    return { kind: 'external', location: this.fileName, offset: start, length: bytes.length };
  }

  addFloat32(data: Float32Array): TensorData {
    return this.add(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }

  /**
   * References `length` bytes at `offset` of `sourceFile` in place through a hard link.
   * Returns null when the file cannot be linked (the caller then copies the bytes).
   */
  reference(sourceFile: string, offset: number, length: number): TensorData | null {
    let local = this.linked.get(sourceFile);
    if (local === undefined) {
      local = `src-${this.linked.size}${path.extname(sourceFile)}`;
      try {
        fs.linkSync(fs.realpathSync(sourceFile), path.join(this.dir, local));
      } catch {
        local = null;
      }
      this.linked.set(sourceFile, local);
    }
    if (local === null) return null;
    this.bytesLinked += length;
    return { kind: 'external', location: local, offset, length };
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}
