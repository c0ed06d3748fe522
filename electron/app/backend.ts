/**
 * The backend the desktop app runs in its main process, assembled as `circuit serve` assembles
 * it (electron/cli/commands/serve.ts): the library (Store) in the data folder, traces and
 * re-pruning on worker threads (PoolCompute, jobs/'s runner), and the WorkbenchService over
 * both, reached through the in-process client of the contract.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ApiClient } from '../api/contract.ts';
import { warmModelCheckThread } from '../api/model-check.ts';
import { WorkbenchService } from '../api/service.ts';
import { createDirectClient } from '../api/transports/direct.ts';
import type { ComputeBackend } from '../jobs/compute-backend.ts';
import { PoolCompute } from '../jobs/pool-compute.ts';
import { isStoreError } from '../store/errors.ts';
import { Store } from '../store/store.ts';

export interface Backend {
  /** The contract, in process (JSON round trip, as a remote client sees it). */
  client: ApiClient;
  dataDir: string;
  /** True when another process runs this library's trace queue (traces are not run here). */
  readOnly: boolean;
  close(): Promise<void>;
}

export interface OpenBackendOptions {
  dataDir: string;
  /** Run the trace queue (false: browse only, when another process holds the library). */
  runJobs: boolean;
  log: (line: string) => void;
  /** For tests: the compute backend (default: the worker pool). */
  compute?: () => ComputeBackend;
}

/** Thrown when another process (the app or `circuit serve`) runs this library's queue. */
export class LibraryInUseError extends Error {
  constructor(
    message: string,
    readonly dataDir: string,
  ) {
    super(message);
    this.name = 'LibraryInUseError';
  }
}

export function openBackend(opts: OpenBackendOptions): Backend {
  fs.mkdirSync(opts.dataDir, { recursive: true });
  const store = Store.open(opts.dataDir);
  let service: WorkbenchService;
  const compute = opts.compute ? opts.compute() : new PoolCompute();
  try {
    service = new WorkbenchService({
      store,
      compute,
      runJobs: opts.runJobs,
      onBackgroundError: (e) => opts.log(`error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`),
    }).start();
    warmModelCheckThread(); // the first model registration then need not wait seconds for it
  } catch (e) {
    void compute.close();
    store.close();
    if (isStoreError(e) && e.code === 'conflict') throw new LibraryInUseError(e.message, opts.dataDir);
    throw e;
  }
  const client = createDirectClient(service);
  let closing: Promise<void> | null = null;
  return {
    client,
    dataDir: opts.dataDir,
    readOnly: !opts.runJobs,
    close() {
      closing ??= (async () => {
        client.close();
        try {
          await service.close();
        } finally {
          store.close();
        }
      })();
      return closing;
    },
  };
}

/** Where the embedded demo model is: next to the app's resources when packaged, else in the repository. */
export function demoModelDir(opts: { packaged: boolean; resourcesPath: string; appRoot: string }): string {
  return opts.packaged
    ? path.join(opts.resourcesPath, 'models', 'gemma2-demo')
    : path.join(opts.appRoot, 'resources', 'models', 'gemma2-demo');
}

/**
 * First run (an empty library): registers the demo model, one record per transcoder set, and
 * removes registrations that fail validation (the demo's weights are not installed) so nothing
 * half-valid stays. Returns the ids of the valid registrations.
 */
export async function registerDemoModel(client: ApiClient, demoDir: string): Promise<number[]> {
  if ((await client.call('models.list', {})).length > 0) return [];
  const tcRoot = path.join(demoDir, 'transcoders');
  if (!fs.existsSync(path.join(demoDir, 'config.json')) || !fs.existsSync(tcRoot)) return [];
  const ids: number[] = [];
  for (const kind of fs.readdirSync(tcRoot).sort()) {
    const transcoderDir = path.join(tcRoot, kind);
    if (!fs.statSync(transcoderDir).isDirectory()) continue;
    const m = await client.call('models.register', {
      checkpointDir: demoDir,
      transcoderDir,
      name: `gemma2-demo (${kind})`,
    });
    if (m.valid) ids.push(m.id);
    else await client.call('models.delete', { id: m.id });
  }
  return ids;
}
