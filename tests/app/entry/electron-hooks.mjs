// Module hooks for the entry test: `electron` resolves to electron-stub.mjs (Electron's
// modules replaced at the module boundary, in a plain Node process).
export async function resolve(specifier, context, next) {
  if (specifier === 'electron')
    return { url: new URL('./electron-stub.mjs', import.meta.url).href, shortCircuit: true };
  return next(specifier, context);
}
