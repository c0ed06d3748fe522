/**
 * Attribution defaults used by the engine, the CLI, the jobs and the API contract (the UI
 * mirrors them in renderer/src/api/types.ts). No imports, so the renderer may load it.
 */

/**
 * Feature rows computed when no cap is given (circuit-tracer's CLI default). It bounds the
 * memory of long prompts: the rows cost 4 bytes × (cap + logits) × columns, the adjacency
 * 4 bytes × N² with N = cap + errors + tokens + logits. A larger explicit value than the
 * number of active features means all of them.
 */
export const DEFAULT_MAX_FEATURE_NODES = 7500;
