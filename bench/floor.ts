/**
 * The engine's floor, measured on the claim benchmark's own stack (same dev server, same Postgres, same stand-in,
 * same process), right before the claims: a bare Update to a parked workflow and a claim-shaped one
 * (./floor-workflows.ts), each to a fresh workflow (as a claim goes to a fresh idle instance), alone and with
 * 20 in flight, with the CPU the stack burned per Update measured the same way as for claims. And the durable
 * floor: the claim-shaped Update with only what any durable, idempotent claim through an HTTP API must add.
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode, NativeConnection, Worker } from '@temporalio/worker';
import Fastify from 'fastify';
import pg from 'pg';
import { Agent, request } from 'undici';
import type { Stack } from '../test/stack';
import { profileStart, profileStop } from './cpu-profile';
import { bareUpdate, type FloorActivities, type ShapedRequest, shapedUpdate } from './floor-workflows';
import { type LatencySummary, runLanes, sleep, summarize, threadsPerOp } from './lib';

export interface FloorRun {
  alone: LatencySummary;
  concurrent: LatencySummary;
  cpuMsPerOp: { alone: number; concurrent: number };
}

export interface FloorBench {
  bare: FloorRun;
  shaped: FloorRun;
  /**
   * The claim-shaped Update plus only what any durable, idempotent claim through an HTTP API must add: the
   * request through a bare Fastify server, an idempotency row inserted before the Update and finished after it,
   * and the outcome's row written by the local activity (three statements, one HTTP round trip).
   */
  durable: FloorRun;
}

interface Meter {
  start(): Promise<void>;
  stopWithParts(): Promise<{
    total: number;
    node: number;
    children: number;
    postgres: number;
    threads: Record<string, number>;
  }>;
}

const here = path.dirname(fileURLToPath(import.meta.url));

/** The floor worker's tuning: the product worker's (workers/create-worker.ts). */
const WORKER_TUNING = {
  maxCachedWorkflows: 2000,
  maxConcurrentActivityTaskExecutions: 200,
  maxConcurrentLocalActivityExecutions: 200,
  stickyQueueScheduleToStartTimeout: '3s',
} as const;

async function registerStandin(stack: Stack, n: number): Promise<Array<{ url: string; token: string }>> {
  const out: Array<{ url: string; token: string }> = [];
  for (let i = 0; i < n; i++) {
    const id = `floor-${randomUUID()}`;
    const token = randomUUID();
    const res = await fetch(`${stack.standinUrl}/_standin/instances`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ instanceId: id, token }),
    });
    if (!res.ok) throw new Error(`stand-in registration answered ${res.status}`);
    out.push({ url: `${stack.standinUrl}/i/${id}`, token });
  }
  return out;
}

