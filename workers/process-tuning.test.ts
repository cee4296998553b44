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
  const out = execFileSync('sh', ['-c', `${prefix} sh -c 'echo "$MALLOC_ARENA_MAX|$NODE_OPTIONS"'`], {
    env: { PATH: process.env.PATH!, ...env },
    encoding: 'utf8',
  }).trim();
  const [arenas, nodeOptions] = out.split('|');
  return { MALLOC_ARENA_MAX: arenas, NODE_OPTIONS: nodeOptions };
}

describe('the worker process memory settings', () => {
  it('npm run worker sets the declared values', () => {
    const env = scriptEnv({});
    expect(tuningInForce(env, [])).toEqual({
      mallocArenaMax: WORKER_MALLOC_ARENA_MAX,
      maxSemiSpaceMb: WORKER_MAX_SEMI_SPACE_MB,
    });
    expect(env.NODE_OPTIONS?.trim()).toBe(WORKER_NODE_OPTION);
  });

  it("keeps an operator's own values, in the script and for the benchmarks' workers", () => {
    const own = { MALLOC_ARENA_MAX: '4', NODE_OPTIONS: '--max-semi-space-size=32 --enable-source-maps' };
    for (const env of [scriptEnv(own), workerProcessEnv(own)])
      expect(tuningInForce(env, [])).toEqual({ mallocArenaMax: 4, maxSemiSpaceMb: 32 });
    expect(workerProcessEnv({}).MALLOC_ARENA_MAX).toBe(String(WORKER_MALLOC_ARENA_MAX));
  });

  it('reads the flag from the command line too, the last one winning', () => {
    expect(tuningInForce({}, ['--max-semi-space-size', '4'])).toEqual({
      mallocArenaMax: null,
      maxSemiSpaceMb: 4,
    });
    expect(
      tuningInForce({ NODE_OPTIONS: '--max-semi-space-size=8' }, ['--max_semi_space_size=2']).maxSemiSpaceMb,
    ).toBe(2);
    expect(tuningInForce({ MALLOC_ARENA_MAX: 'x' }, [])).toEqual({
      mallocArenaMax: null,
      maxSemiSpaceMb: null,
    });
  });
});
