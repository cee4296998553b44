/**
 * The worker's memory settings: `npm run worker` sets the values workers/process-tuning.ts declares (the
 * benchmarks start their workers with those), an operator's own values win, and the start log reads them back.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  tuningInForce,
  WORKER_MALLOC_ARENA_MAX,
  WORKER_MALLOC_MMAP_THRESHOLD,
  WORKER_MALLOC_TRIM_THRESHOLD,
  WORKER_MAX_SEMI_SPACE_MB,
  WORKER_NODE_OPTION,
  workerProcessEnv,
} from './process-tuning';

const root = path.join(import.meta.dirname, '..');
const script = (
  JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as {
    scripts: Record<string, string>;
  }
).scripts.worker!;

/** What the npm script's prefix exports, run by sh the way npm runs it (the command itself replaced). */
function scriptEnv(env: Record<string, string>) {
  const prefix = script.replace(/exec tsx workers\/main\.ts$/, '');
  expect(prefix, 'the worker script ends with `exec tsx workers/main.ts`').not.toBe(script);
  const names = ['MALLOC_ARENA_MAX', 'MALLOC_MMAP_THRESHOLD_', 'MALLOC_TRIM_THRESHOLD_', 'NODE_OPTIONS'];
  const echo = names.map((n) => `$${n}`).join('|');
  const out = execFileSync('sh', ['-c', `${prefix} sh -c 'echo "${echo}"'`], {
    env: { PATH: process.env.PATH!, ...env },
    encoding: 'utf8',
  }).trim();
  const values = out.split('|');
  return Object.fromEntries(names.map((n, i) => [n, values[i]]));
}

describe('the worker process memory settings', () => {
  it('npm run worker sets the declared values', () => {
    const env = scriptEnv({});
    expect(tuningInForce(env, [])).toEqual({
      mallocArenaMax: WORKER_MALLOC_ARENA_MAX,
      mallocMmapThreshold: WORKER_MALLOC_MMAP_THRESHOLD,
      mallocTrimThreshold: WORKER_MALLOC_TRIM_THRESHOLD,
      maxSemiSpaceMb: WORKER_MAX_SEMI_SPACE_MB,
    });
    expect(env.NODE_OPTIONS?.trim()).toBe(WORKER_NODE_OPTION);
  });

  it("keeps an operator's own values, in the script and for the benchmarks' workers", () => {
    const own = {
      MALLOC_ARENA_MAX: '4',
      MALLOC_MMAP_THRESHOLD_: '1048576',
      MALLOC_TRIM_THRESHOLD_: '2097152',
      NODE_OPTIONS: '--max-semi-space-size=32 --enable-source-maps',
    };
    for (const env of [scriptEnv(own), workerProcessEnv(own)])
      expect(tuningInForce(env, [])).toEqual({
        mallocArenaMax: 4,
        mallocMmapThreshold: 1_048_576,
        mallocTrimThreshold: 2_097_152,
        maxSemiSpaceMb: 32,
      });
    expect(workerProcessEnv({}).MALLOC_ARENA_MAX).toBe(String(WORKER_MALLOC_ARENA_MAX));
  });

  it('reads the flag from the command line too, the last one winning', () => {
    expect(tuningInForce({}, ['--max-semi-space-size', '4'])).toEqual({
      mallocArenaMax: null,
      mallocMmapThreshold: null,
      mallocTrimThreshold: null,
      maxSemiSpaceMb: 4,
    });
    expect(
      tuningInForce({ NODE_OPTIONS: '--max-semi-space-size=8' }, ['--max_semi_space_size=2']).maxSemiSpaceMb,
    ).toBe(2);
    expect(tuningInForce({ MALLOC_ARENA_MAX: 'x', MALLOC_MMAP_THRESHOLD_: '-1' }, [])).toEqual({
      mallocArenaMax: null,
      mallocMmapThreshold: null,
      mallocTrimThreshold: null,
      maxSemiSpaceMb: null,
    });
  });
});
