/**
 * Positional reads from a file kept open lazily (opened on first use, reopened after close),
 * with every failure turned into an EngineError naming the file.
 */
import { constants as bufferConstants } from 'node:buffer';
import fs from 'node:fs';
import { EngineError, type EngineErrorContext } from '../errors.ts';

/**
 * Largest single readSync / writeSync request (both take an int32 length, so anything over
 * 2 GiB goes in pieces). Tests lower it to exercise the chunked paths with small files.
 */
export const IO_CHUNK = { bytes: 1 << 30 };

/**
 * Most elements one typed array can hold (V8's limit, which Node exposes as Buffer's maximum
 * length: 2³² in Node 20, so a Float32Array holds up to 16 GiB but a Uint8Array only 4 GiB).
 */
export const MAX_TYPED_ARRAY_LENGTH = bufferConstants.MAX_LENGTH;

/** Byte `offset`..`offset + length` of `view` as a Uint8Array (a window, no copy; length ≤ 4 GiB). */
export function byteWindow(view: ArrayBufferView, offset: number, length: number): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset + offset, length);
}

/** Throws EngineError('resources') when `length` elements do not fit in one typed array. */
export function assertArrayLength(length: number, what: string, context: EngineErrorContext = {}): void {
  if (length > MAX_TYPED_ARRAY_LENGTH) {
    throw new EngineError(
      'resources',
      `${what} has ${length} elements, more than one array can hold (${MAX_TYPED_ARRAY_LENGTH}); read it in parts`,
      context,
    );
  }
}

/** EngineError for a failed fs call on `file`: ENOENT → 'missing', anything else → 'io'. */
export function fsError(e: unknown, what: string, context: EngineErrorContext): EngineError {
  const err = e as NodeJS.ErrnoException;
  const code = err?.code === 'ENOENT' ? 'missing' : 'io';
  const reason = err?.code === 'ENOENT' ? 'no such file' : (err?.message ?? String(e));
  return new EngineError(code, `${what}: ${reason}`, context);
}

export class FileReader {
  private fd: number | null = null;

  constructor(readonly path: string) {}

  /** Open now (throws 'missing' / 'io'); further reads reuse the descriptor. */
  open(): number {
    if (this.fd === null) {
      let fd: number;
      try {
        // non-blocking, so a FIFO fails the regular-file check below instead of blocking here
        fd = fs.openSync(this.path, fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0));
      } catch (e) {
        throw fsError(e, 'cannot open file', { file: this.path });
      }
      try {
        const st = fs.fstatSync(fd);
        if (st.isDirectory()) {
          throw new EngineError('io', 'expected a file, found a directory', { file: this.path });
        }
        if (!st.isFile()) {
          throw new EngineError('io', 'expected a regular file, found a device, FIFO or socket', {
            file: this.path,
          });
        }
      } catch (e) {
        fs.closeSync(fd);
        if (e instanceof EngineError) throw e;
        throw fsError(e, 'cannot stat file', { file: this.path });
      }
      this.fd = fd;
    }
    return this.fd;
  }

  size(): number {
    const fd = this.open();
    try {
      return fs.fstatSync(fd).size;
    } catch (e) {
      throw fsError(e, 'cannot stat file', { file: this.path });
    }
  }

  /**
   * Read exactly `length` bytes at `position` into `target`'s bytes from `targetOffset` on
   * (any typed array; offsets and lengths in bytes, 64-bit safe, read in IO_CHUNK pieces). A
   * short read (the file shrank or ends early) is EngineError('truncated').
   */
  readInto(
    target: ArrayBufferView,
    targetOffset: number,
    length: number,
    position: number,
    context: EngineErrorContext = {},
  ): void {
    const fd = this.open();
    let done = 0;
    while (done < length) {
      const want = Math.min(length - done, IO_CHUNK.bytes);
      let got: number;
      try {
        got = fs.readSync(fd, byteWindow(target, targetOffset + done, want), 0, want, position + done);
      } catch (e) {
        throw fsError(e, 'read failed', { ...context, file: this.path });
      }
      if (got === 0) {
        throw new EngineError(
          'truncated',
          `file ends at byte ${position + done}, expected ${length} bytes from byte ${position}`,
          { ...context, file: this.path },
        );
      }
      done += got;
    }
  }

  /** A fresh (aligned) buffer with `length` bytes read at `position`. */
  read(position: number, length: number, context: EngineErrorContext = {}): Uint8Array {
    assertArrayLength(length, `a read of ${length} bytes`, { ...context, file: this.path });
    const out = new Uint8Array(length);
    this.readInto(out, 0, length, position, context);
    return out;
  }

  close(): void {
    if (this.fd !== null) {
      try {
        fs.closeSync(this.fd);
      } catch {
        // already closed: nothing to release
      }
      this.fd = null;
    }
  }
}
