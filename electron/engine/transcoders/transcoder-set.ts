/**
 * The TranscoderSet over opened layers: float32 accessors that re-orient transposed storage,
 * decoder rows read on demand, and the content key.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { EngineError } from '../errors.ts';
import { closeQuietly, type LayerSource, layerTensorInfos } from './layer-source.ts';
import { gatherColumns, transpose } from './orientation.ts';
import type {
  EncoderInfo,
  LayerTensors,
  TranscoderActivation,
  TranscoderKind,
  TranscoderLayout,
  TranscoderSet,
} from './types.ts';
import type { LayerGeometry } from './validate.ts';

export interface TranscoderSetParts {
  kind: TranscoderKind;
  layout: TranscoderLayout;
  dir: string;
  configFile: string | null;
  modelName?: string;
  readHook: string;
  writeHook: string;
  activation: TranscoderActivation;
  layers: LayerSource[];
  geometries: LayerGeometry[];
}

export class LoadedTranscoderSet implements TranscoderSet {
  readonly kind: TranscoderKind;
  readonly layout: TranscoderLayout;
  readonly dir: string;
  readonly configFile: string | null;
  readonly modelName?: string;
  readonly nLayers: number;
  readonly dModel: number;
  readonly dTranscoder: number;
  readonly dTranscoderPerLayer: readonly number[];
  readonly readHook: string;
  readonly writeHook: string;
  readonly activation: TranscoderActivation;
  readonly hasSkip: boolean;
  private readonly layers: LayerSource[];
  private readonly geometries: LayerGeometry[];

  constructor(p: TranscoderSetParts) {
    this.kind = p.kind;
    this.layout = p.layout;
    this.dir = p.dir;
    this.configFile = p.configFile;
    if (p.modelName !== undefined) this.modelName = p.modelName;
    this.readHook = p.readHook;
    this.writeHook = p.writeHook;
    this.activation = p.activation;
    this.layers = p.layers;
    this.geometries = p.geometries;
    this.nLayers = p.layers.length;
    this.dModel = p.geometries[0]?.dModel ?? 0;
    this.dTranscoderPerLayer = Object.freeze(p.geometries.map((g) => g.dTranscoder));
    this.dTranscoder = Math.max(0, ...this.dTranscoderPerLayer);
    this.hasSkip = p.layers.some((l) => l.refs.W_skip !== undefined);
  }

  private layer(l: number): { src: LayerSource; geo: LayerGeometry } {
    if (!Number.isInteger(l) || l < 0 || l >= this.nLayers) {
      throw new EngineError('argument', `layer ${l} out of range [0, ${this.nLayers})`, {
        file: this.configFile ?? this.dir,
        field: 'layer',
      });
    }
    return { src: this.layers[l], geo: this.geometries[l] };
  }

  layerFiles(l: number): readonly string[] {
    return this.layer(l).src.files;
  }

  layerTensors(l: number): LayerTensors {
    return layerTensorInfos(this.layer(l).src);
  }

  contentKey(): string {
    const files = new Set<string>();
    if (this.configFile) files.add(this.configFile);
    for (const l of this.layers) for (const f of l.files) files.add(f);
    const h = createHash('sha256');
    h.update(`${this.kind}\n`);
    for (const f of [...files].sort()) {
      let size = -1;
      let mtime = -1;
      try {
        const st = fs.statSync(f);
        size = st.size;
        mtime = st.mtimeMs;
      } catch {
        // a vanished file changes the key
      }
      h.update(`${path.relative(this.dir, f)}\0${size}\0${mtime}\n`);
    }
    return h.digest('hex').slice(0, 32);
  }

  encoderInfo(l: number): EncoderInfo {
    const { src, geo } = this.layer(l);
    const info = src.refs.W_enc.info;
    // not a spread: a lazily decoded (deflated npz) info computes `location` in a getter
    return {
      name: info.name,
      dtype: info.dtype,
      shape: info.shape,
      byteLength: info.byteLength,
      sourceFile: info.sourceFile,
      get location() {
        return info.location;
      },
      encoderTransposed: geo.encoderTransposed,
    };
  }

  encoderFloat32(l: number): Float32Array {
    const { src, geo } = this.layer(l);
    const ref = src.refs.W_enc;
    const data = ref.store.readFloat32(ref.info.name);
    return geo.encoderTransposed ? transpose(data, geo.dModel, geo.dTranscoder) : data;
  }

  encoderStoredFloat32(l: number, out?: Float32Array): Float32Array {
    const ref = this.layer(l).src.refs.W_enc;
    return ref.store.readFloat32(ref.info.name, out);
  }

  encoderRowsFloat32(l: number, featureIdx: readonly number[]): Float32Array {
    const { src, geo } = this.layer(l);
    const ref = src.refs.W_enc;
    checkFeatureIndices(l, featureIdx, geo.dTranscoder, ref.info.sourceFile, ref.info.name);
    if (geo.encoderTransposed) {
      return gatherColumns(ref.store, ref.info.name, geo.dModel, geo.dTranscoder, featureIdx);
    }
    return ref.store.readRowsFloat32(ref.info.name, featureIdx);
  }

  encoderBiasFloat32(l: number): Float32Array {
    const ref = this.layer(l).src.refs.b_enc;
    return ref.store.readFloat32(ref.info.name);
  }

  thresholdFloat32(l: number): Float32Array | null {
    const ref = this.layer(l).src.refs.threshold;
    if (!ref || this.activation.kind !== 'jumprelu') return null;
    return ref.store.readFloat32(ref.info.name);
  }

  decoderBiasFloat32(l: number): Float32Array {
    const ref = this.layer(l).src.refs.b_dec;
    return ref.store.readFloat32(ref.info.name);
  }

  skipFloat32(l: number): Float32Array | null {
    const ref = this.layer(l).src.refs.W_skip;
    return ref ? ref.store.readFloat32(ref.info.name) : null;
  }

  decoderRowsFloat32(l: number, featureIdx: readonly number[]): Float32Array {
    const { src, geo } = this.layer(l);
    const ref = src.refs.W_dec;
    checkFeatureIndices(l, featureIdx, geo.dTranscoder, ref.info.sourceFile, ref.info.name);
    if (this.kind === 'plt' && geo.decoderTransposed) {
      return gatherColumns(ref.store, ref.info.name, geo.dModel, geo.dTranscoder, featureIdx);
    }
    return ref.store.readRowsFloat32(ref.info.name, featureIdx);
  }

  close(): void {
    for (const l of this.layers) closeQuietly(l.stores);
  }
}

/** Every index a feature of layer l (an integer in [0, dT)), else an 'argument' error naming the tensor. */
export function checkFeatureIndices(
  l: number,
  featureIdx: readonly number[],
  dT: number,
  file: string,
  tensor: string,
): void {
  for (const f of featureIdx) {
    if (!Number.isInteger(f) || f < 0 || f >= dT) {
      throw new EngineError('argument', `layer ${l}: feature ${f} out of range [0, ${dT})`, {
        file,
        tensor,
        field: 'featureIdx',
      });
    }
  }
}
