/**
 * `npm run bench` — the targets of docs/architecture.md measured on the local stack, each benchmark in a fresh
 * stack (its own Temporal dev server and Postgres database), results printed and written to
 * docs/benchmarks.md. `npm run bench -- <name>` runs one of: claim, burst, fill, memory, actions, firstReply.
 *
 * Everything (Temporal, Postgres, worker, API, stand-in and the load generator) shares one machine, so
 * the numbers include the load generator's own CPU; that is how the targets are meant (local dev server).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { and, eq } from 'drizzle-orm';
import pg from 'pg';
import { configOf, parseEnv } from '../config/env';
import { healthSweeperWorkflowId } from '../contracts/workflow-ids';
import { instances } from '../drizzle/schema';
import { projectRoot, readActions } from '../scripts/temporal-dev';
import { type Stack, startStack } from '../test/stack';
import { pauseReconcileSchedule, reconcileIntervalMs, reconcileRunActions } from '../test/support/actions';
import { freePort } from '../test/support/ports';
import { workflowsPath } from '../workers/create-worker';
import { poolSettings } from '../workers/ensure-pool';
import { workerProcessEnv } from '../workers/process-tuning';
import { profileStart, profileStop } from './cpu-profile';
import { type FloorBench, type FloorRun, withFloor } from './floor';
import {
  cpuDelta,
  cpuSnapshot,
  type LatencySummary,
  mb,
  processTree,
  rssOf,
  runLanes,
  sleep,
  summarize,
  threadDelta,
  threadSnapshot,
  threadsPerOp,
  until,
} from './lib';
import type { MemoryReport } from './memory-probe';
import { profileClaims } from './profile';
import {
  type ActionsBench,
  type BenchResults,
  type BurstBench,
  type ClaimBench,
  type FillBench,
  type FirstReplyBench,
  type MemoryBench,
  renderTable,
  type ScaleBench,
  writeDocs,
} from './report';
import type { WorkerChildSettings } from './worker-child';

const CONCURRENCY = 20;
const resultsFile = process.env.BENCH_RESULTS_FILE ?? path.join(projectRoot, 'bench', 'results.json');
/** Another results file (e.g. a run beside another): then docs/benchmarks.md is left alone. */
const writesDocs = !process.env.BENCH_RESULTS_FILE;

/** What a worker runs on with an empty environment: the production defaults. */
const DEFAULT_CONFIG = configOf(parseEnv({}), {});
/**
 * The instance timings a real pool runs with (config/env.ts's defaults), not the test stack's quick ones: health
 * every 15 s, 3 misses — the health sweeper's, outside the instance workflows, so idle instances cost nothing while
 * healthy and no quiet mode (one check per 10 min, as these benchmarks once ran) is needed — and an idle TTL of 7
 * days, whose timer a claim leaves running.
 */
const PRODUCTION_TIMINGS = (({ startDeadlineMs: _, ...timings }) => timings)(DEFAULT_CONFIG.instanceTimings);
/**
 * The pool's own wake-up as a worker declares it (the test stack's is 1 s, to settle tests quickly): a pool read
 * and two workflow tasks a second that no production pool has would weigh on every measured operation.
 */
const PRODUCTION_POOL = { pollIntervalMs: poolSettings(DEFAULT_CONFIG).pollIntervalMs };
/** Instances must not be replaced for slowness while hundreds start at once on 2 cores. */
const GENEROUS_START_DEADLINE_MS = 10 * 60_000;

