/**
 * What the service needs computed, behind one interface: tracing a prompt, pruning a stored
 * graph at new thresholds, interventions and dashboards. Two implementations: InProcessCompute
 * (the calling thread: CLI, tests) and PoolCompute (worker threads: the server and the app).
 */

import type { TraceProgress, TraceSettings } from '../engine/attribution/defaults.ts';
import type { RawAttributionGraph } from '../engine/attribution/graph-types.ts';
import type { DashboardProgress } from '../engine/dashboards/run.ts';
import type { FeatureRecord } from '../engine/dashboards/types.ts';
import { EngineError } from '../engine/errors.ts';
import type { InterventionRequest, InterventionRun } from '../engine/intervene/intervention-run.ts';
import type { InterventionOutcome } from '../engine/intervene/spec.ts';
import type { PrunedGraph, PruneOptions } from '../engine/pruning/index.ts';
import type { ProviderChoice } from '../engine/runtime/providers.ts';

export type { InterventionRequest, InterventionRun };

/**
 * The reason to abort a compute call's signal with when the service shuts down (the work goes
 * back to the queue), as opposed to a user's cancel: a resumable job then keeps its checkpoint.
 */
export class ShutdownAbort extends EngineError {
  constructor(message: string) {
    super('cancelled', message);
  }
}

export interface TraceRequest {
  checkpointDir: string;
  transcoderDir: string;
  prompt: string;
  /** Used as given when present (BOS included); otherwise the prompt is tokenized. */
  tokenIds: number[] | null;
  settings: TraceSettings;
}

export interface TraceOutcome {
  raw: RawAttributionGraph;
  /** Pruned at the request's thresholds. */
  pruned: PrunedGraph;
  tokenIds: number[];
  timingsMs: Record<string, number>;
  provider: string;
}

export interface PruneRequest {
  /** Identifies the raw graph (a trace id): implementations may cache per key. */
  key: string;
  /** Loads the raw graph (called on a cache miss). */
  raw: () => RawAttributionGraph;
  options: PruneOptions;
}

export interface ComputeBackend {
  trace(
    req: TraceRequest,
    run: { signal?: AbortSignal; onProgress?: (p: TraceProgress) => void },
  ): Promise<TraceOutcome>;
  prune(req: PruneRequest): Promise<PrunedGraph>;
  /** Runs one intervention (open or closed loop) on a traced prompt. */
  intervene(req: InterventionRequest, run: InterventionRun): Promise<InterventionOutcome>;
  /** Feature dashboards of a transcoder set over a corpus (absent: the backend cannot compute them). */
  dashboards?(req: DashboardsRequest, run: DashboardsRun): Promise<FeatureRecord[]>;
  close(): Promise<void>;
}

export interface DashboardsRequest {
  checkpointDir: string;
  transcoderDir: string;
  corpus: string;
  /** Stop after this many tokens of the corpus (default: all of it). */
  maxTokens?: number;
  provider: ProviderChoice;
  /**
   * The run's checkpoint (its progress, saved as it goes and when it is stopped; deleted when it
   * completes). Absent: no checkpoints.
   */
  checkpoint?: string;
  /** Continue from `checkpoint` when it exists (else it is deleted first). Default false. */
  resume?: boolean;
}

export interface DashboardsRun {
  signal?: AbortSignal;
  onProgress?: (p: TraceProgress) => void;
}

/** A dashboards progress report as the service's progress events carry it. */
export function dashboardsProgress(x: DashboardProgress): TraceProgress {
  const p: TraceProgress = { phase: x.phase, done: x.done, total: x.total };
  if (x.etaSeconds !== undefined) p.etaSeconds = x.etaSeconds;
  return p;
}
