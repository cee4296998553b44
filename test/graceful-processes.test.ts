/**
 * Graceful, observable processes, through the real entrypoints (`npm run worker`, `npm run api` as child
 * processes, signalled the way a container platform signals its main process: SIGTERM to `npm`, which hands
 * it on): the worker's probes (`/healthz` up while it starts, `/readyz` 503 until it polls, then 200); the
 * API's drain on SIGTERM (`/readyz` 503 at once, the claim in flight finishes with its 200, exit 0); the
 * worker's drain (the SDK's graceful shutdown finishes the claim in flight, `/readyz` 503 meanwhile, exit 0);
 * and the logs: JSON lines only, the claim's request id in both processes' lines, no secret anywhere.
 *
 * Provisioning is slowed to 4 s by the runtime stand-in's faults file (tools/runtime-standin/server.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { instanceWorkflowId } from '../contracts/workflow-ids';
import { claimUpdate } from '../workflows/messages';
import { freePort } from './support/ports';
import { type NpmProcess, outputOf as output, splitPool } from './support/split-pool';

const pool = splitPool('graceful', {
  POOL_TARGET_IDLE: '2',
  POOL_MAX_TOTAL: '4',
  API_SHUTDOWN_DELAY_MS: '1500',
  WORKER_METRICS_PORT: '0',
  LOG_LEVEL: 'info',
});
const { poolName, dataDir, apiKey, secretsKey } = pool;
const id = poolName.slice('graceful-'.length);
const PROVISION_DELAY_MS = 4_000;
let apiUrl = '';
let workerHealthUrl = '';
let worker: NpmProcess;
let api: NpmProcess;
let temporal: Client;

/** The process's stdout, line by line, each parsed as JSON (null: not a JSON object). */
const jsonLines = (p: NpmProcess) =>
  p.stdout
    .join('')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      try {
        const value = JSON.parse(line) as unknown;
        return value && typeof value === 'object' ? (value as Record<string, unknown>) : null;
      } catch {
        return null;
      }
    });

const waitFor = (what: string, check: () => Promise<boolean>, timeoutMs: number) =>
  pool.waitFor(what, check, timeoutMs, 100);

const counts = async () =>
  (await (await fetch(`${apiUrl}/api/pool/counts`)).json()) as Record<string, number>;

/** Makes every runtime the local provider started answer provisioning slowly. */
function slowProvisioning() {
  const instancesDir = path.join(dataDir, 'instances');
  for (const instance of fs.readdirSync(instancesDir)) {
    const state = path.join(instancesDir, instance, 'state');
    if (fs.existsSync(state)) {
      fs.writeFileSync(
        path.join(state, 'standin-faults.json'),
        JSON.stringify({ provisionDelayMs: PROVISION_DELAY_MS }),
      );
    }
  }
}

beforeAll(async () => {
  const apiPort = await freePort();
  const healthPort = await freePort();
  apiUrl = `http://127.0.0.1:${apiPort}`;
  workerHealthUrl = `http://127.0.0.1:${healthPort}`;
  Object.assign(pool.env, { API_PORT: String(apiPort), WORKER_HEALTH_PORT: String(healthPort) });
  worker = pool.run('worker');
  api = pool.run('api');
  temporal = new Client({ connection: await Connection.connect({ address: inject('temporalAddress') }) });
}, 30_000);

afterAll(async () => {
  await temporal?.connection.close();
  await pool.stop();
}, 60_000);

it('the worker is live at once, not ready while it starts, and ready once it polls', async () => {
  await waitFor('worker /healthz', async () => (await fetch(`${workerHealthUrl}/healthz`)).ok, 20_000);
  expect(await (await fetch(`${workerHealthUrl}/healthz`)).json()).toEqual({ ok: true });
  const seen: Array<{ status: number; body: { ok: boolean; failing: string[] } }> = [];
  await waitFor(
    'worker /readyz 200',
    async () => {
      const res = await fetch(`${workerHealthUrl}/readyz`);
      seen.push({ status: res.status, body: (await res.json()) as { ok: boolean; failing: string[] } });
      return res.status === 200;
    },
    45_000,
  );
  // The worker bundles its workflows before it polls: that took seconds, and it said so.
  expect(seen[0]).toEqual({ status: 503, body: { ok: false, failing: ['starting'] } });
  expect(seen.at(-1)).toEqual({ status: 200, body: { ok: true, failing: [] } });
  expect(jsonLines(worker)).toContainEqual(
    expect.objectContaining({ msg: 'Worker state changed', state: 'RUNNING' }),
  );
  // `npm run worker` starts it with its memory settings (workers/process-tuning.ts), so no warning about them.
  const started = () => jsonLines(worker).find((l) => String(l?.msg ?? '').startsWith('worker polling'));
  await waitFor('the worker start line', async () => started() !== undefined, 20_000);
  expect(started()?.memory).toEqual({
    mallocArenaMax: 2,
    mallocMmapThreshold: 65_536,
    mallocTrimThreshold: 131_072,
    maxSemiSpaceMb: 8,
  });
  expect(jsonLines(worker).filter((l) => String(l?.msg ?? '').includes('MALLOC_ARENA_MAX'))).toEqual([]);
}, 60_000);

let claimBody: Record<string, unknown> = {};
const requestId = `claim-${id}`;