const round1 = (x: number) => Math.round(x * 10) / 10;
const log = (msg: string) => console.log(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}`);

async function idleCount(stack: Stack): Promise<number> {
  return (await stack.counts()).idle ?? 0;
}

/**
 * CPU seconds the stack burned over an interval: this process (API, worker unless it runs apart, stand-in,
 * load generator), its children (the Temporal dev server, a worker child) and the Postgres backends serving
 * the stack's database.
 */
interface CpuParts {
  total: number;
  node: number;
  children: number;
  postgres: number;
  /** `node` by thread kind (threadDelta). */
  threads: Record<string, number>;
}

class CpuMeter {
  private readonly sql: pg.Pool;
  private before = new Map<number, number>();
  private threadsBefore = new Map<number, [string, number]>();
  constructor(databaseUrl: string) {
    this.sql = new pg.Pool({ connectionString: databaseUrl, max: 1 });
  }
  private async pids(): Promise<number[]> {
    const { rows } = await this.sql.query<{ pid: number }>(
      'select pid from pg_stat_activity where datname = current_database()',
    );
    return [...processTree(), ...rows.map((r) => r.pid)];
  }
  async start() {
    this.before = cpuSnapshot(await this.pids());
    this.threadsBefore = threadSnapshot();
  }
  async stop(): Promise<number> {
    return (await this.stopWithParts()).total;
  }
  /** Total and by part: this Node process (API, worker, stand-in, load generator), children, Postgres. */
  async stopWithParts(): Promise<CpuParts> {
    const all = await this.pids();
    const tree = new Set(processTree());
    const node = cpuDelta(this.before, [process.pid]);
    const threads = threadDelta(this.threadsBefore);
    const children = cpuDelta(
      this.before,
      all.filter((p) => tree.has(p) && p !== process.pid),
    );
    const pg = cpuDelta(
      this.before,
      all.filter((p) => !tree.has(p)),
    );
    return { total: Math.round((node + children + pg) * 100) / 100, node, children, postgres: pg, threads };
  }
  close() {
    return this.sql.end();
  }
}

/**
 * Waits for `n` idle, logging progress every 10 s; on timeout it prints what a few still-starting instances
 * were told by their health checks, so a stuck fill says why.
 */
async function waitIdle(stack: Stack, n: number, timeoutMs: number, onPoll?: () => void) {
  let lastLog = Date.now();
  try {
    await until(
      `${n} idle`,
      async () => {
        onPoll?.();
        const counts = await stack.counts();
        if (Date.now() - lastLog > 10_000) {
          lastLog = Date.now();
          const busy = Object.entries(counts).filter(([, v]) => v > 0);
          log(
            `  counts: ${busy.map(([k, v]) => `${k} ${v}`).join(', ')}; load ${os.loadavg()[0]!.toFixed(1)}`,
          );
        }
        return (counts.idle ?? 0) >= n;
      },
      timeoutMs,
      onPoll ? 500 : 100,
    );
  } catch (err) {
    const rows = await stack.database.db
      .select({ id: instances.id })
      .from(instances)
      .where(and(eq(instances.pool, stack.poolName), eq(instances.status, 'starting')))
      .limit(2);
    for (const { id } of rows) {
      const history = await stack.temporal.workflow.getHandle(`instance-${id}`).fetchHistory();
      const results = (history.events ?? [])
        .map((e) => e.activityTaskCompletedEventAttributes?.result?.payloads?.[0]?.data)
        .filter((d): d is Uint8Array => Boolean(d))
        .slice(-3)
        .map((d) => Buffer.from(d).toString().slice(0, 200));
      log(
        `  still starting: ${id}, ${history.events?.length} events; last activity results: ${results.join(' | ')}`,
      );
    }
    throw err;
  }
}

async function setTarget(stack: Stack, targetIdle: number, maxTotal?: number) {
  // Retried: on an overloaded machine the pool's Update has answered 500 once (the API's deadline).
  for (let attempt = 1; ; attempt++) {
    const res = await stack.api('PUT', '/api/pool/target', { targetIdle, ...(maxTotal ? { maxTotal } : {}) });
    if (res.status === 200) return;
    const text = await res.text();
    if (attempt >= 5) throw new Error(`PUT /api/pool/target answered ${res.status}: ${text}`);
    log(`PUT /api/pool/target answered ${res.status} (${text.slice(0, 200)}); retrying`);
    await sleep(2000);
  }
}

interface ClaimOutcome {
  status: number;
  instanceId: string | null;
  retryAfter: string | null;
  /** Error code and message of a non-200 answer. */
  error: string | null;
  key: string;
  startedAt: number;
  endedAt: number;
}

async function claim(stack: Stack, key: string, maxWaitMs?: number): Promise<ClaimOutcome> {
  const startedAt = Date.now();
  const res = await stack.api(
    'POST',
    '/api/pool/claim',
    { agentName: 'Bench', ...(maxWaitMs !== undefined ? { maxWaitMs } : {}) },
    { 'idempotency-key': key },
  );
  const body = (await res.json()) as { instanceId?: string; code?: string; error?: string };
  return {
    status: res.status,
    instanceId: body.instanceId ?? null,
    error: body.instanceId ? null : `${body.code ?? ''}: ${body.error ?? ''}`.slice(0, 200),
    retryAfter: res.headers.get('retry-after'),
    key,
    startedAt,
    endedAt: Date.now(),
  };
}

function mustSucceed(outcomes: ClaimOutcome[]) {
  const bad = outcomes.filter((o) => o.status !== 200);
  if (bad.length) throw new Error(`${bad.length} claims did not answer 200 (e.g. ${bad[0]!.status})`);
}

let bundlePath = '';
async function ensureBundle() {
  if (bundlePath) return bundlePath;
  log('bundling the workflows once');
  const bundle = await bundleWorkflowCode({
    workflowsPath,
    logger: { info() {}, warn() {}, error: console.error, debug() {}, trace() {}, log() {} },
  });
  bundlePath = path.join(os.tmpdir(), `convos-bench-bundle-${process.pid}.js`);
  fs.writeFileSync(bundlePath, bundle.code);
  return bundlePath;
}

let current: Stack | null = null;
async function withStack<T>(opts: Parameters<typeof startStack>[0], fn: (s: Stack) => Promise<T>) {
  const stack = await startStack({ workflowBundlePath: await ensureBundle(), ...opts });
  current = stack;
  try {
    return await fn(stack);
  } finally {
    log('stopping the stack');
    current = null;
    await stack.stop();
  }
}

// Ctrl-C / kill: stop the stack (its dev server and database) instead of leaving them behind.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log(`${signal}: stopping`);
    const stopping = current?.stop() ?? Promise.resolve();
    void stopping.finally(() => process.exit(130));
  });
}

/** Benchmarks 1 and 2: warm-pool claim latency through the API, and the direct claim baseline. */
/** What one kind of operation measured over the interleaved rounds. */
interface Measured<T> {
  alone: Array<{ ms: number; value: T }>;
  concurrent: Array<{ ms: number; value: T }>;
  cpuAlone: number;
  cpuConcurrent: CpuParts;
  /** Operations the CPU above was spent on (the concurrent chunks' load-keeping tail included). */
  opsAlone: number;
  opsConcurrent: number;
  /** Each round's p50 with CONCURRENCY in flight: how much the rounds of one run differ. */
  roundP50s: number[];
}

const addParts = (a: CpuParts, b: CpuParts): CpuParts => ({
  total: a.total + b.total,
  node: a.node + b.node,
  children: a.children + b.children,
  postgres: a.postgres + b.postgres,
  threads: Object.fromEntries(
    [...new Set([...Object.keys(a.threads), ...Object.keys(b.threads)])].map((k) => [
      k,
      (a.threads[k] ?? 0) + (b.threads[k] ?? 0),
    ]),
  ),
});

/**
 * Measures every kind side by side: `rounds` rounds, each running every kind (in an order that rotates from
 * round to round) alone, then at `lanes` in flight. A concurrent chunk runs `lanes` operations more than it
 * counts: the first `perRound` started are measured, the rest keep the load at `lanes` until the last measured
 * one ends. Phases measured one after the other differed by whatever the machine did meanwhile (a GC, the
 * sweeper, the pool): the ratios of one run moved 1.0–2.0×; interleaved, both sides carry it alike.
 */
interface InterleavedCounts {
  warmup: number;
  alone: number;
  concurrent: number;
  lanes: number;
  rounds: number;
}

/** Each round's share of the alone and the concurrent operations (rounded up). */
const sharesOf = (counts: InterleavedCounts) => ({
  aloneEach: Math.ceil(counts.alone / counts.rounds),
  concEach: Math.ceil(counts.concurrent / counts.rounds),
});

/**
 * How many operations `measureInterleaved` runs of each kind: the warm-up (alone, then 2 × lanes at full
 * concurrency), each round's shares, and each concurrent chunk's load-keeping tail (`lanes` more than it counts).
 */
function opsPerKind(counts: InterleavedCounts): number {
  const { aloneEach, concEach } = sharesOf(counts);
  return counts.warmup + 2 * counts.lanes + counts.rounds * (aloneEach + concEach + counts.lanes);
}

async function measureInterleaved<K extends string>(
  kinds: Record<K, (i: number) => Promise<unknown>>,
  counts: InterleavedCounts,
  cpu: CpuMeter,
): Promise<Record<K, Measured<unknown>>> {
  const names = Object.keys(kinds) as K[];
  const next = Object.fromEntries(names.map((k) => [k, 0])) as Record<K, number>;
  const take = (k: K) => () => kinds[k](next[k]++);
  const empty: CpuParts = { total: 0, node: 0, children: 0, postgres: 0, threads: {} };
  const out = Object.fromEntries(
    names.map((k) => [
      k,
      {
        alone: [],
        concurrent: [],
        cpuAlone: 0,
        cpuConcurrent: empty,
        opsAlone: 0,
        opsConcurrent: 0,
        roundP50s: [],
      },
    ]),
  ) as unknown as Record<K, Measured<unknown>>;
  // Warm-up: alone, then at full concurrency, so what grows under load (the database pools' connections, the
  // HTTP keep-alive connections, the code paths only concurrency takes) is grown before round 1 is measured:
  // without it the claim's first rounds ran up to 1.5× its later ones.
  for (const k of names) {
    for (let i = 0; i < counts.warmup; i++) await take(k)();
    await runLanes(2 * counts.lanes, counts.lanes, take(k));
  }
  const { aloneEach, concEach } = sharesOf(counts);
  for (let r = 0; r < counts.rounds; r++) {
    const order = names.map((_, j) => names[(j + r) % names.length]!);
    for (const k of order) {
      const m = out[k];
      const op = take(k);
      await cpu.start();
      m.alone.push(...(await runLanes(aloneEach, 1, op)));
      m.cpuAlone += await cpu.stop();
      m.opsAlone += aloneEach;
      const last = r === counts.rounds - 1;
      await cpu.start();
      if (last) await profileStart();
      const chunk = await runLanes(concEach + counts.lanes, counts.lanes, op);
      const parts = await cpu.stopWithParts();
      if (last) await profileStop(`${k}-concurrent`);
      m.concurrent.push(...chunk.slice(0, concEach));
      m.roundP50s.push(summarize(chunk.slice(0, concEach).map((c) => c.ms)).p50);
      m.cpuConcurrent = addParts(m.cpuConcurrent, parts);
      m.opsConcurrent += concEach + counts.lanes;
    }
  }
  return out;
}

/** The floor's figures from what `measureInterleaved` measured of one kind. */
function floorRun(what: string, m: Measured<unknown>, lanes: number): FloorRun {
  const per = (x: number) => Math.round((x * 1000) / m.opsConcurrent);
  const run: FloorRun = {
    alone: summarize(m.alone.map((r) => r.ms)),
    concurrent: summarize(m.concurrent.map((r) => r.ms)),
    cpuMsPerOp: {
      alone: Math.round((m.cpuAlone * 1000) / m.opsAlone),
      concurrent: per(m.cpuConcurrent.total),
    },
  };
  log(
    `floor ${what} x${lanes} CPU per Update: node ${per(m.cpuConcurrent.node)} ` +
      `(${threadsPerOp(m.cpuConcurrent.threads, m.opsConcurrent)}), temporal ${per(m.cpuConcurrent.children)}, ` +
      `postgres ${per(m.cpuConcurrent.postgres)} ms`,
  );
  log(
    `floor ${what}: alone p50 ${run.alone.p50} ms, x${lanes} p50 ${run.concurrent.p50} ms; ` +
      `${run.cpuMsPerOp.alone} / ${run.cpuMsPerOp.concurrent} CPU-ms per Update`,
  );
  return run;
}

async function benchClaim(): Promise<ClaimBench> {
  const warmup = 10;
  const alone = 40;
  const concurrent = 240;
  // Eight short rounds rather than a few long ones: a slow spell of the machine lands on every kind alike
  // (sixteen, with 160 more idle instances to fill, spread the runs no less: 1.38–1.64×).
  const rounds = 8;
  const counts: InterleavedCounts = { warmup, alone, concurrent, lanes: CONCURRENCY, rounds };
  const perKind = opsPerKind(counts);
  const fill = perKind;
  return withStack(
    {
      targetIdle: fill,
      maxTotal: fill + 50,
      timings: { ...PRODUCTION_TIMINGS, startDeadlineMs: GENEROUS_START_DEADLINE_MS },
      pool: PRODUCTION_POOL,
    },
    async (stack) => {
      const t0 = Date.now();
      log(`filling ${fill} idle`);
      await waitIdle(stack, fill, 10 * 60_000);
      log(`filled in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      // No refills during the measurement: the claim path alone is measured, not the pool warming up.
      await setTarget(stack, 0);
      await sleep(2000);

      const cpu = new CpuMeter(stack.config.databaseUrl!);
      // What the stack burns doing nothing (the health sweeper checking every idle instance, the pool): it is in
      // every phase's CPU, longer phases carry more of it.
      await cpu.start();
      await profileStart();
      await sleep(5000);
      const idleParts = await cpu.stopWithParts();
      await profileStop('idle-stack');
      const idleCpuMsPerSecond = Math.round((idleParts.total * 1000) / 5);
      log(
        `idle stack: ${idleCpuMsPerSecond} CPU-ms/s (node ${Math.round((idleParts.node * 1000) / 5)}, ` +
          `${threadsPerOp(idleParts.threads, 5)}; temporal ${Math.round((idleParts.children * 1000) / 5)}, postgres ${Math.round((idleParts.postgres * 1000) / 5)})`,
      );
      const run = randomUUID().slice(0, 8);
      // The engine's floor on the same dev server, Postgres, stand-in and process, in rounds with the claims.
      log(
        `measuring a bare Update, a claim-shaped Update, the durable floor and the claim in ${rounds} interleaved rounds`,
      );
      const measured = await withFloor(stack, perKind, (ops) =>
        measureInterleaved(
          {
            bare: ops.bare,
            shaped: ops.shaped,
            durable: ops.durable,
            claim: async (i) => {
              const outcome = await claim(stack, `bench-${run}-${i}`);
              mustSucceed([outcome]);
              return outcome;
            },
          },
          counts,
          cpu,
        ),
      );
      await cpu.close();
      const floor: FloorBench = {
        bare: floorRun('bare Update', measured.bare, CONCURRENCY),
        shaped: floorRun('claim-shaped Update', measured.shaped, CONCURRENCY),
        durable: floorRun('durable claim-shaped Update', measured.durable, CONCURRENCY),
      };
      const claims = measured.claim;
      const aloneRuns = claims.alone as Array<{ ms: number; value: ClaimOutcome }>;
      const concRuns = claims.concurrent as Array<{ ms: number; value: ClaimOutcome }>;
      const cpuParts = claims.cpuConcurrent;
      const cpuAlone = claims.cpuAlone;
      const cpuConcurrent = cpuParts.total;
      const perClaim = (x: number) => Math.round((x * 1000) / claims.opsConcurrent);
      log(
        `claim x${CONCURRENCY} CPU per claim: node ${perClaim(cpuParts.node)} ` +
          `(${threadsPerOp(cpuParts.threads, claims.opsConcurrent)}), ` +
          `temporal ${perClaim(cpuParts.children)}, postgres ${perClaim(cpuParts.postgres)} ms`,
      );
      const claimAlone = summarize(aloneRuns.map((r) => r.ms));
      const claimConcurrent = summarize(concRuns.map((r) => r.ms));
      log(`claim alone p50 ${claimAlone.p50} p99 ${claimAlone.p99}`);
      log(`claim x${CONCURRENCY} p50 ${claimConcurrent.p50} p99 ${claimConcurrent.p99}`);
      const cpuConcPerClaim = (cpuConcurrent * 1000) / claims.opsConcurrent;
      log(
        `claim / shaped floor at p50: ${(claimConcurrent.p50 / floor.shaped.concurrent.p50).toFixed(2)}× at ` +
          `${CONCURRENCY} concurrent (target ≤ 1.5×), ${(claimAlone.p50 / floor.shaped.alone.p50).toFixed(2)}× alone ` +
          `(≤ 2×); CPU ${(cpuConcPerClaim / floor.shaped.cpuMsPerOp.concurrent).toFixed(2)}× (≤ 1.5×); ` +
          `durable floor / shaped floor: ${(floor.durable.concurrent.p50 / floor.shaped.concurrent.p50).toFixed(2)}×, ` +
          `${(floor.durable.alone.p50 / floor.shaped.alone.p50).toFixed(2)}× alone, CPU ` +
          `${(floor.durable.cpuMsPerOp.concurrent / floor.shaped.cpuMsPerOp.concurrent).toFixed(2)}×`,
      );

      const roundRatios = claims.roundP50s.map((c, r) => c / measured.shaped.roundP50s[r]!);
      log(
        `per round, p50 x${CONCURRENCY}: shaped ${measured.shaped.roundP50s.join(' ')}; durable ` +
          `${measured.durable.roundP50s.join(' ')}; claim ${claims.roundP50s.join(' ')}; claim / shaped ` +
          `${roundRatios.map((x) => x.toFixed(2)).join(' ')}`,
      );

      log('profiling where a claim spends its time (workflow histories)');
      const profileAlone = await profileClaims(
        stack.temporal,
        aloneRuns.map((r) => r.value),
      );
      const profileConcurrent = await profileClaims(
        stack.temporal,
        concRuns.map((r) => r.value),
      );

      const direct = await benchDirect(stack, warmup, alone, concurrent);
      return {
        claimAlone,
        claimConcurrent,
        // Per operation the CPU was spent on, as the floor's (a concurrent chunk's load-keeping tail included).
        cpuMsPerClaim: {
          alone: Math.round((cpuAlone * 1000) / claims.opsAlone),
          concurrent: perClaim(cpuConcurrent),
        },
        cpuMsPerClaimByPart: {
          node: perClaim(cpuParts.node),
          temporal: perClaim(cpuParts.children),
          postgres: perClaim(cpuParts.postgres),
        },
        directAlone: direct.alone,
        directConcurrent: direct.concurrent,
        cpuMsPerDirectClaim: direct.cpuMsPerClaim,
        profileAlone,
        profileConcurrent,
        healthIntervalMs: PRODUCTION_TIMINGS.healthIntervalMs,
        floor,
        idleCpuMsPerSecond,
      };
    },
  );
}

