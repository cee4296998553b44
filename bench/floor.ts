/**
 * The engine's floor, on the claim benchmark's own stack (same dev server, same Postgres, same stand-in, same
 * process): a bare Update to a parked workflow and a claim-shaped one (./floor-workflows.ts), each to a fresh
 * workflow (as a claim goes to a fresh idle instance), and the durable floor: the claim-shaped Update with only
 * what any durable, idempotent claim through an HTTP API must add. `withFloor` sets them up and hands out one
 * operation of each; the claim bench measures them in rounds interleaved with the claims (bench/run.ts), so
 * what the machine does meanwhile weighs on both sides alike.
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode, NativeConnection, Worker } from '@temporalio/worker';
import Fastify from 'fastify';
import pg from 'pg';
import { Agent, request } from 'undici';
import type { Stack } from '../test/stack';
import { bareUpdate, type FloorActivities, type ShapedRequest, shapedUpdate } from './floor-workflows';
import { type LatencySummary, runLanes, sleep } from './lib';

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

/** The i-th operation of each floor kind (each to its own parked workflow and stand-in runtime). */
export interface FloorOps {
  bare(i: number): Promise<unknown>;
  shaped(i: number): Promise<unknown>;
  durable(i: number): Promise<unknown>;
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

/** Parks `total` workflows of each kind, runs `fn` with their operations, then ends them. */
export async function withFloor<T>(
  stack: Stack,
  total: number,
  fn: (ops: FloorOps) => Promise<T>,
): Promise<T> {
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
    const ops: FloorOps = {
      bare: (i) =>
        client.workflow
          .getHandle(bareIds[i]!)
          .executeUpdate(bareUpdate, { updateId: `bare-${run}-${i}`, args: ['x'] }),
      shaped: (i) => {
        const key = `shaped-${run}-${i}`;
        return client.workflow.getHandle(shapedIds[i]!).executeUpdate(shapedUpdate, {
          updateId: key,
          args: [{ key, ...runtimes[i]!, agentName: 'Bench', instructions: 'be brief' }],
        });
      },
      durable: async (i) => {
        const res = await fetch(`${apiUrl}/claim`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ workflowId: durableIds[i]!, i }),
        });
        if (!res.ok) throw new Error(`durable floor answered ${res.status}`);
        return res.json();
      },
    };
    const result = await fn(ops);
    await api.close();
    // Parked workflows would keep the floor worker's cache busy: end them.
    const parked = [...bareIds, ...shapedIds, ...durableIds];
    await runLanes(parked.length, 20, (i) =>
      client.workflow
        .getHandle(parked[i]!)
        .terminate('floor measured')
        .catch(() => {}),
    );
    return result;
  });
  try {
    return await run;
  } finally {
    await connection.close().catch(() => {});
    await db.query('drop table if exists bench_floor_ledger, bench_floor_rows').catch(() => {});
    await db.end();
  }
}
