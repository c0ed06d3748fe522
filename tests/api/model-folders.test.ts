/**
 * Registering model folders never blocks or balloons on what is not a small regular file
 * (issue 14, item 4): a FIFO or a device as config.json, an oversized config.json, and a
 * transcoder folder that is a huge tree each give a typed problem at once. The checks run in a
 * child process with a time limit, since a blocking read would hang this one.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../fixtures/circuit-cli.ts';
import { tempDir } from '../store/helpers.ts';
import { TINY } from './helpers.ts';

const tmp = tempDir('cw-model-folders-');
let fixtureModel: string;

beforeAll(() => {
  fixtureModel = path.dirname(path.dirname(TINY.transcoderDir()));
});
afterAll(() => tmp.cleanup());

interface Problem {
  code: string;
  message: string;
  file?: string;
}

/** checkModelFolders in a child process: its problems, and how long it took (ms). */
function check(checkpointDir: string, transcoderDir: string): { problems: Problem[]; ms: number } {
  const script = `
    import { register } from 'tsx/esm/api';
    register();
    const { checkModelFolders } = await import(${JSON.stringify(path.join(REPO_ROOT, 'electron/api/model-check.ts'))});
    const t0 = performance.now();
    const r = checkModelFolders(${JSON.stringify({ checkpointDir, transcoderDir })});
    console.log(JSON.stringify({ problems: r.validation.problems, ms: performance.now() - t0 }));
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    timeout: 20_000,
    maxBuffer: 2 ** 20,
  });
  if (r.status !== 0)
    throw new Error(`check did not finish (${r.signal ?? r.status}): ${r.stderr.slice(-2000)}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { problems: Problem[]; ms: number };
}

/** A copy of the tiny checkpoint whose config.json is made by `make`. */
function checkpointWith(name: string, make: (configPath: string) => void): string {
  const dir = path.join(tmp.dir, name);
  fs.mkdirSync(dir);
  fs.symlinkSync(path.join(fixtureModel, 'model.safetensors'), path.join(dir, 'model.safetensors'));
  make(path.join(dir, 'config.json'));
  return dir;
}

describe('model folders: only small regular files are read, walks are bounded', () => {
  it('a FIFO as config.json is refused at once, not read', () => {
    const dir = checkpointWith('fifo', (f) => execFileSync('mkfifo', [f]));
    const { problems, ms } = check(dir, TINY.transcoderDir());
    expect(problems[0]).toMatchObject({ code: 'io', file: path.join(dir, 'config.json') });
    expect(problems[0].message).toMatch(/config\.json is not a regular file/);
    expect(ms).toBeLessThan(2000);
  });

  it('config.json linked to /dev/zero is refused without reading it', () => {
    const dir = checkpointWith('zero', (f) => fs.symlinkSync('/dev/zero', f));
    const { problems, ms } = check(dir, TINY.transcoderDir());
    expect(problems[0]).toMatchObject({ code: 'io' });
    expect(problems[0].message).toMatch(/not a regular file/);
    expect(ms).toBeLessThan(2000);
  });

  it('an oversized config.json is refused by its size before it is read', () => {
    const dir = checkpointWith('big', (f) => {
      const real = fs.readFileSync(path.join(fixtureModel, 'config.json'), 'utf8');
      fs.writeFileSync(f, real + ' '.repeat(5 * 2 ** 20));
    });
    const { problems } = check(dir, TINY.transcoderDir());
    expect(problems[0]).toMatchObject({ code: 'io' });
    expect(problems[0].message).toMatch(/config\.json is \d+ bytes; at most 4194304 are read/);
  });

  it('a transcoder folder that is a huge tree fails fast with a clear error', () => {
    const tree = path.join(tmp.dir, 'tree');
    for (let d = 0; d < 21; d++) {
      const sub = path.join(tree, `d${d}`, 'deeper');
      fs.mkdirSync(sub, { recursive: true });
      for (let f = 0; f < 1000; f++) fs.writeFileSync(path.join(sub, `f${f}.txt`), '');
    }
    const { problems, ms } = check(fixtureModel, tree);
    const p = problems.find((x) => x.file === tree);
    expect(p).toMatchObject({ code: 'io' });
    expect(p!.message).toMatch(/more than 20000 entries within 6 levels/);
    expect(ms).toBeLessThan(2000);
  });
  /** A copy of the tiny PLT folder (files linked) whose config.yaml is made by `make`. */
  function transcodersWith(name: string, make: (configPath: string) => void): string {
    const dir = path.join(tmp.dir, name);
    fs.mkdirSync(dir);
    for (const f of fs.readdirSync(TINY.transcoderDir())) {
      if (f !== 'config.yaml') fs.symlinkSync(path.join(TINY.transcoderDir(), f), path.join(dir, f));
    }
    make(path.join(dir, 'config.yaml'));
    return dir;
  }

  it('a FIFO or /dev/zero as the transcoder config.yaml is refused at once, naming it', () => {
    for (const [name, make] of [
      ['tc-fifo', (f: string) => execFileSync('mkfifo', [f])],
      ['tc-zero', (f: string) => fs.symlinkSync('/dev/zero', f)],
    ] as const) {
      const dir = transcodersWith(name, make);
      const { problems, ms } = check(fixtureModel, dir);
      expect(problems).toHaveLength(1);
      expect(problems[0]).toMatchObject({ code: 'io', file: path.join(dir, 'config.yaml') });
      expect(problems[0].message).toMatch(/transcoder config\.yaml is not a regular file/);
      expect(ms).toBeLessThan(2000);
    }
  });

  it('an oversized transcoder config.yaml is refused by its size', () => {
    const dir = transcodersWith('tc-big', (f) => {
      const real = fs.readFileSync(path.join(TINY.transcoderDir(), 'config.yaml'), 'utf8');
      fs.writeFileSync(f, `${real}\n${'#'.repeat(5 * 2 ** 20)}\n`);
    });
    const { problems } = check(fixtureModel, dir);
    expect(problems[0]).toMatchObject({ code: 'io', file: path.join(dir, 'config.yaml') });
    expect(problems[0].message).toMatch(/is \d+ bytes; at most 4194304 are read/);
  });

  it('a FIFO as model.safetensors or as the shard index is refused at once, naming it', () => {
    const single = path.join(tmp.dir, 'st-fifo');
    fs.mkdirSync(single);
    fs.copyFileSync(path.join(fixtureModel, 'config.json'), path.join(single, 'config.json'));
    execFileSync('mkfifo', [path.join(single, 'model.safetensors')]);
    const a = check(single, TINY.transcoderDir());
    expect(a.problems[0]).toMatchObject({ code: 'io', file: path.join(single, 'model.safetensors') });
    expect(a.problems[0].message).toMatch(/not a regular file|found a device, FIFO or socket/);
    expect(a.ms).toBeLessThan(2000);

    const sharded = checkpointWith('index-zero', (f) =>
      fs.copyFileSync(path.join(fixtureModel, 'config.json'), f),
    );
    const index = path.join(sharded, 'model.safetensors.index.json');
    fs.symlinkSync('/dev/zero', index);
    const b = check(sharded, TINY.transcoderDir());
    expect(b.problems[0]).toMatchObject({ code: 'io', file: index });
    expect(b.problems[0].message).toMatch(/model\.safetensors\.index\.json is not a regular file/);
    expect(b.ms).toBeLessThan(2000);
  });
});
