/**
 * The worker process's memory settings. Both must be in place when the process starts (glibc reads its
 * environment, V8 its flags, before any of our code runs), so `npm run worker` sets them in package.json's
 * script, and whatever else starts a worker process (the benchmarks) takes them from here:
 *
 * - `MALLOC_ARENA_MAX=2`: glibc gives each thread that allocates at once an arena of its own (up to 8 per core)
 *   and keeps, fragmented, what those arenas once held; with the Temporal core's threads, the workflow thread
 *   and libuv's pool, malloc held ≈ 220 MB with 1,000 parked workflows, ≈ 160 MB with two arenas.
 * - `--max-semi-space-size=8` (in NODE_OPTIONS, so an operator's own NODE_OPTIONS can still say otherwise):
 *   V8 grows a busy isolate's young generation up to 128 MB here (the health sweeper's checks and the
 *   activities allocate steadily; 94 MB measured) and keeps it committed; 16 MB costs more, short, scavenges.
 *
 * - `MALLOC_MMAP_THRESHOLD_=65536` and `MALLOC_TRIM_THRESHOLD_=131072`: glibc raises its mmap threshold each
 *   time a large block is freed (up to 32 MB), after which large blocks come from the heap and stay there,
 *   fragmented; fixed thresholds give large blocks back at once and trim the heap's free top. With 1,000 parked
 *   workflows the main heap went from ≈ 127 to ≈ 42 MB (RSS 556 → 479 MB, held 531 → 480 MB, same machine).
 * Measured with `BENCH_MEMORY_HOLD_MS=60000 npm run bench -- memory` (docs/benchmarks.md, worker memory).
 * `tuningInForce` tells the worker's start log whether the running process has them.
 */
import type { Env } from '../config/env';

export const WORKER_MALLOC_ARENA_MAX = 2;
export const WORKER_MALLOC_MMAP_THRESHOLD = 65_536;
export const WORKER_MALLOC_TRIM_THRESHOLD = 131_072;
export const WORKER_MAX_SEMI_SPACE_MB = 8;
/** The V8 flag, as NODE_OPTIONS carries it. */
export const WORKER_NODE_OPTION = `--max-semi-space-size=${WORKER_MAX_SEMI_SPACE_MB}`;

/**
 * The environment for a worker process started from `env`: the settings added where `env` has none of its
 * own (an operator's MALLOC_ARENA_MAX, or a semi-space size later in NODE_OPTIONS, wins), as the npm script does.
 */
export function workerProcessEnv(env: Env): Env {
  return {
    ...env,
    MALLOC_ARENA_MAX: env.MALLOC_ARENA_MAX || String(WORKER_MALLOC_ARENA_MAX),
    MALLOC_MMAP_THRESHOLD_: env.MALLOC_MMAP_THRESHOLD_ || String(WORKER_MALLOC_MMAP_THRESHOLD),
    MALLOC_TRIM_THRESHOLD_: env.MALLOC_TRIM_THRESHOLD_ || String(WORKER_MALLOC_TRIM_THRESHOLD),
    NODE_OPTIONS: [WORKER_NODE_OPTION, env.NODE_OPTIONS].filter(Boolean).join(' '),
  };
}

/** What this process runs with: glibc's arena cap and thresholds, V8's semi-space size (MB); null when not set. */
export function tuningInForce(
  env: Env = process.env,
  execArgv: string[] = process.execArgv,
): {
  mallocArenaMax: number | null;
  mallocMmapThreshold: number | null;
  mallocTrimThreshold: number | null;
  maxSemiSpaceMb: number | null;
} {
  const positive = (value: string | undefined) => {
    const n = Number(value);
    return Number.isInteger(n) && n > 0 ? n : null;
  };
  // NODE_OPTIONS first, then the command line: the last one given is the one V8 uses.
  const flags = [...(env.NODE_OPTIONS ?? '').split(/\s+/), ...execArgv];
  let semi: number | null = null;
  for (const [i, flag] of flags.entries()) {
    const m = /^--max[-_]semi[-_]space[-_]size(?:=(\d+))?$/.exec(flag);
    if (m) semi = Number(m[1] ?? flags[i + 1]);
  }
  return {
    mallocArenaMax: positive(env.MALLOC_ARENA_MAX),
    mallocMmapThreshold: positive(env.MALLOC_MMAP_THRESHOLD_),
    mallocTrimThreshold: positive(env.MALLOC_TRIM_THRESHOLD_),
    maxSemiSpaceMb: semi !== null && Number.isFinite(semi) ? semi : null,
  };
}
