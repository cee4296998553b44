/**
 * Where a worker process's memory is, for the memory benchmarks: imported first by bench/worker-child.ts, it
 * keeps the worker threads the Temporal SDK starts (the workflows run there, each thread its own V8 heap that
 * `process.memoryUsage()` does not count), and on SIGWINCH prints one `memory {json}` line: RSS and its
 * parts from /proc (smaps_rollup), the main thread's heap, each workflow thread's heap, and what is left for
 * native allocations (Temporal core, glibc malloc). On SIGURG it first writes a heap snapshot of the main
 * thread and of each workflow thread, and the mappings, to BENCH_HEAP_SNAPSHOT_DIR (for bench/heap-summary.ts).
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import v8 from 'node:v8';
import type { Worker as WorkerThread } from 'node:worker_threads';

// The SDK is CommonJS and reads `Worker` off the module object when it starts its threads: a subclass put
// there before the SDK loads sees every thread it starts.
const threads = createRequire(import.meta.url)('node:worker_threads') as typeof import('node:worker_threads');
const started: WorkerThread[] = [];
const Original = threads.Worker;
threads.Worker = class extends Original {
  constructor(...args: ConstructorParameters<typeof Original>) {
    super(...args);
    started.push(this);
    this.once('exit', () => started.splice(started.indexOf(this), 1));
  }
} as typeof Original;

const MB = 1024 * 1024;
const mb = (bytes: number) => Math.round((bytes / MB) * 10) / 10;

/** /proc/self/smaps_rollup in MB: Rss, Anonymous, Pss_File, Shared_Clean, … */
function smapsRollup(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of fs.readFileSync('/proc/self/smaps_rollup', 'utf8').split('\n')) {
    const m = /^(\w+):\s+(\d+) kB/.exec(line);
    if (m) out[m[1]!] = Math.round((Number(m[2]) / 1024) * 10) / 10;
  }
  return out;
}

/**
 * Anonymous RSS of the mappings that look like glibc malloc arenas (a thread arena is a 64 MB-aligned
 * reservation, its used part rw-p), counted apart from the other anonymous mappings (V8's heap pages, the
 * main heap [heap], thread stacks). A heuristic: a V8 page can be 64 MB-aligned too.
 */
