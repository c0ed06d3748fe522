export * from './export.ts';
export * from './ids.ts';
export * from './import.ts';
export * from './types.ts';
export * from './validate.ts';
