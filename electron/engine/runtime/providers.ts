/**
 * Execution providers: which one a caller asked for, whether this installation has it,
 * and what to do when it does not. `auto`'s candidates are the installed ones in the order
 * CUDA, WebGPU, CPU; auto-provider.ts takes the fastest of those that start.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { TRACE_PROVIDERS, type TraceProvider } from '../attribution/defaults.ts';
import { EngineError } from '../errors.ts';

export type ProviderName = 'cpu' | 'webgpu' | 'cuda';
/** What a caller may ask for: a provider, or `auto` (the trace settings' list, defaults.ts). */
export type ProviderChoice = TraceProvider;
export const PROVIDER_CHOICES: readonly ProviderChoice[] = TRACE_PROVIDERS;

/** `value` as a provider choice, or an 'argument' error naming `field` and the choices. */
export function providerChoice(value: unknown, field = 'provider'): ProviderChoice {
  if (typeof value === 'string' && (PROVIDER_CHOICES as readonly string[]).includes(value))
    return value as ProviderChoice;
  throw new EngineError(
    'argument',
    `${field} must be one of ${PROVIDER_CHOICES.join(', ')}, got ${JSON.stringify(value)?.slice(0, 40)}`,
    { field },
  );
}

export const CUDA_INSTALL_HINT =
  "onnxruntime-node's CUDA provider is not bundled with the npm package (it is too large); install it once with\n" +
  '  (cd node_modules/onnxruntime-node && ONNXRUNTIME_NODE_INSTALL=cuda12 node script/install.js)\n' +
  'which downloads libonnxruntime_providers_cuda.so for CUDA 12 (needs CUDA 12 + cuDNN 9 on the machine).';

function ortBinaryDir(): string {
  const require = createRequire(import.meta.url);
  const pkg = path.dirname(require.resolve('onnxruntime-node/package.json'));
  const binRoot = path.join(pkg, 'bin');
  const napi = fs.existsSync(binRoot)
    ? fs.readdirSync(binRoot).find((d) => d.startsWith('napi-v'))
    : undefined;
  return path.join(binRoot, napi ?? 'napi-v6', process.platform, process.arch);
}

/** Why `provider` cannot run here, or null when it should. */
export function providerUnavailableReason(provider: ProviderName): string | null {
  if (provider === 'cpu') return null;
  if (provider === 'cuda') {
    if (process.platform !== 'linux' && process.platform !== 'win32')
      return 'CUDA is only available on Linux and Windows.';
    const lib =
      process.platform === 'win32' ? 'onnxruntime_providers_cuda.dll' : 'libonnxruntime_providers_cuda.so';
    if (!fs.existsSync(path.join(ortBinaryDir(), lib))) return `${lib} is missing. ${CUDA_INSTALL_HINT}`;
    return null;
  }
  return null; // WebGPU is bundled; whether an adapter exists shows when the session is created.
}

export function assertProviderAvailable(provider: ProviderName): void {
  const reason = providerUnavailableReason(provider);
  if (reason)
    throw new EngineError('provider', `execution provider "${provider}" is not available: ${reason}`);
}

/** Candidate providers in the order `auto` tries them. */
export function providerCandidates(choice: ProviderChoice): ProviderName[] {
  if (choice === 'auto')
    return (['cuda', 'webgpu', 'cpu'] as const).filter((p) => !providerUnavailableReason(p));
  if (!PROVIDER_CHOICES.includes(choice)) {
    throw new EngineError('argument', `unknown provider "${choice}" (use ${PROVIDER_CHOICES.join(', ')})`, {
      field: 'provider',
    });
  }
  assertProviderAvailable(choice);
  return [choice];
}
