/**
 * The backend's layers, lowest first: engine < jobs < store < api < cli | app. A file may import
 * its own layer and the layers below it, never one above (the engine knows nothing of jobs, jobs
 * nothing of the library, and so on). The renderer imports the contract's types and, at run time,
 * a few backend modules that reach no Node code (the engine's trace defaults and intervention
 * spec, the WebSocket client and its error class): checked here by following their imports.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const LAYERS = ['engine', 'jobs', 'store', 'api', 'cli', 'app'] as const;
type Layer = (typeof LAYERS)[number];
/** cli and app are both top-level front ends: neither imports the other. */
const RANK: Record<Layer, number> = { engine: 0, jobs: 1, store: 2, api: 3, cli: 4, app: 4 };

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) {
      if (e.name !== 'node_modules' && e.name !== 'dist') out.push(...sourceFiles(p));
    } else if (/\.(ts|mts|mjs|vue)$/.test(e.name) && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** Relative import specifiers of a file: static, dynamic, `export … from`, `new URL(…)`. */
function relativeImports(text: string): string[] {
  const specs: string[] = [];
  const re = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+|new URL\(\s*)['"](\.{1,2}\/[^'"]+)['"]/g;
  for (let m = re.exec(text); m; m = re.exec(text)) specs.push(m[1]);
  return specs;
}

function layerOf(file: string): Layer | null {
  const rel = path.relative(path.join(ROOT, 'electron'), file);
  if (rel.startsWith('..')) return null;
  const top = rel.split(path.sep)[0] as Layer;
  return LAYERS.includes(top) ? top : null;
}

describe('layering', () => {
  it('finds the import specifiers of every form', () => {
    expect(
      relativeImports(
        "import a from './a.ts';\nimport type { B } from \"../b.ts\";\nexport { c } from './c.ts';\nawait import('../d.ts');\nimport './e.mjs';\nnew URL('./f.mjs', import.meta.url);\nimport x from 'node:fs';",
      ),
    ).toEqual(['./a.ts', '../b.ts', './c.ts', '../d.ts', './e.mjs', './f.mjs']);
  });

  it('no backend file imports a layer above its own', () => {
    const violations: string[] = [];
    for (const file of sourceFiles(path.join(ROOT, 'electron'))) {
      const from = layerOf(file);
      if (!from) continue;
      for (const spec of relativeImports(fs.readFileSync(file, 'utf8'))) {
        const to = layerOf(path.resolve(path.dirname(file), spec));
        if (!to || to === from) continue;
        if (RANK[to] >= RANK[from])
          violations.push(`${path.relative(ROOT, file)} (${from}) → ${spec} (${to})`);
      }
    }
    expect(violations).toEqual([]);
  });

  it('what the renderer imports from the backend reaches no Node built-in or package', () => {
    // Type-only imports vanish in the bundle; value imports pull their whole closure into it.
    const violations: string[] = [];
    const seen = new Set<string>();
    const visit = (file: string, via: string) => {
      if (seen.has(file)) return;
      seen.add(file);
      for (const spec of valueImports(fs.readFileSync(file, 'utf8'))) {
        if (!spec.startsWith('.')) violations.push(`${via} → ${path.relative(ROOT, file)} imports '${spec}'`);
        else visit(path.resolve(path.dirname(file), spec), via);
      }
    };
    for (const file of sourceFiles(path.join(ROOT, 'renderer', 'src'))) {
      for (const spec of valueImports(fs.readFileSync(file, 'utf8'))) {
        const target = path.resolve(path.dirname(file), spec);
        if (spec.startsWith('.') && target.startsWith(path.join(ROOT, 'electron')))
          visit(target, path.relative(ROOT, file));
      }
    }
    expect(seen.size).toBeGreaterThan(0);
    expect(violations).toEqual([]);
  });
});

/** Specifiers of the imports that survive compilation (not `import type` / `export type`). */
function valueImports(text: string): string[] {
  const specs: string[] = [];
  const re =
    /\b(?:import|export)\s+(type\s+)?(?:[^'";]*?\bfrom\s*)?['"]([^'"]+)['"]|\bimport\s*\(\s*['"]([^'"]+)['"]/g;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    if (m[3]) specs.push(m[3]);
    else if (!m[1]) specs.push(m[2]);
  }
  return specs;
}
