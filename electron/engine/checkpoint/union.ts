/**
 * A TensorStore made of several stores (shards, per-layer files): each name resolves to
 * exactly one member store.
 */
import { EngineError } from '../errors.ts';
import type { TensorInfo, TensorStore } from './tensor.ts';

export interface UnionTensorStoreOptions {
  /**
   * Explicit name → store mapping (a sharded index's weight_map). Without it, the union of
   * all member names is used and a name found in two members is EngineError('header').
   */
  mapping?: ReadonlyMap<string, TensorStore>;
  /** File named in errors about the union as a whole (an index file, a folder). */
  file?: string;
}

export class UnionTensorStore implements TensorStore {
  readonly description: string;
  readonly stores: readonly TensorStore[];
  private readonly owner = new Map<string, TensorStore>();
  private readonly file: string | undefined;

  constructor(description: string, stores: readonly TensorStore[], options: UnionTensorStoreOptions = {}) {
    this.description = description;
    this.stores = [...stores];
    this.file = options.file;
    if (options.mapping) {
      for (const [name, store] of options.mapping) {
        if (!store.has(name)) {
          throw new EngineError('missing', `tensor is mapped to ${store.description} but is not in it`, {
            file: this.file,
            tensor: name,
          });
        }
        this.owner.set(name, store);
      }
    } else {
      for (const store of stores) {
        for (const name of store.names()) {
          const prev = this.owner.get(name);
          if (prev) {
            const info = store.info(name);
            throw new EngineError(
              'header',
              `duplicate tensor: found in both ${prev.description} and ${store.description}`,
              { file: info.sourceFile, tensor: name },
            );
          }
          this.owner.set(name, store);
        }
      }
    }
  }

  names(): string[] {
    return [...this.owner.keys()];
  }

  has(name: string): boolean {
    return this.owner.has(name);
  }

  /** The member store holding `name` (EngineError('missing') if none). */
  storeOf(name: string): TensorStore {
    const s = this.owner.get(name);
    if (!s) {
      throw new EngineError('missing', `tensor not found in ${this.description}`, {
        file: this.file,
        tensor: name,
      });
    }
    return s;
  }

  info(name: string): TensorInfo {
    return this.storeOf(name).info(name);
  }

  readRaw(name: string): Uint8Array {
    return this.storeOf(name).readRaw(name);
  }

  readRawRange(name: string, byteStart: number, byteLength: number): Uint8Array {
    return this.storeOf(name).readRawRange(name, byteStart, byteLength);
  }

  readFloat32Range(name: string, start: number, out: Float32Array): Float32Array {
    return this.storeOf(name).readFloat32Range(name, start, out);
  }

  readFloat32(name: string, out?: Float32Array): Float32Array {
    return this.storeOf(name).readFloat32(name, out);
  }

  readRowsFloat32(name: string, rows: readonly number[]): Float32Array {
    return this.storeOf(name).readRowsFloat32(name, rows);
  }

  close(): void {
    for (const s of this.stores) s.close();
  }
}
