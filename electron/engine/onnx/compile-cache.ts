/**
 * On-disk cache of compiled ONNX graphs. Each entry is a folder named by a key (content
 * fingerprint of the inputs + compile settings) holding model.onnx and its external data.
 * Entries are built in a temporary folder and renamed into place, so a crash mid-compile
 * never leaves a half-written entry that a later run would trust.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Bump when the emitted graphs change, so stale entries are not reused. */
export const COMPILER_VERSION = 3;
const COMPLETE_MARKER = 'complete.json';

export function defaultCacheRoot(): string {
  if (process.env.CIRCUIT_CACHE_DIR) return path.resolve(process.env.CIRCUIT_CACHE_DIR);
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'circuit-workbench', 'compiled');
}

/**
 * A cheap content fingerprint: size, the first 1 MiB and 16 evenly spaced 64 KiB samples of
 * each file. Hashing multi-gigabyte checkpoints whole would add tens of seconds to every
 * start; the sampled bytes include every safetensors header, so any re-export, dtype or
 * shape change, and any retraining that touches the sampled weights changes the key.
 */
export function fingerprintFiles(files: readonly string[]): string {
  const h = crypto.createHash('sha256');
  const chunk = Buffer.alloc(64 * 1024);
  for (const file of [...files].sort()) {
    const size = fs.statSync(file).size;
    h.update(`${path.basename(file)}:${size};`);
    const fd = fs.openSync(file, 'r');
    try {
      const head = Buffer.alloc(Math.min(size, 1024 * 1024));
      fs.readSync(fd, head, 0, head.length, 0);
      h.update(head);
      for (let i = 0; i < 16 && size > head.length; i++) {
        const pos = Math.floor(((size - chunk.length) * (i + 1)) / 17);
        const n = fs.readSync(fd, chunk, 0, chunk.length, Math.max(0, pos));
        h.update(chunk.subarray(0, n));
      }
    } finally {
      fs.closeSync(fd);
    }
  }
  return h.digest('hex');
}

/** The folders whose code decides what a compiled graph contains. */
const COMPILER_SOURCE_DIRS = [
  '../arch',
  '../onnx',
  '../model',
  '../attribution',
  '../transcoders',
  '../intervene',
];
let compilerSourceHash: string | undefined;
/** The same hash, computed at build time: the bundles (electron/app/build.ts) run without the sources. */
declare const __COMPILER_SOURCE_HASH__: string | undefined;

/**
 * A hash of the compiler's own source files, so an upgraded engine never trusts graphs an
 * older one compiled (the version number alone relies on someone remembering to bump it).
 */
export function compilerFingerprint(): string {
  if (compilerSourceHash === undefined && typeof __COMPILER_SOURCE_HASH__ === 'string') {
    compilerSourceHash = __COMPILER_SOURCE_HASH__;
  }
  if (compilerSourceHash === undefined) {
    const h = crypto.createHash('sha256');
    for (const rel of COMPILER_SOURCE_DIRS) {
      const dir = path.resolve(import.meta.dirname, rel);
      if (!fs.existsSync(dir)) continue;
      for (const f of fs.readdirSync(dir).sort()) {
        if (/\.(ts|js|mjs)$/.test(f)) h.update(f).update(fs.readFileSync(path.join(dir, f)));
      }
    }
    compilerSourceHash = h.digest('hex').slice(0, 16);
  }
  return compilerSourceHash;
}

export function cacheKey(parts: unknown): string {
  return crypto
    .createHash('sha256')
    .update(JSON.stringify({ compiler: COMPILER_VERSION, source: compilerFingerprint(), parts }))
    .digest('hex')
    .slice(0, 32);
}

export interface CacheEntry {
  dir: string;
  modelPath: string;
  /** false when this call compiled it. */
  hit: boolean;
}

/** Returns the cached entry for `key`, building it with `build(dir)` when absent. */
export function getOrCompile(root: string, key: string, build: (dir: string) => void): CacheEntry {
  const dir = path.join(root, key);
  const modelPath = path.join(dir, 'model.onnx');
  if (fs.existsSync(path.join(dir, COMPLETE_MARKER))) return { dir, modelPath, hit: true };
  fs.mkdirSync(root, { recursive: true });
  const tmp = fs.mkdtempSync(path.join(root, `.building-${key}-`));
  try {
    build(tmp);
    fs.writeFileSync(
      path.join(tmp, COMPLETE_MARKER),
      JSON.stringify({ key, createdAt: new Date().toISOString() }),
    );
    if (fs.existsSync(path.join(dir, COMPLETE_MARKER))) {
      // another process or worker installed the same entry meanwhile (and may be loading it):
      // keep theirs, never delete a complete entry
      fs.rmSync(tmp, { recursive: true, force: true });
      return { dir, modelPath, hit: true };
    }
    if (fs.existsSync(dir)) fs.rmSync(dir, { recursive: true, force: true }); // an incomplete leftover
    fs.renameSync(tmp, dir);
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    // Another process may have finished the same entry first.
    if (fs.existsSync(path.join(dir, COMPLETE_MARKER))) return { dir, modelPath, hit: true };
    throw e;
  }
  return { dir, modelPath, hit: false };
}
