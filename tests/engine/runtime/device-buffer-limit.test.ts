/**
 * A GPU's largest buffer: read from Dawn's refusal (the provider does not expose its limits), or
 * told by CIRCUIT_DEVICE_MAX_BUFFER_MB. Forward passes past it: device-residency.test.ts.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  bufferLimitOf,
  DeviceBufferLimitError,
  deviceMaxBufferBytes,
  deviceTensors,
} from '../../../electron/engine/runtime/device-tensors.ts';

afterEach(() => {
  vi.unstubAllEnvs();
});

describe('the GPU’s largest buffer', () => {
  it('is read from Dawn’s refusal, and from our own error', () => {
    // As ONNX Runtime's WebGPU provider reported it for gemma-2-2b's embedding on SwiftShader.
    const dawn = new Error(
      'WebGPU validation failed. Buffer size (2359296000) exceeds the max buffer size limit (1073741824).\n - While calling [Device].CreateBuffer([BufferDescriptor]).',
    );
    expect(bufferLimitOf(dawn)).toBe(1073741824);
    expect(bufferLimitOf(new DeviceBufferLimitError(10, 8, [2, 5], 'w'))).toBe(8);
    expect(bufferLimitOf(new Error('WebGPU device lost'))).toBeNull();
    expect(bufferLimitOf('not an error')).toBeNull();
  });

  it('names the weight, its size and the limit', () => {
    const e = new DeviceBufferLimitError(2359296000, 1073741824, [256000, 2304], 'model.embed_tokens.weight');
    expect(e.code).toBe('resources');
    expect(e.tensor).toBe('model.embed_tokens.weight');
    expect(e.message).toBe(
      "a weight [256000, 2304] of 2.36 GB is larger than this GPU's largest buffer (1.07 GB) (tensor model.embed_tokens.weight)",
    );
  });

  it('is unknown unless CIRCUIT_DEVICE_MAX_BUFFER_MB says it, which must be a positive number', () => {
    vi.stubEnv('CIRCUIT_DEVICE_MAX_BUFFER_MB', '');
    expect(deviceMaxBufferBytes()).toBe(Number.POSITIVE_INFINITY);
    vi.stubEnv('CIRCUIT_DEVICE_MAX_BUFFER_MB', '1024');
    expect(deviceMaxBufferBytes()).toBe(1024 * 1024 * 1024);
    vi.stubEnv('CIRCUIT_DEVICE_MAX_BUFFER_MB', 'lots');
    expect(() => deviceMaxBufferBytes()).toThrow(
      /CIRCUIT_DEVICE_MAX_BUFFER_MB must be a positive number of MiB, got lots/,
    );
  });
});

describe('where a provider keeps device tensors', () => {
  it('in device memory only on WebGPU (the JS API’s gpu-buffer); CUDA and the CPU keep them on the host', () => {
    expect(deviceTensors('cpu').onDevice).toBe(false);
    expect(deviceTensors('cuda').onDevice).toBe(false);
    expect(deviceTensors('webgpu').onDevice).toBe(true); // no session until an upload
    vi.stubEnv('CIRCUIT_DEVICE_TENSORS', '0');
    expect(deviceTensors('webgpu').onDevice).toBe(false);
  });
});
