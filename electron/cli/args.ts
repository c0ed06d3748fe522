/** Flag parsing shared by the commands, with errors that name the flag. */
import { parseArgs } from 'node:util';
import { DEFAULT_TRACE_SETTINGS } from '../engine/attribution/defaults.ts';
import { EngineError } from '../engine/errors.ts';
import { PROVIDER_CHOICES, type ProviderChoice } from '../engine/runtime/providers.ts';

export type FlagSpec = Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }>;

export function parseFlags<T extends FlagSpec>(argv: string[], spec: T) {
  try {
    return parseArgs({ args: argv, options: spec, allowPositionals: false, strict: true }).values;
  } catch (e) {
    throw new EngineError('argument', (e as Error).message);
  }
}

export function requireFlag(value: string | undefined, flag: string): string {
  if (value === undefined || value === '')
    throw new EngineError('argument', `--${flag} is required`, { field: flag });
  return value;
}

export function positiveIntFlag(value: string | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) {
    throw new EngineError('argument', `--${flag} must be a positive integer, got "${value}"`, {
      field: flag,
    });
  }
  return n;
}

export function providerFlag(value: string | undefined): ProviderChoice {
  const v = (value ?? DEFAULT_TRACE_SETTINGS.provider) as ProviderChoice;
  if (!PROVIDER_CHOICES.includes(v)) {
    throw new EngineError(
      'argument',
      `--provider must be one of ${PROVIDER_CHOICES.join(', ')}, got "${value}"`,
      {
        field: 'provider',
      },
    );
  }
  return v;
}

export function tokenIdsFlag(value: string): number[] {
  const parts = value.split(',').map((s) => s.trim());
  const ids = parts.map(Number);
  if (parts.some((p) => p === '') || ids.some((n) => !Number.isInteger(n) || n < 0)) {
    throw new EngineError(
      'argument',
      `--token-ids must be comma-separated non-negative integers, got "${value}"`,
      {
        field: 'token-ids',
      },
    );
  }
  return ids;
}