export async function benchFloor(
  stack: Stack,
  counts: { warmup: number; alone: number; concurrent: number; lanes: number },
  meter: Meter,
  log: (msg: string) => void,
): Promise<FloorBench> {
  const total = counts.warmup + counts.alone + counts.concurrent;
  const taskQueue = `floor-${randomUUID().slice(0, 8)}`;
  const bundle = await bundleWorkflowCode({
    workflowsPath: path.join(here, 'floor-workflows.ts'),
    logger: { info() {}, warn() {}, error: console.error, debug() {}, trace() {}, log() {} },
  });
  // The durable floor's tables: bench-only, dropped at the end.
  const db = new pg.Pool({ connectionString: stack.config.databaseUrl!, max: 20 });
  await db.query(`create table if not exists bench_floor_ledger (key text primary key, status text not null,
    result jsonb, created_at timestamptz not null default now())`);
  await db.query(`create table if not exists bench_floor_rows (id text primary key, status text not null,
    conversation_id text, updated_at timestamptz not null)`);
  const runtimes = new Agent({ keepAliveTimeout: 30_000 });
  // Prepared, as the claim's own statements are (drizzle/statements.ts).
  const prepared = (name: string, text: string, values: unknown[]) => db.query({ name, text, values });
  const activities: FloorActivities = {
    async floorProvision(input: ShapedRequest) {
      // The same HTTP client as the claim's provision call (activities/runtime-client.ts).
      const res = await request(`${input.url}/pool/provision`, {
        method: 'POST',
        headers: { authorization: `Bearer ${input.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          requestId: input.key,
          agentName: input.agentName,
          instructions: input.instructions,
        }),
        signal: AbortSignal.timeout(90_000),
        dispatcher: runtimes,
      });
      const body = (await res.body.json()) as { status: string; conversationId: string | null };
      if (res.statusCode !== 200) throw new Error(`provision answered ${res.statusCode}`);
      if (input.record) {
        await prepared(
          'floor_row',
          `insert into bench_floor_rows (id, status, conversation_id, updated_at) values ($1, 'claimed', $2, now())
           on conflict (id) do update set status = excluded.status, updated_at = excluded.updated_at`,
          [input.key, body.conversationId],
        );
      }
      return { status: body.status, conversationId: body.conversationId };
    },
  };
  const connection = await NativeConnection.connect({ address: stack.config.temporal.address });
  const worker = await Worker.create({
    connection,
    namespace: stack.config.temporal.namespace,
    taskQueue,
    workflowBundle: { code: bundle.code },
    activities,
    ...WORKER_TUNING,
  });
  const client = stack.temporal;
  const run = worker.runUntil(async () => {
    // One stand-in runtime per provision: the shaped Updates take the first `total`, the durable ones the rest.
    const runtimes = await registerStandin(stack, total * 2);
    /** Starts `n` parked workflows and waits until every one has run its first task (cached, parked). */
    const park = async (prefix: string, n: number) => {
      const ids = Array.from({ length: n }, (_, i) => `${prefix}-${i}`);
      await runLanes(n, 20, (i) =>
        client.workflow.start('floorWorkflow', { taskQueue, workflowId: ids[i]!, args: [ids[i]!] }),
      );
      for (const id of ids) {
        for (;;) {
          const h = await client.workflow.getHandle(id).fetchHistory();
          if ((h.events?.length ?? 0) >= 4) break;
          await sleep(50);
        }
      }
      return ids;
    };
    const measure = async (
      what: string,
      ids: string[],
      op: (workflowId: string, i: number) => Promise<unknown>,
    ): Promise<FloorRun> => {
      let next = 0;
      const one = async () => {
        const i = next++;
        await op(ids[i]!, i);
      };
      for (let i = 0; i < counts.warmup; i++) await one();
      await meter.start();
      const a = await runLanes(counts.alone, 1, one);
      const cpuAlone = (await meter.stopWithParts()).total;
      await meter.start();
      await profileStart();
      const c = await runLanes(counts.concurrent, counts.lanes, one);
      const parts = await meter.stopWithParts();
      await profileStop(`floor-${what.split(' ')[0]}-concurrent`);
      const cpuConc = parts.total;
      const per = (x: number) => Math.round((x * 1000) / counts.concurrent);
      log(
        `floor ${what} x${counts.lanes} CPU per Update: node ${per(parts.node)} ` +
          `(${threadsPerOp(parts.threads, counts.concurrent)}), temporal ${per(parts.children)}, ` +
          `postgres ${per(parts.postgres)} ms`,
      );
      const result = {
        alone: summarize(a.map((r) => r.ms)),
        concurrent: summarize(c.map((r) => r.ms)),
        cpuMsPerOp: {
          alone: Math.round((cpuAlone * 1000) / counts.alone),
          concurrent: Math.round((cpuConc * 1000) / counts.concurrent),
        },
      };
      log(
        `floor ${what}: alone p50 ${result.alone.p50} ms, x${counts.lanes} p50 ${result.concurrent.p50} ms; ` +
          `${result.cpuMsPerOp.alone} / ${result.cpuMsPerOp.concurrent} CPU-ms per Update`,
      );
      return result;
    };
    const run = randomUUID().slice(0, 8);
    const bareIds = await park(`floor-bare-${run}`, total);
    const shapedIds = await park(`floor-shaped-${run}`, total);
    const durableIds = await park(`floor-durable-${run}`, total);
    // The durable floor's API: a bare Fastify server (no plugins), the ledger rows around the Update.
    const api = Fastify({ logger: false });
    api.post<{ Body: { workflowId: string; i: number } }>('/claim', async (request) => {
      const { workflowId, i } = request.body;
      const key = `durable-${run}-${i}`;
      await prepared(
        'floor_ledger_insert',
        `insert into bench_floor_ledger (key, status) values ($1, 'pending') on conflict do nothing`,
        [key],
      );
      const result = await client.workflow.getHandle(workflowId).executeUpdate(shapedUpdate, {
        updateId: key,
        args: [{ key, ...runtimes[total + i]!, agentName: 'Bench', instructions: 'be brief', record: true }],
      });
      await prepared(
        'floor_ledger_finish',
        `update bench_floor_ledger set status = 'succeeded', result = $1::jsonb where key = $2`,
        [JSON.stringify(result), key],
      );
      return result;
    });
    const apiUrl = await api.listen({ host: '127.0.0.1', port: 0 });
    await sleep(1000);
    const bare = await measure('bare Update', bareIds, (id, i) =>
      client.workflow.getHandle(id).executeUpdate(bareUpdate, { updateId: `bare-${run}-${i}`, args: ['x'] }),
    );
    const shaped = await measure('claim-shaped Update', shapedIds, (id, i) => {
      const key = `shaped-${run}-${i}`;
      return client.workflow.getHandle(id).executeUpdate(shapedUpdate, {
        updateId: key,
        args: [{ key, ...runtimes[i]!, agentName: 'Bench', instructions: 'be brief' }],
      });
    });
    const durable = await measure('durable claim-shaped Update', durableIds, async (id, i) => {
      const res = await fetch(`${apiUrl}/claim`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ workflowId: id, i }),
      });
      if (!res.ok) throw new Error(`durable floor answered ${res.status}`);
      return res.json();
    });
    await api.close();
    // Parked workflows would keep the floor worker's cache busy: end them.
    const parked = [...bareIds, ...shapedIds, ...durableIds];
    await runLanes(parked.length, 20, (i) =>
      client.workflow
        .getHandle(parked[i]!)
        .terminate('floor measured')
        .catch(() => {}),
    );
    return { bare, shaped, durable };
  });
  try {
    return await run;
  } finally {
    await connection.close().catch(() => {});
    await db.query('drop table if exists bench_floor_ledger, bench_floor_rows').catch(() => {});
    await db.end();
  }
}
