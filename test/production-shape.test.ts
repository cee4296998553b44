/**
 * The production process split, through the real entrypoints: `npm run worker` and `npm run api` as separate
 * processes, configured from the environment alone (no `npm start`). The worker brings up its pool (the pool
 * workflow and the sweeper Schedule), so the API works without anything else.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { LocalComputeProvider } from '../activities/compute/local';
import { projectRoot } from '../scripts/temporal-dev';
import { freePort } from './support/ports';
import { stopPool } from './support/stop-pool';

const id = randomUUID().slice(0, 8);
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'convos-prod-shape-'));
const apiKey = randomBytes(24).toString('base64url');
let apiUrl = '';
const processes: ChildProcess[] = [];
const logs: string[] = [];

function run(script: 'worker' | 'api', env: Record<string, string>): ChildProcess {
  const child = spawn('npm', ['run', '-s', script], {
    cwd: projectRoot,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  for (const stream of [child.stdout, child.stderr])
    stream?.on('data', (d: Buffer) => logs.push(d.toString()));
  processes.push(child);
  return child;
}

const api = (method: string, url: string, body?: unknown, headers: Record<string, string> = {}) =>
  fetch(`${apiUrl}${url}`, {
    method,
    headers: {
      authorization: `Bearer ${apiKey}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...headers,
    },
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });

const idle = async () => ((await (await fetch(`${apiUrl}/api/pool/counts`)).json()) as { idle: number }).idle;

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}\n${logs.join('').slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

beforeAll(async () => {
  const port = await freePort();
  apiUrl = `http://127.0.0.1:${port}`;
  const env = {
    POOL_ENVIRONMENT: 'staging',
    DATABASE_URL: inject('databaseUrl'),
    TEMPORAL_ADDRESS: inject('temporalAddress'),
    TEMPORAL_TASK_QUEUE: `prod-${id}`,
    POOL_NAME: `prod-${id}`,
    POOL_TARGET_IDLE: '1',
    POOL_MAX_TOTAL: '3',
    POOL_API_KEY: apiKey,
    SECRETS_KEY: randomBytes(32).toString('base64'),
    COMPUTE_PROVIDER: 'local',
    LOCAL_RUNTIME: 'standin',
    XMTP_ENV: 'off',
    DATA_DIR: dataDir,
    API_HOST: '127.0.0.1',
    API_PORT: String(port),
    INSTANCE_HEALTH_INTERVAL_MS: '2000',
    LOG_LEVEL: 'warn',
  };
  run('worker', env);
  run('api', env);
}, 30_000);

afterAll(async () => {
  for (const child of processes) {
    try {
      if (child.pid) process.kill(-child.pid, 'SIGTERM');
    } catch {}
  }
  await Promise.all(
    processes.map((c) => new Promise((r) => (c.exitCode !== null ? r(null) : c.once('exit', r)))),
  );
  // The local provider's runtimes outlive the worker by design: stop them, and the pool, here.
  await new LocalComputeProvider({
    instancesDir: path.join(dataDir, 'instances'),
    command: ['true'],
  }).stopAll();
  const connection = await Connection.connect({ address: inject('temporalAddress') });
  await stopPool(new Client({ connection }), `prod-${id}`);
  await connection.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
}, 60_000);

it('npm run worker + npm run api bring up a pool that warms, takes a new target and serves a claim', async () => {
  await waitFor('an idle instance', async () => (await idle()) >= 1, 150_000);

  const target = await api('PUT', '/api/pool/target', { targetIdle: 2 });
  expect(target.status).toBe(200);
  expect(await target.json()).toMatchObject({ targetIdle: 2 });
  await waitFor('2 idle', async () => (await idle()) >= 2, 60_000);

  const claim = await api(
    'POST',
    '/api/pool/claim',
    { agentName: 'Split' },
    { 'idempotency-key': `split-${id}` },
  );
  expect(claim.status).toBe(200);
  expect(await claim.json()).toMatchObject({ agentName: 'Split', status: 'created' });
}, 240_000);
