/**
 * Compiled by build.ts to out/app/main.mjs, the `main` of the desktop app. The backend is
 * TypeScript run through tsx (as `circuit` and the job workers run it: the job kinds are
 * loaded by their .ts URLs), so this registers tsx's loader, then imports the real entry.
 *
 * In a packaged app the sources sit in app.asar; tsx's esbuild binary cannot be spawned from
 * inside the archive, so it is unpacked (electron-builder.yml asarUnpack) and pointed to here,
 * before tsx loads esbuild. Worker threads inherit the variable.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** The unpacked esbuild binary of a packaged app, or null when not packaged (or not found). */
export function unpackedEsbuildBinary(
  mainFile: string,
  platform: NodeJS.Platform,
  arch: string,
  resolve: (id: string) => string,
  exists: (p: string) => boolean = fs.existsSync,
): string | null {
  const marker = `${path.sep}app.asar${path.sep}`;
  if (!mainFile.includes(marker)) return null;
  let pkgJson: string;
  try {
    pkgJson = resolve(`@esbuild/${platform}-${arch}/package.json`);
  } catch {
    return null;
  }
  const bin = path.join(
    path.dirname(pkgJson),
    platform === 'win32' ? 'esbuild.exe' : path.join('bin', 'esbuild'),
  );
  const unpacked = bin.replace(marker, `${path.sep}app.asar.unpacked${path.sep}`);
  return exists(unpacked) ? unpacked : null;
}

/** The TypeScript entry, relative to out/app/main.mjs. */
export const ENTRY = '../../electron/app/main.ts';

export async function boot(mainUrl: string): Promise<void> {
  const mainFile = fileURLToPath(mainUrl);
  if (!process.env.ESBUILD_BINARY_PATH) {
    const bin = unpackedEsbuildBinary(
      mainFile,
      process.platform,
      process.arch,
      createRequire(mainUrl).resolve,
    );
    if (bin) process.env.ESBUILD_BINARY_PATH = bin;
  }
  const { register } = await import('tsx/esm/api');
  register();
  await import(pathToFileURL(path.resolve(path.dirname(mainFile), ENTRY)).href);
}