it('SIGTERM to the API: /readyz 503 at once, the claim in flight gets its 200, the process exits 0', async () => {
  await waitFor('API /readyz 200', async () => (await fetch(`${apiUrl}/readyz`)).status === 200, 20_000);
  await waitFor('2 idle instances', async () => (await counts()).idle! >= 2, 40_000);
  slowProvisioning();

  const claim = fetch(`${apiUrl}/api/pool/claim`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${apiKey}`,
      'content-type': 'application/json',
      'idempotency-key': `graceful-${id}`,
      'x-request-id': requestId,
    },
    body: JSON.stringify({ agentName: 'Drained' }),
  });
  // In flight: the worker is provisioning it (that takes 4 s).
  await waitFor('the worker provisioning', async () => output(worker).includes(requestId), 5_000);
  const signalledAt = Date.now();
  api.child.kill('SIGTERM'); // to npm, as a container platform signals its main process

  // Still serving while draining, but not ready.
  let draining: Response | null = null;
  await waitFor(
    '/readyz 503 draining',
    async () => {
      const res = await fetch(`${apiUrl}/readyz`);
      if (res.status !== 503) return false;
      draining = res;
      return true;
    },
    1_000,
  );
  expect(await draining!.json()).toEqual({ ok: false, failing: ['draining'] });
  expect(draining!.headers.get('retry-after')).toBe('5');
  expect((await fetch(`${apiUrl}/healthz`)).status).toBe(200);

  const res = await claim;
  expect(res.status).toBe(200);
  expect(res.headers.get('x-request-id')).toBe(requestId);
  claimBody = (await res.json()) as Record<string, unknown>;
  expect(claimBody).toMatchObject({ agentName: 'Drained', status: 'created' });
  expect(Date.now() - signalledAt).toBeGreaterThan(1_000); // it was still in flight when the signal came

  expect(await api.exited).toBe(0);
  // It no longer accepts connections.
  await expect(fetch(`${apiUrl}/healthz`)).rejects.toThrow();
}, 60_000);

it("SIGTERM to the worker: the SDK's drain finishes the claim in flight, /readyz 503 meanwhile, exit 0", async () => {
  // The API is gone: claim the other idle instance the way the API does, with its Update.
  const idle: string[] = [];
  for await (const wf of temporal.workflow.list({
    query: `PoolName = '${poolName}' AND InstanceStatus = 'idle' AND ExecutionStatus = 'Running'`,
  }))
    idle.push(wf.workflowId.replace(/^instance-/, ''));
  expect(idle.length).toBeGreaterThanOrEqual(1);
  slowProvisioning();
  const claimKey = `worker-drain-${id}`;
  const update = temporal.workflow.getHandle(instanceWorkflowId(idle[0]!)).executeUpdate(claimUpdate, {
    updateId: claimKey,
    args: [
      {
        claimKey,
        agentName: 'Worker drain',
        instructions: 'Be brief.',
        templateSlug: null,
        hasJoinUrl: false,
        requestId: `worker-${id}`,
      },
    ],
  });
  await waitFor('the worker provisioning', async () => output(worker).includes(`worker-${id}`), 10_000);
  const signalledAt = Date.now();
  worker.child.kill('SIGTERM');

  await waitFor(
    'worker /readyz 503 draining',
    async () => {
      const res = await fetch(`${workerHealthUrl}/readyz`);
      return res.status === 503 && ((await res.json()) as { failing: string[] }).failing.includes('draining');
    },
    2_000,
  );
  expect((await fetch(`${workerHealthUrl}/healthz`)).status).toBe(200);
  expect(await update).toMatchObject({ agentName: 'Worker drain', status: 'created' });
  expect(Date.now() - signalledAt).toBeGreaterThan(1_000);
  expect(await worker.exited).toBe(0);
}, 60_000);

it("both processes log JSON lines only; the claim's request id is in both; no secret or bearer link", () => {
  for (const proc of [api, worker]) {
    const raw = proc.stdout
      .join('')
      .split('\n')
      .filter((line) => line.trim() !== '');
    const lines = jsonLines(proc);
    expect(lines.length).toBeGreaterThan(3);
    expect(
      raw.filter((_, i) => lines[i] === null),
      'lines that are not JSON',
    ).toEqual([]);
  }
  const apiLines = jsonLines(api).filter((l) => l?.requestId === requestId);
  expect(apiLines.map((l) => l!.msg)).toEqual(expect.arrayContaining(['claim bound', 'request completed']));
  expect(apiLines.find((l) => l!.msg === 'claim bound')).toMatchObject({
    instanceId: claimBody.instanceId,
  });
  const workerLines = jsonLines(worker).filter((l) => l?.requestId === requestId);
  expect(workerLines.map((l) => l!.msg)).toEqual(
    expect.arrayContaining(['provisioning claim', 'claim provisioned']),
  );
  expect(workerLines[0]).toMatchObject({ instanceId: claimBody.instanceId });

  // The drain was logged: signal, then done.
  expect(jsonLines(api).map((l) => l?.msg)).toEqual(expect.arrayContaining(['draining', 'drained']));
  expect(jsonLines(worker).map((l) => l?.msg)).toEqual(expect.arrayContaining(['draining', 'drained']));

  const all = [worker, api].map(output).join('\n');
  expect(typeof claimBody.chatUrl).toBe('string');
  for (const secret of [apiKey, secretsKey, claimBody.chatUrl as string]) expect(all).not.toContain(secret);
});
