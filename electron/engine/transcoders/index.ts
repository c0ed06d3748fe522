export { applyActivation, resolveActivation } from './activation.ts';
export {
  type ActivationName,
  CONFIG_FILE_NAME,
  type ModelKind,
  readTranscoderConfig,
  stripBlockPrefix,
  stripHfPrefix,
  type TranscoderConfig,
  type TranscoderEntry,
} from './config.ts';
export { encodeDense, reconstructDense } from './dense.ts';
export { loadTranscoderSet } from './load.ts';
export type * from './types.ts';
export {
  checkLayerTensors,
  type LayerGeometry,
  type ModelForTranscoders,
  transcoderModelProblems,
  validateTranscodersForModel,
} from './validate.ts';
