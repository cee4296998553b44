/**
 * The production process split, through the real entrypoints: `npm run worker` ×2 and `npm run api` ×2 as
 * separate processes on one dev server and one Postgres, configured from the environment alone (no
 * `npm start`). The workers bring up their pool (the pool workflow and the sweeper Schedule), so the APIs work
 * without anything else; claims through both APIs bind exactly once while a worker is SIGKILLed; a setting
 * changed in the environment is in force after the workers restart; with payload encryption on, no agent name
 * is in any history Temporal stores.
 */
import { Client, Connection } from '@temporalio/client';
import pg from 'pg';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { historyBytes, recordEncryptedPlaintexts } from './support/payload-histories';
import { freePort } from './support/ports';
import { type NpmProcess, splitPool } from './support/split-pool';

const pool = splitPool('prod', {
  POOL_TARGET_IDLE: '1',
  POOL_MAX_TOTAL: '12',
  // Two workers on one host: the SDK's metrics port would be taken by the first (the metrics test covers it).
  WORKER_METRICS_PORT: '0',
  PAYLOAD_ENCRYPTION_KEY: inject('payloadEncryptionKey'),
});
const { poolName, apiKey } = pool;
const id = poolName.slice('prod-'.length);
const apiUrls: string[] = [];
const waitFor = pool.waitFor;

const api = (
  base: string,
  method: string,
  url: string,
  body?: unknown,
  headers: Record<string, string> = {},
) =>
  fetch(`${base}${url}`, {
    method,
    headers: {
      authorization: `Bearer ${apiKey}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...headers,
    },
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });

const counts = async (base = apiUrls[0]!) =>
  (await (await fetch(`${base}/api/pool/counts`)).json()) as Record<string, number>;

interface Info {
  targetIdle: number;
  config: { settings: { targetIdle: number; maxTotal: number }; overridden: string[] } | null;
}
const info = async (base = apiUrls[0]!) => (await (await fetch(`${base}/api/pool/info`)).json()) as Info;

let workers: NpmProcess[] = [];

beforeAll(async () => {
  const ports = [await freePort(), await freePort()];
  workers = [pool.run('worker'), pool.run('worker')];
  for (const port of ports) {
    pool.run('api', { API_PORT: String(port) });
    apiUrls.push(`http://127.0.0.1:${port}`);
  }
}, 30_000);

afterAll(() => pool.stop(), 60_000);

it('two workers and two APIs bring up a pool that warms, takes a new target and serves claims', async () => {
  await waitFor('an idle instance', async () => (await counts()).idle! >= 1, 150_000);

  const target = await api(apiUrls[1]!, 'PUT', '/api/pool/target', { targetIdle: 4 });
  expect(target.status).toBe(200);
  expect(await target.json()).toMatchObject({ targetIdle: 4 });
  await waitFor('4 idle', async () => (await counts(apiUrls[1])).idle! >= 4, 90_000);
  await waitFor(
    'the override shown',
    async () => (await info()).config?.overridden.includes('targetIdle') === true,
    10_000,
  );
}, 240_000);

it('claims through both APIs bind exactly once while a worker is SIGKILLed', async () => {
  const keys = Array.from({ length: 6 }, (_, i) => `split-${id}-${i}`);
  const names = keys.map((_, i) => `Quillon Split ${id} ${i}`);
  recordEncryptedPlaintexts(...names);
  /** Claim `i` through API `via`: the same key always carries the same body. */
  const claim = (i: number, via: number) =>
    api(
      apiUrls[via % 2]!,
      'POST',
      '/api/pool/claim',
      { agentName: names[i], maxWaitMs: 60_000 },
      { 'idempotency-key': keys[i]! },
    );
  const inFlight = Promise.all(keys.map((_, i) => claim(i, i)));
  await new Promise((r) => setTimeout(r, 100));
  await pool.kill(workers[0]!, 'SIGKILL');
  workers[0] = pool.run('worker');
  const responses = await inFlight;
  const bodies = (await Promise.all(responses.map((r) => r.json()))) as {
    instanceId: string;
    agentName: string;
  }[];
  expect(
    responses.map((r) => r.status),
    JSON.stringify(bodies),
  ).toEqual(Array(6).fill(200));
  expect(new Set(bodies.map((b) => b.instanceId)).size).toBe(6);

  // A retry of each key, through the other API, answers the same binding.
  const retries = await Promise.all(keys.map((_, i) => claim(i, i + 1)));
  const again = (await Promise.all(retries.map((r) => r.json()))) as { instanceId: string }[];
  expect(again.map((b) => b.instanceId)).toEqual(bodies.map((b) => b.instanceId));

  // The read model agrees: each key bound exactly one instance, each instance claimed once.
  const sql = new pg.Pool({ connectionString: inject('databaseUrl'), max: 1 });
  try {
    const { rows } = await sql.query<{ id: string; claim_key: string; status: string }>(
      'select id, claim_key, status from instances where pool = $1 and claim_key is not null',
      [poolName],
    );
    expect(rows.map((r) => r.claim_key).sort()).toEqual([...keys].sort());
    expect(new Set(rows.map((r) => r.id))).toEqual(new Set(bodies.map((b) => b.instanceId)));
    expect(rows.every((r) => r.status === 'claimed')).toBe(true);
  } finally {
    await sql.end();
  }
}, 240_000);

it('a setting changed in the environment is in force once the workers restart', async () => {
  const before = await info();
  expect(before.config?.settings.targetIdle).toBe(4);
  for (const worker of workers) await pool.kill(worker, 'SIGTERM');
  Object.assign(pool.env, { POOL_TARGET_IDLE: '2', POOL_MAX_TOTAL: '14' });
  workers = [pool.run('worker'), pool.run('worker')];
  // The declaration changed (1 → 2), so it replaces the operator's 4; maxTotal follows too.
  await waitFor(
    'the new settings in force',
    async () => {
      const shown = (await info(apiUrls[1])).config;
      return (
        shown?.settings.targetIdle === 2 && shown.settings.maxTotal === 14 && shown.overridden.length === 0
      );
    },
    120_000,
  );
  console.log(`settings in force before: ${JSON.stringify(before.config?.settings)}`);
  console.log(`settings in force after:  ${JSON.stringify((await info()).config?.settings)}`);
}, 240_000);

it('with payload encryption on, no history Temporal stores holds an agent name', async () => {
  const connection = await Connection.connect({ address: inject('temporalAddress') });
  const temporal = new Client({ connection });
  try {
    const stored: Buffer[] = [];
    for await (const run of temporal.workflow.list({ query: `PoolName = '${poolName}'` }))
      stored.push(historyBytes(await temporal.workflow.getHandle(run.workflowId, run.runId).fetchHistory()));
    const pool = temporal.workflow.getHandle(`pool-${poolName}`);
    stored.push(historyBytes(await pool.fetchHistory()));
    expect(stored.length).toBeGreaterThan(6);
    const all = Buffer.concat(stored);
    for (let i = 0; i < 6; i++) expect(all.includes(`Quillon Split ${id} ${i}`)).toBe(false);
    expect(all.includes('binary/encrypted')).toBe(true);
  } finally {
    await connection.close();
  }
}, 60_000);
