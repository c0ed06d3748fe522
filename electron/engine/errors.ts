/**
 * Every failure the engine reports on bad input is an EngineError with a stable `code`
 * and the file / tensor / field it concerns, so callers (CLI, API, UI) can show exactly
 * what is wrong without parsing messages.
 */
export const ENGINE_ERROR_CODES = [
  'io', // a file could not be read
  'truncated', // a file ends before its declared content
  'header', // a malformed container header (safetensors JSON, npy dict, zip directory)
  'bounds', // offsets outside the file, overlapping or with holes
  'dtype', // an unknown or unsupported dtype
  'shape', // a tensor whose shape disagrees with the config or its partners
  'missing', // a tensor, file or config field that must exist does not
  'config', // a config field with an invalid value
  'unsupported', // a model_type / activation / hook the engine does not handle
  'mismatch', // transcoders that do not fit the model
  'provider', // an execution provider that is not available
  'argument', // a bad argument from the caller (CLI flag, API parameter)
  'tokenizer',
  'cancelled', // the caller cancelled the job
  'resources', // the job would need more memory than the machine has
] as const;
export type EngineErrorCode = (typeof ENGINE_ERROR_CODES)[number];

export function isEngineErrorCode(code: string): code is EngineErrorCode {
  return (ENGINE_ERROR_CODES as readonly string[]).includes(code);
}

export interface EngineErrorContext {
  file?: string;
  tensor?: string;
  field?: string;
}

export class EngineError extends Error {
  readonly code: EngineErrorCode;
  readonly file?: string;
  readonly tensor?: string;
  readonly field?: string;

  constructor(code: EngineErrorCode, message: string, context: EngineErrorContext = {}) {
    const where = [
      context.file ? `file ${context.file}` : '',
      context.tensor ? `tensor ${context.tensor}` : '',
      context.field ? `field ${context.field}` : '',
    ]
      .filter(Boolean)
      .join(', ');
    super(where ? `${message} (${where})` : message);
    this.name = 'EngineError';
    this.code = code;
    this.file = context.file;
    this.tensor = context.tensor;
    this.field = context.field;
  }
}

export function isEngineError(e: unknown): e is EngineError {
  return e instanceof EngineError;
}