/**
 * The baseline without Temporal: lock an idle row (`FOR UPDATE SKIP LOCKED`), call the same stand-in's
 * provision endpoint over HTTP, mark the row claimed, commit. Same database server, same stand-in process.
 */
async function benchDirect(stack: Stack, warmup: number, alone: number, concurrent: number) {
  const sql = new pg.Pool({ connectionString: stack.config.databaseUrl!, max: CONCURRENCY });
  try {
    const total = warmup + alone + concurrent;
    await sql.query(`create table if not exists bench_direct (
      id text primary key, status text not null, url text not null, token text not null,
      claimed_by text, claimed_at timestamptz)`);
    await sql.query('truncate bench_direct');
    const rows = Array.from({ length: total }, (_, i) => ({
      id: `direct-${randomUUID()}`,
      token: randomUUID(),
      n: i,
    }));
    for (const r of rows) {
      const res = await fetch(`${stack.standinUrl}/_standin/instances`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ instanceId: r.id, token: r.token }),
      });
      if (!res.ok) throw new Error(`stand-in registration answered ${res.status}`);
    }
    await sql.query(
      `insert into bench_direct (id, status, url, token)
       select id, 'idle', $2 || '/i/' || id, token from unnest($1::text[], $3::text[]) as r(id, token)`,
      [rows.map((r) => r.id), stack.standinUrl, rows.map((r) => r.token)],
    );

    const directClaim = async (key: string) => {
      const tx = await sql.connect();
      try {
        await tx.query('begin');
        const {
          rows: [row],
        } = await tx.query<{ id: string; url: string; token: string }>(
          `select id, url, token from bench_direct where status = 'idle'
           order by id limit 1 for update skip locked`,
        );
        if (!row) throw new Error('direct baseline ran out of idle rows');
        const res = await fetch(`${row.url}/pool/provision`, {
          method: 'POST',
          headers: { authorization: `Bearer ${row.token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ requestId: key, agentName: 'Bench', instructions: 'be brief' }),
        });
        if (!res.ok) throw new Error(`provision answered ${res.status}`);
        await res.json();
        await tx.query(
          `update bench_direct set status = 'claimed', claimed_by = $1, claimed_at = now() where id = $2`,
          [key, row.id],
        );
        await tx.query('commit');
      } catch (err) {
        await tx.query('rollback').catch(() => {});
        throw err;
      } finally {
        tx.release();
      }
    };

    const run = randomUUID().slice(0, 8);
    for (let i = 0; i < warmup; i++) await directClaim(`direct-${run}-w${i}`);
    const cpu = new CpuMeter(stack.config.databaseUrl!);
    await cpu.start();
    const a = await runLanes(alone, 1, (i) => directClaim(`direct-${run}-a${i}`));
    const cpuAlone = await cpu.stop();
    await cpu.start();
    const c = await runLanes(concurrent, CONCURRENCY, (i) => directClaim(`direct-${run}-c${i}`));
    const cpuConcurrent = await cpu.stop();
    await cpu.close();
    const result = {
      alone: summarize(a.map((r) => r.ms)),
      concurrent: summarize(c.map((r) => r.ms)),
      cpuMsPerClaim: {
        alone: Math.round((cpuAlone * 1000) / alone),
        concurrent: Math.round((cpuConcurrent * 1000) / concurrent),
      },
    };
    log(`direct alone p50 ${result.alone.p50}, x${CONCURRENCY} p50 ${result.concurrent.p50}`);
    return result;
  } finally {
    await sql.end();
  }
}

/** Benchmark 3: 200 claims at once on 150 idle, nothing refilling. */
async function benchBurst(): Promise<BurstBench> {
  const idle = 150;
  const claims = 200;
  const maxWaitMs = 3000;
  // maxTotal = idle: claimed instances still count, so the pool cannot start replacements.
  return withStack(
    {
      targetIdle: idle,
      maxTotal: idle,
      timings: { ...PRODUCTION_TIMINGS, startDeadlineMs: GENEROUS_START_DEADLINE_MS },
      pool: PRODUCTION_POOL,
    },
    async (stack) => {
      log(`filling ${idle} idle`);
      await waitIdle(stack, idle, 10 * 60_000);
      await sleep(1000);
      const run = randomUUID().slice(0, 8);
      const cpu = new CpuMeter(stack.config.databaseUrl!);
      await cpu.start();
      const t0 = Date.now();
      const outcomes = await Promise.all(
        Array.from({ length: claims }, (_, i) => claim(stack, `burst-${run}-${i}`, maxWaitMs)),
      );
      const wallMs = Date.now() - t0;
      const cpuSeconds = await cpu.stop();
      await cpu.close();
      const ok = outcomes.filter((o) => o.status === 200);
      const unavailable = outcomes.filter((o) => o.status === 503);
      const other = outcomes.filter((o) => o.status !== 200 && o.status !== 503);
      const distinct = new Set(ok.map((o) => o.instanceId));

      // The stand-in is the ground truth of what was provisioned. A double claim is an instance two keys
      // believe they hold: two 200s naming one instance, or a 200 naming an instance the stand-in provisioned
      // for another key (it refuses a second, different request with 409, so the first key really holds it).
      const inventory = (await stack.compute.inventory()).filter((i) =>
        i.provisioned?.requestId.startsWith(`burst-${run}-`),
      );
      const provisionedFor = new Map(inventory.map((i) => [i.id, i.provisioned!.requestId]));
      const mismatches = ok.filter((o) => provisionedFor.get(o.instanceId!) !== o.key).length;
      const doubleClaims = ok.length - distinct.size + mismatches;
      // Bound but not answered 200 (the client saw an error; a retry with its key gets the instance).
      const okKeys = new Set(ok.map((o) => o.key));
      const boundWithoutAnswer = inventory.filter((i) => !okKeys.has(i.provisioned!.requestId)).length;
      const statusCounts: Record<string, number> = {};
      for (const o of outcomes) statusCounts[o.status] = (statusCounts[o.status] ?? 0) + 1;
      const result = {
        idle,
        claims,
        maxWaitMs,
        ok: ok.length,
        distinctInstances: distinct.size,
        unavailable: unavailable.length,
        unavailableWithRetryAfter: unavailable.filter((o) => o.retryAfter !== null).length,
        otherStatuses: other.map((o) => o.status),
        otherErrors: [...new Set(other.map((o) => o.error ?? ''))].slice(0, 5),
        statusCounts,
        provisionedInStandin: inventory.length,
        boundWithoutAnswer,
        doubleClaims,
        wallMs,
        cpuSeconds,
        okLatency: summarize(ok.map((o) => o.endedAt - o.startedAt)),
      };
      log(
        `burst: ${result.ok} ok on ${result.distinctInstances} instances, ${result.unavailable} 503, ` +
          `${other.length} other (${JSON.stringify(statusCounts)}), stand-in provisioned ${inventory.length}, ` +
          `double claims ${doubleClaims}; other errors: ${[...new Set(other.map((o) => o.error))].slice(0, 3).join(' | ')}`,
      );
      return result;
    },
  );
}

/** Benchmark 4: PUT target 0 → 100 and time until /api/pool/counts shows 100 idle. */
async function benchFill(): Promise<FillBench> {
  const target = 100;
  return withStack(
    {
      targetIdle: 0,
      maxTotal: 200,
      timings: { ...PRODUCTION_TIMINGS, startDeadlineMs: GENEROUS_START_DEADLINE_MS },
    },
    async (stack) => {
      await sleep(2000); // let the pool workflow's first task run, so we time the fill and not the start-up
      const cpu = new CpuMeter(stack.config.databaseUrl!);
      await cpu.start();
      const t0 = performance.now();
      await setTarget(stack, target);
      let firstIdleMs: number | null = null;
      let halfMs: number | null = null;
      await until(
        `${target} idle`,
        async () => {
          const n = await idleCount(stack);
          const ms = performance.now() - t0;
          if (n >= 1 && firstIdleMs === null) firstIdleMs = ms;
          if (n >= target / 2 && halfMs === null) halfMs = ms;
          return n >= target;
        },
        5 * 60_000,
        50,
      );
      const seconds = (performance.now() - t0) / 1000;
      const cpuSeconds = await cpu.stop();
      await cpu.close();
      log(`fill 0 → ${target}: ${seconds.toFixed(2)} s, ${cpuSeconds} CPU-s`);
      return {
        target,
        seconds: Math.round(seconds * 100) / 100,
        firstIdleSeconds: Math.round((firstIdleMs ?? 0) / 10) / 100,
        halfSeconds: Math.round((halfMs ?? 0) / 10) / 100,
        cpuSeconds,
      };
    },
  );
}

function startWorkerChild(settings: WorkerChildSettings): Promise<ChildProcess> {
  // BENCH_WORKER_NODE_ARGS: node flags for the worker children (to compare V8 settings).
  const nodeArgs = (process.env.BENCH_WORKER_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child = spawn(
    process.execPath,
    [...nodeArgs, '--import', 'tsx', path.join('bench', 'worker-child.ts')],
    {
      cwd: projectRoot,
      // The production worker's memory settings (`npm run worker`), so the RSS measured is the one it would have.
      env: { ...workerProcessEnv(process.env), BENCH_WORKER: JSON.stringify(settings) },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('worker-ready')) resolve(child);
    });
    child.once('exit', (code) => reject(new Error(`worker child exited early (${code})`)));
  });
}

/**
 * Asks a worker child where its memory is (bench/memory-probe.ts: SIGWINCH, one `memory {json}` line back),
 * and logs it. `snapshot` with BENCH_HEAP_SNAPSHOT_DIR set: the child writes heap snapshots first (SIGURG;
 * that takes a while, and grows the RSS measured after it).
 */
async function memoryBreakdown(child: ChildProcess, what: string, snapshot = false): Promise<MemoryReport> {
  const report = await new Promise<MemoryReport>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('no memory report from the worker child')), 5 * 60_000);
    const onData = (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n').find((l) => l.startsWith('memory {'));
      if (!line) return;
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      resolve(JSON.parse(line.slice('memory '.length)) as MemoryReport);
    };
    child.stdout!.on('data', onData);
    child.kill(snapshot && process.env.BENCH_HEAP_SNAPSHOT_DIR ? 'SIGURG' : 'SIGWINCH');
  });
  const { main, mainSpaces, threads, smaps, anon } = report;
  log(
    `${what}: RSS ${report.rssMb} MB (anonymous ${smaps.Anonymous} MB, file ${smaps.Rss! - smaps.Anonymous!} MB); ` +
      `main heap ${main.heapUsed}/${main.heapTotal} MB (${Object.entries(mainSpaces)
        .filter(([, v]) => v >= 1)
        .map(([k, v]) => `${k.replace('_space', '')} ${v}`)
        .join(', ')}), external ${main.external} MB; ` +
      `workflow threads heap ${threads.map((t) => `${t.heapUsed}/${t.heapTotal} MB`).join(', ')}; ` +
      `outside the V8 heaps ${report.outsideV8HeapsMb} MB (anon: [heap] ${anon.heapSegment}, arena-like ${anon.arenaLike}, other ${anon.otherAnon} MB)`,
  );
  return report;
}

/** SIGTERM, then SIGKILL after 10 s. */
function stopChild(child: ChildProcess): Promise<void> {
  child.kill('SIGTERM');
  return new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      resolve();
    }, 10_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Benchmark 5: RSS of the worker process alone with 1,000 live (idle) instance workflows. */
async function benchMemory(): Promise<MemoryBench> {
  // Fewer for a quick look at where the memory goes (the breakdown is logged at start and when settled).
  const target = Number(process.env.BENCH_MEMORY_WORKFLOWS ?? 1000);
  return withStack(
    {
      noWorker: true,
      targetIdle: 0,
      maxTotal: target + 100,
      // The normal health settings: liveness is the sweeper's, so 1,000 idle instances are 1,000 parked workflows.
      timings: { ...PRODUCTION_TIMINGS, startDeadlineMs: GENEROUS_START_DEADLINE_MS },
    },
    async (stack) => {
      const child = await startWorkerChild({
        databaseUrl: stack.config.databaseUrl!,
        temporalAddress: stack.config.temporal.address,
        taskQueue: stack.taskQueue,
        poolName: stack.poolName,
        secretsKey: stack.secretsKey,
        standinUrl: stack.standinUrl,
        bundlePath: await ensureBundle(),
      });
      const pid = child.pid!;
      try {
        await sleep(3000);
        const baseline = rssOf(pid);
        log(`worker child ${pid} RSS at start: ${mb(baseline)} MB`);
        await memoryBreakdown(child, 'at start');
        const t0 = performance.now();
        await setTarget(stack, target);
        let peak = baseline;
        await waitIdle(stack, target, 15 * 60_000, () => {
          peak = Math.max(peak, rssOf(pid));
        });
        const fillSeconds = (performance.now() - t0) / 1000;
        log(`${target} idle after ${fillSeconds.toFixed(1)} s; letting it settle`);
        const samples: number[] = [];
        for (let i = 0; i < 20; i++) {
          await sleep(1000);
          samples.push(rssOf(pid));
        }
        peak = Math.max(peak, ...samples);
        const settled = samples[samples.length - 1]!;
        const counts = await stack.counts();
        log(`worker RSS with ${counts.idle} idle workflows: ${mb(settled)} MB (peak ${mb(peak)} MB)`);
        await memoryBreakdown(child, `with ${counts.idle} idle`, true);
        // BENCH_MEMORY_HOLD_MS: keep the worker up that long after, to look at it from outside (gdb, /proc).
        const hold = Number(process.env.BENCH_MEMORY_HOLD_MS ?? 0);
        if (hold > 0) {
          log(`holding worker child ${pid} for ${hold} ms`);
          const held: number[] = [];
          for (let t = 0; t < hold; t += 1000) {
            await sleep(1000);
            held.push(mb(rssOf(pid)));
          }
          const sorted = [...held].sort((a, b) => a - b);
          log(
            `RSS over the hold (${held.length} samples): min ${sorted[0]}, median ${sorted[Math.floor(sorted.length / 2)]}, max ${sorted.at(-1)} MB`,
          );
          await memoryBreakdown(child, 'after the hold');
        }
        return {
          workflows: counts.idle ?? 0,
          baselineMb: mb(baseline),
          settledMb: mb(settled),
          peakMb: mb(peak),
          fillSeconds: Math.round(fillSeconds * 10) / 10,
        };
      } finally {
        await stopChild(child);
      }
    },
  );
}

/**
 * Benchmark 6: billable Temporal actions per live instance-hour, from the dev server's own `action` metric (the
 * counter Temporal Cloud bills by), at the normal health settings (a check every 15 s, 3 misses). Windows:
 * the pool with no instance and no health sweeper (the baseline), `n` idle instances with the sweeper, the
 * same `n` claimed. Each figure is (window rate − baseline rate) per instance, scaled to an hour: the sweeper's
 * own share (its heartbeats and hourly activity per shard) is in it, and so is the reconcile Schedule's (one run
 * counted at each size, less one at no instance, times its runs an hour at the default interval). Nothing is asked of Temporal during a
 * window (a Query is an action too).
 */
async function benchActions(): Promise<ActionsBench> {
  const n = Number(process.env.BENCH_ACTIONS_INSTANCES ?? 50);
  const windowMs = Number(process.env.BENCH_ACTIONS_WINDOW_MS ?? 180_000);
  const metricsPort = await freePort();
  return withStack(
    {
      temporalMetricsPort: metricsPort,
      targetIdle: 0,
      maxTotal: n,
      timings: {
        ...PRODUCTION_TIMINGS,
        startDeadlineMs: GENEROUS_START_DEADLINE_MS,
      },
      pool: PRODUCTION_POOL,
    },
    async (stack) => {
      const rate = async (what: string) => {
        const before = await readActions(metricsPort);
        await sleep(windowMs);
        const perHour = (((await readActions(metricsPort)) - before) * 3_600_000) / windowMs;
        log(`${what}: ${Math.round(perHour)} actions/h`);
        return perHour;
      };
      const rows = async (status: string) =>
        (
          await stack.database.db
            .select({ id: instances.id })
            .from(instances)
            .where(and(eq(instances.pool, stack.poolName), eq(instances.status, status)))
        ).length;
      // The reconcile Schedule (at its default interval) fires at wall-clock times: paused, and one run counted
      // on demand at each size, amortised over its runs an hour.
      await pauseReconcileSchedule(stack);
      const runsPerHour = 3_600_000 / (await reconcileIntervalMs(stack));
      const reconcileRun = async (what: string) => {
        const actions = await reconcileRunActions(stack, metricsPort, baseline / 3600);
        log(`a reconcile run, ${what}: ${actions.toFixed(1)} actions`);
        return actions;
      };
      await stack.temporal.workflow.getHandle(healthSweeperWorkflowId(stack.poolName)).terminate('baseline');
      await sleep(5000);
      const baseline = await rate('baseline (pool, no instance, no sweeper)');
      const reconcileEmpty = await reconcileRun('no instance');
      await setTarget(stack, n);
      await until(`${n} idle`, async () => (await rows('idle')) === n, 10 * 60_000);
      await stack.declare(); // a worker start: the health sweeper runs again
      await sleep(20_000);
      const idle = await rate(`${n} idle`);
      const reconcileIdle = await reconcileRun(`${n} idle`);
      await setTarget(stack, 0, n);
      await runLanes(n, 5, async () => {
        const res = await stack.api(
          'POST',
          '/api/pool/claim',
          { agentName: 'Bench' },
          { 'idempotency-key': `actions-${randomUUID()}` },
        );
        if (res.status !== 200) throw new Error(`claim answered ${res.status}: ${await res.text()}`);
      });
      await until(`${n} claimed`, async () => (await rows('claimed')) === n, 5 * 60_000);
      await sleep(20_000);
      const claimed = await rate(`${n} claimed`);
      const reconcileClaimed = await reconcileRun(`${n} claimed`);
      const perInstance = (x: number, reconcile: number) =>
        Math.round(((x - baseline + (reconcile - reconcileEmpty) * runsPerHour) / n) * 100) / 100;
      return {
        instances: n,
        windowSeconds: windowMs / 1000,
        healthIntervalMs: 15_000,
        healthFailuresAllowed: 3,
        baselinePerHour: Math.round(baseline),
        reconcileIntervalMs: 3_600_000 / runsPerHour,
        perIdleInstanceHour: perInstance(idle, reconcileIdle),
        perClaimedInstanceHour: perInstance(claimed, reconcileClaimed),
      };
    },
  );
}

/**
 * Benchmark 8 (issue 13.5): the pool at scale, the worker split over two processes as production runs it. Two
 * worker children on one task queue (each RSS sampled), normal health settings, in order:
 * fill 0 → `BENCH_SCALE_IDLE` (1,000) idle; claim latency at that size (40 alone, 200 with 20 in flight) while
 * the pool refills behind the claims; growth to 2× live instance workflows (the claimed ones stay, the pool
 * refills the idle ones) and each worker's RSS with them; then 50 runtimes killed at once (their stand-in
 * stops answering) and the time until all 50 were acted on and the idle count is back.
 */
async function benchScale(): Promise<ScaleBench> {
  const idle = Number(process.env.BENCH_SCALE_IDLE ?? 1000);
  const killed = 50;
  const concurrentClaims = 200;
  const aloneClaims = 40;
  return withStack(
    {
      noWorker: true,
      targetIdle: 0,
      maxTotal: 2 * idle + 200,
      timings: { ...PRODUCTION_TIMINGS, startDeadlineMs: GENEROUS_START_DEADLINE_MS },
      pool: PRODUCTION_POOL,
    },
    async (stack) => {
      const settings: WorkerChildSettings = {
        databaseUrl: stack.config.databaseUrl!,
        temporalAddress: stack.config.temporal.address,
        taskQueue: stack.taskQueue,
        poolName: stack.poolName,
        secretsKey: stack.secretsKey,
        standinUrl: stack.standinUrl,
        bundlePath: await ensureBundle(),
      };
      const workers = [await startWorkerChild(settings), await startWorkerChild(settings)];
      const peaks = workers.map((w) => rssOf(w.pid!));
      const sample = () => {
        for (const [i, w] of workers.entries()) peaks[i] = Math.max(peaks[i]!, rssOf(w.pid!));
      };
      const rows = async (status: string) =>
        (
          await stack.database.db
            .select({ id: instances.id })
            .from(instances)
            .where(and(eq(instances.pool, stack.poolName), eq(instances.status, status)))
        ).map((r) => r.id);
      try {
        await sleep(3000);
        const t0 = performance.now();
        await setTarget(stack, idle);
        await waitIdle(stack, idle, 30 * 60_000, sample);
        const fillSeconds = (performance.now() - t0) / 1000;
        log(`scale: fill 0 → ${idle} idle over two workers in ${fillSeconds.toFixed(1)} s`);
        await sleep(20_000); // the sweeper's first passes over all of them

        const claimOnce = async (tag: string, i: number) => {
          const outcome = await claim(stack, `scale-${tag}-${i}-${randomUUID()}`);
          if (outcome.status !== 200) throw new Error(`claim answered ${outcome.status}: ${outcome.error}`);
        };
        const alone = await runLanes(aloneClaims, 1, (i) => claimOnce('alone', i));
        const concurrent = await runLanes(concurrentClaims, CONCURRENCY, (i) => claimOnce('lanes', i));
        const claimAlone = summarize(alone.map((r) => r.ms));
        const claimConcurrent = summarize(concurrent.map((r) => r.ms));
        log(
          `scale: claim at ${idle} idle: alone p50 ${claimAlone.p50} ms, 20 concurrent p50 ${claimConcurrent.p50} ms`,
        );

        // Grow to 2× live: claim until `idle` are claimed; the pool keeps `idle` idle behind them.
        const more = idle - aloneClaims - concurrentClaims;
        if (more > 0) await runLanes(more, CONCURRENCY, (i) => claimOnce('grow', i));
        await waitIdle(stack, idle, 30 * 60_000, sample);
        await until(`${idle} claimed`, async () => (await rows('claimed')).length >= idle, 5 * 60_000);
        const settleSamples: number[][] = workers.map(() => []);
        for (let i = 0; i < 20; i++) {
          await sleep(1000);
          for (const [j, w] of workers.entries()) settleSamples[j]!.push(rssOf(w.pid!));
        }
        sample();
        const live = (await rows('idle')).length + (await rows('claimed')).length;
        const settledMb = settleSamples.map((s) => mb(s.at(-1)!));
        log(`scale: ${live} live instance workflows; worker RSS ${settledMb.join(' MB, ')} MB`);
        const cached: number[] = [];
        for (const [j, w] of workers.entries()) {
          cached.push((await memoryBreakdown(w, `scale worker ${j + 1}`)).cachedWorkflows ?? 0);
          // BENCH_MEMORY_DIR: each worker's mappings, to tell malloc arenas, V8 pages and large mmaps apart.
          const dir = process.env.BENCH_MEMORY_DIR;
          if (dir) {
            fs.mkdirSync(dir, { recursive: true });
            fs.writeFileSync(
              path.join(dir, `scale-worker${j + 1}-smaps.txt`),
              fs.readFileSync(`/proc/${w.pid}/smaps`),
            );
          }
        }

        // Sticky queues split the workflows unevenly: each worker's RSS is judged per its own cached workflows.
        const mbPer1000 = settledMb.map((m, j) => Math.round((m * 1000) / Math.max(1, cached[j]!)));
        const mbPer1000All = Math.round(
          (settledMb.reduce((a, b) => a + b, 0) * 1000) /
            Math.max(
              1,
              cached.reduce((a, b) => a + b, 0),
            ),
        );
        log(
          `scale: cached workflows ${cached.join(', ')}; RSS per 1,000 cached ${mbPer1000.join(' MB, ')} MB ` +
            `(both workers: ${mbPer1000All} MB; target ≤ 600)`,
        );

        // 50 runtimes die at once: all acted on (left idle), and the idle count back to the target.
        const victims = (await rows('idle')).slice(0, killed);
        const k0 = performance.now();
        await Promise.all(victims.map((id) => stack.compute.setFaults(id, { down: true })));
        await until(
          `${killed} killed runtimes acted on`,
          async () => {
            const stillIdle = new Set(await rows('idle'));
            return victims.every((id) => !stillIdle.has(id));
          },
          10 * 60_000,
          500,
        );
        const detectSeconds = (performance.now() - k0) / 1000;
        await waitIdle(stack, idle, 10 * 60_000, sample);
        const replaceSeconds = (performance.now() - k0) / 1000;
        log(
          `scale: ${killed} killed runtimes acted on in ${detectSeconds.toFixed(1)} s, replaced in ${replaceSeconds.toFixed(1)} s`,
        );
        return {
          idle,
          fillSeconds: round1(fillSeconds),
          claimAlone,
          claimConcurrent,
          liveWorkflows: live,
          workers: workers.length,
          workerRssMb: settledMb,
          workerCachedWorkflows: cached,
          workerMbPer1000Cached: mbPer1000,
          mbPer1000CachedAll: mbPer1000All,
          workerPeakRssMb: peaks.map(mb),
          killed,
          killedDetectedSeconds: round1(detectSeconds),
          killedReplacedSeconds: round1(replaceSeconds),
        };
      } finally {
        await Promise.all(workers.map((w) => stopChild(w)));
      }
    },
  );
}

/**
 * Benchmark 7: the first reply after a claim, on real runtimes (real OpenClaw gateway, XMTP off) with an
 * instant OpenAI-compatible model stand-in, so every millisecond is framework time. Each of the claims boots
 * a fresh instance (boot to idle = spawn → `/pool/health` ready, the gateway's warm-up turn included), is
 * provisioned, then gets three chat messages. The runtime's own script does the work
 * (runtime/scripts/first-reply.ts: the runtime is its own package with its own Node 24); no pool stack is
 * involved, since neither the claim path nor Temporal is in what is measured.
 */
async function benchFirstReply(): Promise<FirstReplyBench> {
  const claims = Number(process.env.BENCH_FIRST_REPLY_CLAIMS ?? 10);
  const runtimeDir = path.join(projectRoot, 'runtime');
  const node = path.join(runtimeDir, 'node_modules', 'node', 'bin', 'node');
  const child = spawn(node, ['--import', 'tsx', 'scripts/first-reply.ts', String(claims)], {
    cwd: runtimeDir,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
    for (const line of d.toString().split('\n').filter(Boolean)) log(`firstReply: ${line}`);
  });
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  const last = out.trim().split('\n').at(-1) ?? '';
  if (code !== 0 || !last.startsWith('{"summary"'))
    throw new Error(`runtime/scripts/first-reply.ts exited ${code}`);
  return (JSON.parse(last) as { summary: FirstReplyBench }).summary;
}

const BENCHES = {
  actions: benchActions,
  claim: benchClaim,
  burst: benchBurst,
  fill: benchFill,
  memory: benchMemory,
  firstReply: benchFirstReply,
  scale: benchScale,
} as const;
type BenchName = keyof typeof BENCHES;

async function main() {
  const asked = process.argv.slice(2).filter((a) => !a.startsWith('-'));
  const unknown = asked.filter((a) => !(a in BENCHES));
  if (unknown.length) {
    console.error(
      `unknown benchmark(s): ${unknown.join(', ')}; choose from ${Object.keys(BENCHES).join(', ')}`,
    );
    process.exit(2);
  }
  if (process.argv.includes('--report')) {
    // Re-render docs/benchmarks.md from bench/results.json without measuring anything.
    const saved = JSON.parse(fs.readFileSync(resultsFile, 'utf8')) as BenchResults;
    console.log(renderTable(saved));
    if (writesDocs) writeDocs(saved, path.join(projectRoot, 'docs', 'benchmarks.md'));
    return;
  }
  const names = (asked.length ? asked : Object.keys(BENCHES)) as BenchName[];
  const previous: BenchResults = fs.existsSync(resultsFile)
    ? (JSON.parse(fs.readFileSync(resultsFile, 'utf8')) as BenchResults)
    : {};
  const results: BenchResults = { ...previous };
  const started = Date.now();
  const failed: string[] = [];
  const measuredAt = new Date().toISOString();
  for (const name of names) {
    log(`— ${name} —`);
    const t0 = Date.now();
    // The machine may be shared (other test runs): record how busy it was, since every number depends on it.
    const loadBefore = os.loadavg()[0]!;
    let loadMax = loadBefore;
    const sampler = setInterval(() => {
      loadMax = Math.max(loadMax, os.loadavg()[0]!);
    }, 1000);
    let result: Awaited<ReturnType<(typeof BENCHES)[BenchName]>>;
    try {
      result = await BENCHES[name]();
    } catch (err) {
      // One failed benchmark must not lose the others' results: report it and go on.
      log(`${name} FAILED: ${(err as Error).stack ?? err}`);
      failed.push(name);
      continue;
    } finally {
      clearInterval(sampler);
    }
    const load = { before: round1(loadBefore), max: round1(loadMax), after: round1(os.loadavg()[0]!) };
    log(`load average (1 min) before ${load.before}, max ${load.max}, after ${load.after}`);
    // biome-ignore lint/suspicious/noExplicitAny: each bench fills its own key of BenchResults
    (results as any)[name] = { ...result, measuredAt, runSeconds: (Date.now() - t0) / 1000, load };
    // Saved after every benchmark, so a later failure or Ctrl-C keeps what was measured.
    saveResults(results);
  }
  results.totalSeconds =
    names.length === Object.keys(BENCHES).length ? (Date.now() - started) / 1000 : results.totalSeconds;
  saveResults(results);
  console.log(`\n${renderTable(results)}\n`);
  if (writesDocs) writeDocs(results, path.join(projectRoot, 'docs', 'benchmarks.md'));
  log(
    `done in ${((Date.now() - started) / 1000).toFixed(0)} s; wrote ${writesDocs ? 'docs/benchmarks.md and ' : ''}${resultsFile.startsWith(projectRoot) ? path.relative(projectRoot, resultsFile) : resultsFile}`,
  );
  if (bundlePath) fs.rmSync(bundlePath, { force: true });
  if (failed.length) throw new Error(`failed: ${failed.join(', ')}`);
}

function saveResults(results: BenchResults) {
  results.machine = {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryGb: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
  };
  fs.writeFileSync(resultsFile, `${JSON.stringify(results, null, 2)}\n`);
}

export type { LatencySummary };

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    if (bundlePath) fs.rmSync(bundlePath, { force: true });
    process.exit(1);
  },
);
