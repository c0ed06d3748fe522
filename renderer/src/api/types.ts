/**
 * The API contract's types (`import type`: erased from the bundle), and the engine's trace
 * defaults. The renderer's run-time imports from electron/ (this file's defaults, transport.ts's
 * WebSocket client and ApiError) reach no Node code: tests/architecture/layering.test.ts checks.
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

/** The engine's defaults (a dependency-free module, bundled into the UI as it is). */
export { DEFAULT_TRACE_SETTINGS as DEFAULT_SETTINGS } from '../../../electron/engine/attribution/defaults.ts';
