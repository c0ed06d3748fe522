/**
 * loadTranscoderSet(dir): open a transcoder folder in any of the accepted layouts:
 * 1. circuit-tracer PLT: config.yaml + `layer_{i}.safetensors` (or a `transcoders:` list);
 * 2. GemmaScope npz: `layer_{L}/width_16k/average_l0_{N}/params.npz`, listed in config.yaml
 *    or found by walking the folder (config.yaml optional; hooks default to
 *    ln2.hook_normalized → hook_mlp_out);
 * 3. CLT (`model_kind: cross_layer_transcoder`, or W_enc_0.safetensors present):
 *    `W_enc_{l}.safetensors` + `W_dec_{l}.safetensors` (hooks default to
 *    hook_resid_mid → hook_mlp_out).
 * Only headers are read here; tensors are read on demand through the returned set.
 */
import fs from 'node:fs';
import path from 'node:path';
import { assertFinite } from '../checkpoint/store-base.ts';
import { EngineError } from '../errors.ts';
import { resolveActivation } from './activation.ts';
import { CONFIG_FILE_NAME, readTranscoderConfig, type TranscoderConfig } from './config.ts';
import { CLT_READ_HOOK, CLT_WRITE_HOOK, openCltLayer } from './cross-layer.ts';
import { discoverCltFiles, discoverPltFiles, looksLikeClt } from './discover.ts';
import { GEMMASCOPE_READ_HOOK, GEMMASCOPE_WRITE_HOOK, openGemmaScopeLayer } from './gemmascope.ts';
import { closeQuietly, type LayerSource, layerTensorInfos } from './layer-source.ts';
import { openPltSafetensorsLayer } from './per-layer.ts';
import { LoadedTranscoderSet } from './transcoder-set.ts';
import type { TranscoderKind, TranscoderLayout, TranscoderSet } from './types.ts';
import { checkLayerTensors, type LayerGeometry } from './validate.ts';

export function loadTranscoderSet(dir: string): TranscoderSet {
  const abs = path.resolve(dir);
  let isDir = false;
  try {
    isDir = fs.statSync(abs).isDirectory();
  } catch {
    throw new EngineError('missing', 'transcoder folder not found', { file: abs });
  }
  if (!isDir) throw new EngineError('argument', 'expected a transcoder folder, got a file', { file: abs });

  const cfg = readTranscoderConfig(abs);
  // older circuit-tracer configs have no model_kind: a W_enc_0.safetensors means a CLT
  const modelKind = cfg?.modelKind ?? (looksLikeClt(abs) ? 'cross_layer_transcoder' : 'transcoder_set');
  const kind: TranscoderKind = modelKind === 'cross_layer_transcoder' ? 'clt' : 'plt';

  const layers: LayerSource[] = [];
  try {
    let layout: TranscoderLayout;
    if (kind === 'clt') {
      for (const files of discoverCltFiles(abs, cfg)) layers.push(openCltLayer(files));
      layout = 'clt';
    } else {
      const files = discoverPltFiles(abs, cfg);
      for (const f of files) {
        layers.push(
          f.format === 'npz'
            ? openGemmaScopeLayer(f.layer, f.file)
            : openPltSafetensorsLayer(f.layer, f.file),
        );
      }
      layout = files.every((f) => f.format === 'npz') ? 'gemmascope' : 'circuit-tracer';
    }

    const defaults =
      layout === 'clt'
        ? { read: CLT_READ_HOOK, write: CLT_WRITE_HOOK }
        : layout === 'gemmascope'
          ? { read: GEMMASCOPE_READ_HOOK, write: GEMMASCOPE_WRITE_HOOK }
          : undefined;
    const readHook = hook(cfg, abs, 'feature_input_hook', cfg?.featureInputHook ?? defaults?.read);
    const writeHook = hook(cfg, abs, 'feature_output_hook', cfg?.featureOutputHook ?? defaults?.write);

    const geometries: LayerGeometry[] = [];
    for (const src of layers) {
      const { geometry, problems } = checkLayerTensors(
        kind,
        src.layer,
        layers.length,
        layerTensorInfos(src),
        {
          encoderTransposed: src.encoderTransposedByDefault,
          decoderTransposed: src.decoderTransposedByDefault,
        },
      );
      if (problems.length > 0 || !geometry) throw problems[0];
      const first = geometries[0];
      if (first && geometry.dModel !== first.dModel) {
        const b = src.refs.b_dec.info;
        throw new EngineError(
          'shape',
          `layer ${src.layer}: ${b.name} has length ${geometry.dModel} but layer 0's has ${first.dModel}`,
          { file: b.sourceFile, tensor: b.name },
        );
      }
      // the per-feature vectors are small: read whole at load and checked for NaN/Inf
      for (const ref of [src.refs.b_enc, src.refs.b_dec, src.refs.threshold]) {
        if (ref)
          assertFinite(ref.store.readFloat32(ref.info.name), {
            file: ref.info.sourceFile,
            tensor: ref.info.name,
          });
      }
      geometries.push(geometry);
    }

    const activation = resolveActivation(cfg, layers);
    return new LoadedTranscoderSet({
      kind,
      layout,
      dir: abs,
      configFile: cfg?.file ?? null,
      modelName: cfg?.modelName,
      readHook,
      writeHook,
      activation,
      layers,
      geometries,
    });
  } catch (e) {
    for (const l of layers) closeQuietly(l.stores);
    throw e;
  }
}

function hook(cfg: TranscoderConfig | null, dir: string, field: string, value: string | undefined): string {
  if (value !== undefined) return value;
  const file = cfg?.file ?? path.join(dir, CONFIG_FILE_NAME);
  throw new EngineError(
    'missing',
    cfg
      ? `config.yaml has no ${field}`
      : `no config.yaml (needed for ${field} of a safetensors transcoder set)`,
    { file, field },
  );
}
