/**
 * `--provider auto` takes the fastest provider that starts, measured on a small matrix product.
 * Here the only "GPU" is SwiftShader, a software adapter far slower than the CPU: auto must not
 * take it just because a GPU provider comes first in the candidate order.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  fastestProvider,
  measureProviders,
  resolveProvider,
  settledProvider,
} from '../../../electron/engine/runtime/auto-provider.ts';
import { providerUnavailableReason } from '../../../electron/engine/runtime/providers.ts';
import { useSoftwareWebGpu } from '../../fixtures/software-webgpu.ts';

afterEach(() => {
  vi.unstubAllEnvs();
});

describe('the fastest provider', () => {
  it('is the quickest that started; ties go to the earlier candidate', () => {
    expect(
      fastestProvider([
        { provider: 'cuda', ms: null, error: 'missing' },
        { provider: 'webgpu', ms: 2 },
        { provider: 'cpu', ms: 9 },
      ]),
    ).toBe('webgpu');
    expect(
      fastestProvider([
        { provider: 'webgpu', ms: 3 },
        { provider: 'cpu', ms: 3 },
      ]),
    ).toBe('webgpu');
    expect(fastestProvider([{ provider: 'cuda', ms: null }])).toBeNull();
  });

  it.skipIf(providerUnavailableReason('cuda') === null)(
    'reports a provider that cannot start with its reason',
    async () => {
      const [cuda, cpu] = await measureProviders(['cuda', 'cpu']);
      expect(cuda).toMatchObject({ provider: 'cuda', ms: null });
      expect(cuda.error).toMatch(/cuda/i);
      expect(cpu.provider).toBe('cpu');
      expect(cpu.ms).toBeGreaterThan(0);
    },
  );

  it.skipIf(!useSoftwareWebGpu())('passes over a software adapter slower than the CPU', async () => {
    const [webgpu, cpu] = await measureProviders(['webgpu', 'cpu']);
    expect(webgpu.ms).toBeGreaterThan(0);
    expect(cpu.ms).toBeGreaterThan(0);
    // SwiftShader runs the product hundreds of times slower than the CPU provider.
    expect(webgpu.ms as number).toBeGreaterThan(10 * (cpu.ms as number));
    const warnings: string[] = [];
    expect(settledProvider('auto')).toBeUndefined(); // not probed yet in this thread
    expect(await resolveProvider('auto', (m) => warnings.push(m))).toBe('cpu');
    expect(settledProvider('auto')).toBe('cpu');
    expect(warnings.join('\n')).toMatch(/provider auto: using cpu \(.*webgpu [\d.]+ ms, cpu [\d.]+ ms\)/);
    // Settled once per process, and an explicit choice is taken as is.
    expect(await resolveProvider('auto')).toBe('cpu');
    expect(await resolveProvider('webgpu')).toBe('webgpu');
  });

  it.skipIf(!useSoftwareWebGpu())(
    'honours CIRCUIT_AUTO_PROVIDER instead of probing, and names it when it is not installed',
    async () => {
      // The probe picks the CPU here (the test above): the pinned WebGPU shows the pin was used.
      vi.stubEnv('CIRCUIT_AUTO_PROVIDER', 'webgpu');
      expect(settledProvider('auto')).toBe('webgpu');
      expect(await resolveProvider('auto')).toBe('webgpu');
      vi.stubEnv('CIRCUIT_AUTO_PROVIDER', 'tpu');
      await expect(resolveProvider('auto')).rejects.toThrow(/CIRCUIT_AUTO_PROVIDER=tpu.*installed provider/);
      expect(() => settledProvider('auto')).toThrow(/CIRCUIT_AUTO_PROVIDER/);
    },
  );
});