function anonymousByKind(): Record<string, number> {
  const text = fs.readFileSync('/proc/self/smaps', 'utf8');
  const kinds: Record<string, number> = { heapSegment: 0, arenaLike: 0, otherAnon: 0, file: 0 };
  let current: { start: bigint; end: bigint; name: string; perms: string } | null = null;
  for (const line of text.split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \d+\s*(.*)$/.exec(line);
    if (head) {
      const start = BigInt(`0x${head[1]}`);
      current = { start, end: BigInt(`0x${head[2]}`), perms: head[3]!, name: head[4] ?? '' };
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (!rss || !current) continue;
    const kb = Number(rss[1]);
    if (current.name === '[heap]') kinds.heapSegment! += kb;
    else if (current.name.startsWith('/')) kinds.file! += kb;
    else if (current.name === '' && current.start % BigInt(64 * MB) === 0n && current.perms === 'rw-p')
      kinds.arenaLike! += kb;
    else kinds.otherAnon! += kb;
  }
  return Object.fromEntries(Object.entries(kinds).map(([k, v]) => [k, Math.round((v / 1024) * 10) / 10]));
}

export interface MemoryReport {
  rssMb: number;
  smaps: Record<string, number>;
  anon: Record<string, number>;
  main: { heapTotal: number; heapUsed: number; external: number; arrayBuffers: number; malloced: number };
  /** The main thread's heap by space, committed MB (new_space, old_space, large_object_space, …). */
  mainSpaces: Record<string, number>;
  threads: Array<{ heapTotal: number; heapUsed: number; external: number; malloced: number }>;
  /** RSS less every V8 heap (main and threads, committed): native memory, code and stacks. */
  outsideV8HeapsMb: number;
  /** The workflows this worker holds in its cache (`Worker.getStatus()`), once a worker is registered. */
  cachedWorkflows: number | null;
}

let cachedWorkflows: () => number | null = () => null;
/** bench/worker-child.ts tells the probe how to count its worker's cached workflows. */
export function reportCachedWorkflows(count: () => number): void {
  cachedWorkflows = count;
}

export async function memoryReport(): Promise<MemoryReport> {
  const usage = process.memoryUsage();
  const mainStats = v8.getHeapStatistics();
  const threadStats = await Promise.all(
    started.map(async (t) => {
      const s = await t.getHeapStatistics();
      return {
        heapTotal: mb(s.total_heap_size),
        heapUsed: mb(s.used_heap_size),
        external: mb(s.external_memory),
        malloced: mb(s.malloced_memory),
      };
    }),
  );
  const smaps = smapsRollup();
  const rssMb = smaps.Rss ?? 0;
  const v8Heaps = usage.heapTotal + threadStats.reduce((a, t) => a + t.heapTotal * MB, 0);
  return {
    rssMb,
    smaps,
    anon: anonymousByKind(),
    main: {
      heapTotal: mb(usage.heapTotal),
      heapUsed: mb(usage.heapUsed),
      external: mb(usage.external),
      arrayBuffers: mb(usage.arrayBuffers),
      malloced: mb(mainStats.malloced_memory),
    },
    mainSpaces: Object.fromEntries(
      v8
        .getHeapSpaceStatistics()
        .filter((sp) => sp.space_size > 0)
        .map((sp) => [sp.space_name, mb(sp.space_size)]),
    ),
    threads: threadStats,
    outsideV8HeapsMb: Math.round(rssMb - v8Heaps / MB),
    cachedWorkflows: cachedWorkflows(),
  };
}

async function writeSnapshots(dir: string) {
  fs.mkdirSync(dir, { recursive: true });
  const stamp = Date.now();
  // The mappings too, to see which kind of memory (V8 pages, malloc arenas, large mmaps, stacks) is where.
  fs.writeFileSync(path.join(dir, `smaps-${stamp}.txt`), fs.readFileSync('/proc/self/smaps'));
  const files = [v8.writeHeapSnapshot(path.join(dir, `main-${stamp}.heapsnapshot`))];
  for (const [i, t] of started.entries()) {
    const file = path.join(dir, `thread${i}-${stamp}.heapsnapshot`);
    await pipeline(await t.getHeapSnapshot(), fs.createWriteStream(file));
    files.push(file);
  }
  return files;
}

const answer = (snapshotDir: string | undefined) => {
  void (async () => {
    const snapshots = snapshotDir ? await writeSnapshots(snapshotDir) : [];
    const report = await memoryReport();
    process.stdout.write(`memory ${JSON.stringify({ ...report, snapshots })}\n`);
  })();
};
// Both signals are ignored by default and not among the SDK's shutdown signals (SIGUSR2 is).
process.on('SIGWINCH', () => answer(undefined));
process.on('SIGURG', () => answer(process.env.BENCH_HEAP_SNAPSHOT_DIR));

// BENCH_MEMORY_EVERY_MS: a compact line on stderr that often, to see when the memory comes (fill, peak, settle).
const every = Number(process.env.BENCH_MEMORY_EVERY_MS ?? 0);
if (every > 0) {
  setInterval(() => {
    void memoryReport().then((r) => {
      const threadHeaps = r.threads.map((t) => `${t.heapUsed}/${t.heapTotal}`).join(',');
      process.stderr.write(
        `[memory ${new Date().toISOString().slice(11, 19)}] rss ${r.rssMb} main ${r.main.heapUsed}/${r.main.heapTotal} ` +
          `threads ${threadHeaps} outside-v8 ${r.outsideV8HeapsMb} arena-like ${r.anon.arenaLike} [heap] ${r.anon.heapSegment}\n`,
      );
    });
  }, every).unref();
}
