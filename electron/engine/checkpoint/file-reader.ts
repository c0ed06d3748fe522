/**
 * Positional reads from a file kept open lazily (opened on first use, reopened after close),
 * with every failure turned into an EngineError naming the file.
 */
import fs from 'node:fs';
import { EngineError, type EngineErrorContext } from '../errors.ts';

/** Largest single readSync request (readSync takes an int32 length). */
const MAX_READ = 1 << 30;

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
        fd = fs.openSync(this.path, 'r');
      } catch (e) {
        throw fsError(e, 'cannot open file', { file: this.path });
      }
      try {
        if (fs.fstatSync(fd).isDirectory()) {
          throw new EngineError('io', 'expected a file, found a directory', { file: this.path });
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
   * Read exactly `length` bytes at `position` into `target[targetOffset..]`. A short read
   * (the file shrank or ends early) is EngineError('truncated').
   */
  readInto(
    target: Uint8Array,
    targetOffset: number,
    length: number,
    position: number,
    context: EngineErrorContext = {},
  ): void {
    const fd = this.open();
    let done = 0;
    while (done < length) {
      const want = Math.min(length - done, MAX_READ);
      let got: number;
      try {
        got = fs.readSync(fd, target, targetOffset + done, want, position + done);
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
