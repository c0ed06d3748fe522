/**
 * The registry of built-in job kinds: name → the module a worker loads to run it, and the
 * device its params need. Other kinds are added here (or at run time with WorkerRunner.registerKind,
 * as the tests do with their test-only kinds).
 */
import { resolveProvider, settledProvider } from '../../engine/runtime/auto-provider.ts';
import { providerUnavailableReason } from '../../engine/runtime/providers.ts';
import type { JobDevice, JobKindSpec, JsonValue } from '../types.ts';

/**
 * GPU for an explicit GPU provider, or `auto` when it runs on one: as settled in this process
 * (settleJobDevice) or pinned (CIRCUIT_AUTO_PROVIDER); not yet settled, where CUDA is installed.
 * CPU otherwise.
 */
export function deviceForProvider(params: JsonValue): JobDevice {
  const isObject = (v: JsonValue | undefined) => typeof v === 'object' && v !== null && !Array.isArray(v);
  const o = isObject(params) ? (params as { [key: string]: JsonValue }) : {};
  // A trace's provider is in its settings (kinds/trace.ts TraceJobParams).
  const s = isObject(o.settings) ? (o.settings as { [key: string]: JsonValue }) : {};
  const p = o.provider ?? s.provider;
  if (p === 'cuda' || p === 'webgpu') return 'gpu';
  if (p === 'auto') {
    const settled = settledProvider('auto');
    if (settled) return settled === 'cpu' ? 'cpu' : 'gpu';
    return providerUnavailableReason('cuda') === null ? 'gpu' : 'cpu';
  }
  return 'cpu';
}

/**
 * The device a job with this provider needs, with `auto` settled first in this process (a probe
 * of each installed provider, once): an auto job that will run on a GPU takes the GPU's slot, so
 * two of them never share one device, and one that will run on the CPU gets the CPU's threads.
 */
export async function settleJobDevice(provider: string | undefined): Promise<JobDevice> {
  if (provider === 'auto') await resolveProvider('auto');
  return deviceForProvider({ provider: provider ?? 'cpu' });
}

export const BUILTIN_JOB_KINDS: readonly JobKindSpec[] = [
  { kind: 'trace', module: new URL('./trace.ts', import.meta.url).href, device: deviceForProvider },
  { kind: 'reprune', module: new URL('./reprune.ts', import.meta.url).href, device: () => 'cpu' },
  { kind: 'dashboards', module: new URL('./dashboards.ts', import.meta.url).href, device: deviceForProvider },
  { kind: 'intervene', module: new URL('./intervene.ts', import.meta.url).href, device: deviceForProvider },
];
