/** Small helpers shared by the benchmarks: percentiles, a concurrency runner, polling, process memory. */
import fs from 'node:fs';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Nearest-rank percentile (p in 0..100) of unsorted samples; NaN when empty. */
export function percentile(samples: number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

export interface LatencySummary {
  n: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

export function summarize(samples: number[]): LatencySummary {
  const round = (x: number) => Math.round(x * 10) / 10;
  return {
    n: samples.length,
    p50: round(percentile(samples, 50)),
    p90: round(percentile(samples, 90)),
    p99: round(percentile(samples, 99)),
    max: round(Math.max(...samples)),
    mean: round(samples.reduce((a, b) => a + b, 0) / Math.max(1, samples.length)),
  };
}

/**
 * Runs `total` calls of `fn` with exactly `concurrency` in flight (each lane takes the next index when its
 * previous call ends), the way a steady stream of concurrent clients would, and times each call.
 */
export async function runLanes<T>(
  total: number,
  concurrency: number,
  fn: (i: number) => Promise<T>,
): Promise<Array<{ ms: number; value: T }>> {
  const out: Array<{ ms: number; value: T }> = new Array(total);
  let next = 0;
  const lane = async () => {
    for (;;) {
      const i = next++;
      if (i >= total) return;
      const t0 = performance.now();
      const value = await fn(i);
      out[i] = { ms: performance.now() - t0, value };
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, lane));
  return out;
}

/** Polls `check` every `everyMs` until it returns true; throws after `timeoutMs`. */
export async function until(what: string, check: () => Promise<boolean>, timeoutMs: number, everyMs = 50) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Resident set size of a process in bytes, from /proc (Linux): the one number the target is about. */
export function rssOf(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = /VmRSS:\s+(\d+)\s+kB/.exec(status)?.[1];
  if (!kb) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(kb) * 1024;
}

export const mb = (bytes: number) => Math.round(bytes / (1024 * 1024));

/** user + system CPU seconds of one process so far (Linux /proc; clock ticks are 100 Hz here). */
/** User + system CPU seconds from a `/proc/…/stat` file (a process's, or one thread's under `task/`). */
function cpuSecondsIn(statPath: string): number {
  try {
    const stat = fs.readFileSync(statPath, 'utf8');
    // Fields after the command name (which may contain spaces) start after the last ')'; ticks are USER_HZ (100).
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0; // the process or thread ended meanwhile
  }
}

const cpuSecondsOf = (pid: number) => cpuSecondsIn(`/proc/${pid}/stat`);

/** This process and all its descendants (the Temporal dev server, a worker child). */
export function processTree(root = process.pid): number[] {
  const children = new Map<number, number[]>();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {}
  }
  const out: number[] = [];
  const walk = (pid: number) => {
    out.push(pid);
    for (const c of children.get(pid) ?? []) walk(c);
  };
  walk(root);
  return out;
}

/**
 * CPU seconds used by a set of processes between two snapshots. On a shared machine wall-clock numbers
 * depend on what else runs; the CPU the stack itself burned does not, and divided by the cores it bounds
 * how fast the same work could go on an otherwise idle machine.
 */
export function cpuSnapshot(pids: number[]): Map<number, number> {
  return new Map(pids.map((p) => [p, cpuSecondsOf(p)]));
}

/**
 * This process's CPU by thread kind (Linux `/proc/self/task`): the main thread (API, activities, stand-in,
 * load generator), the workflow thread (Temporal's workflow isolate, a worker_thread), the Temporal core's
 * Rust threads, V8's helpers (GC, compiler) and the rest. Seconds per kind, from thread id → [kind, seconds].
 */
export function threadSnapshot(): Map<number, [string, number]> {
  const out = new Map<number, [string, number]>();
  for (const tid of fs.readdirSync('/proc/self/task')) {
    try {
      const name = fs.readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim();
      out.set(Number(tid), [threadKind(name, Number(tid)), cpuSecondsIn(`/proc/self/task/${tid}/stat`)]);
    } catch {} // the thread ended meanwhile
  }
  return out;
}

function threadKind(name: string, tid: number): string {
  if (tid === process.pid) return 'main';
  if (name === 'WorkerThread') return 'workflow thread';
  if (name.startsWith('V8')) return 'V8 helpers';
  if (name.startsWith('libuv')) return 'libuv pool';
  // The Temporal core bridge's Rust threads (tokio's runtime and the core's own workers).
  if (name.startsWith('tokio') || name.startsWith('workflow-proces')) return 'Temporal core';
  return 'other';
}

/** "main 12, workflow thread 8, …" in CPU-ms per operation, largest first. */
export function threadsPerOp(threads: Record<string, number>, ops: number): string {
  return Object.entries(threads)
    .sort((a, b) => b[1] - a[1])
    .map(([kind, s]) => `${kind} ${Math.round((s * 1000) / ops)}`)
    .join(', ');
}

/** CPU seconds by thread kind since `before` (threads started since count from zero). */
export function threadDelta(before: Map<number, [string, number]>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [tid, [kind, seconds]] of threadSnapshot())
    out[kind] = (out[kind] ?? 0) + seconds - (before.get(tid)?.[1] ?? 0);
  return out;
}

export function cpuDelta(before: Map<number, number>, pids: number[]): number {
  let total = 0;
  for (const p of pids) total += cpuSecondsOf(p) - (before.get(p) ?? 0);
  return Math.round(total * 100) / 100;
}
