/** The renderer's mirror of the contract's default settings stays equal to it. */
import { describe, expect, it } from 'vitest';
import { DEFAULT_TRACE_SETTINGS } from '../../../electron/api/contract.ts';
import { DEFAULT_SETTINGS } from './types.ts';

describe('DEFAULT_SETTINGS', () => {
  it('equals the contract’s DEFAULT_TRACE_SETTINGS', () => {
    expect(DEFAULT_SETTINGS).toEqual(DEFAULT_TRACE_SETTINGS);
  });
});
