/**
 * The API contract, types only: the renderer imports nothing at run time from electron/ (no
 * Node code can reach the bundle), so every import here is `import type`.
 */
export type {
  Annotations,
  ApiClient,
  ApiErrorCode,
  ApiErrorData,
  ApiEvents,
  DashboardsStatus,
  EventName,
  FeatureChange,
  FeatureEdit,
  FeatureInfo,
  FeatureRecord,
  GraphView,
  InterventionInput,
  InterventionMode,
  InterventionOutcome,
  InterventionRecord,
  InterventionSpec,
  InterventionStatus,
  MethodName,
  ModelRecord,
  NodeKind,
  Params,
  ProjectRecord,
  Result,
  ServerInfo,
  ServerMessage,
  Supernode,
  TokenPrediction,
  TraceDetail,
  TraceProgress,
  TraceRecord,
  TraceSettings,
  TraceSettingsInput,
  TraceStatus,
  TranscoderSetRecord,
  ViewNode,
  ViewSummary,
} from '../../../electron/api/contract.ts';

import type { TraceSettings } from '../../../electron/api/contract.ts';

/**
 * Mirror of contract.ts's DEFAULT_TRACE_SETTINGS (a value, so it cannot be imported as a type).
 * `satisfies` keeps it in step with the contract's type; types.test.ts checks the values.
 */
export const DEFAULT_SETTINGS = {
  maxNLogits: 10,
  desiredLogitProb: 0.95,
  maxFeatureNodes: 7500, // DEFAULT_MAX_FEATURE_NODES (electron/engine/attribution/defaults.ts)
  batchSize: 256,
  nodeThreshold: 0.8,
  edgeThreshold: 0.98,
  provider: 'cpu',
} as const satisfies TraceSettings;
