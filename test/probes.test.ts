/**
 * The API's probes and request ids, in-process on the run's Postgres and dev server: `/healthz` is liveness
 * (no dependency asked), `/readyz` readiness — 200 with everything up; 503 naming `temporal` with a client
 * pointed at a closed port, `database` with a database at a closed port, `draining` once the drain has begun
 * (while requests are still served), each with Retry-After and never a 500. Every response echoes its request
 * id (the caller's `X-Request-Id` when it is a plain token, else a new UUID), and the log lines carry it.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { drizzle } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { buildApp } from '../api/app';
import { checksSettled } from '../api/routes/health';
import type { Db } from '../drizzle/client';
import * as schema from '../drizzle/schema';
import { openSystem, type RunningApi, type System } from '../system';
import { freePort } from './support/ports';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'convos-probes-'));
const apiKey = randomBytes(24).toString('base64url');
const logLines: Array<Record<string, unknown>> = [];
let system: System;
let api: RunningApi;

beforeAll(async () => {
  system = await openSystem({
    env: {
      POOL_ENVIRONMENT: 'staging',
      DATABASE_URL: inject('databaseUrl'),
      TEMPORAL_ADDRESS: inject('temporalAddress'),
      SECRETS_KEY: randomBytes(32).toString('base64'),
      DATA_DIR: dataDir,
      POOL_NAME: `probes-${randomUUID().slice(0, 8)}`,
      COMPUTE_PROVIDER: 'local',
      LOCAL_RUNTIME: 'standin',
    },
    log: {
      level: 'info',
      destination: { write: (line: string) => void logLines.push(JSON.parse(line)) },
    },
  });
  api = await system.startApi({ apiKey, host: '127.0.0.1', port: 0 });
});

afterAll(async () => {
  await system?.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

describe('probes', () => {
  it('/healthz and /readyz answer 200 with everything up', async () => {
    const live = await fetch(`${api.url}/healthz`);
    expect(live.status).toBe(200);
    expect(await live.json()).toEqual({ ok: true });
    const ready = await fetch(`${api.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ ok: true, failing: [] });
  });

  it('/readyz is 503 naming temporal when Temporal does not answer; /healthz stays 200', async () => {
    const closed = await freePort();
    const temporal = new Client({ connection: Connection.lazy({ address: `127.0.0.1:${closed}` }) });
    const lifecycle = { draining: false };
    const app = await buildApp({ ...system.apiContext(apiKey), temporal }, { lifecycle });
    try {
      const started = Date.now();
      const res = await app.inject({ method: 'GET', url: '/readyz' });
      expect(res.statusCode).toBe(503);
      expect(res.json()).toEqual({ ok: false, failing: ['temporal'] });
      expect(res.headers['retry-after']).toBe('5');
      expect(Date.now() - started).toBeLessThan(4_000);
      expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    } finally {
      await app.close();
      // As the API's drain does: the client's retries of the failed check end before its connection closes.
      await checksSettled(lifecycle);
      await temporal.connection.close().catch(() => {});
    }
  });

  it('/readyz is 503 naming database when the database does not answer', async () => {
    const closed = await freePort();
    const sql = new pg.Pool({
      connectionString: `postgres://postgres@127.0.0.1:${closed}/none`,
      max: 1,
      connectionTimeoutMillis: 1000,
    });
    const db = drizzle(sql, { schema }) as unknown as Db;
    const app = await buildApp({ ...system.apiContext(apiKey), db });
    try {
      const res = await app.inject({ method: 'GET', url: '/readyz' });
      expect(res.statusCode).toBe(503);
      expect(res.json()).toEqual({ ok: false, failing: ['database'] });
      expect(res.headers['retry-after']).toBe('5');
    } finally {
      await app.close();
      await sql.end();
    }
  });
});

describe('request ids', () => {
  it('echoes a plain X-Request-Id and logs every line of the request with it', async () => {
    const id = `probe-${randomUUID()}.1_2`;
    const res = await fetch(`${api.url}/api/pool/counts`, { headers: { 'x-request-id': id } });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-request-id')).toBe(id);
    const lines = logLines.filter((l) => l.requestId === id);
    // One line per request, at its end, with what it was and how it went.
    expect(lines.map((l) => l.msg)).toEqual(['request completed']);
    expect(lines[0]).toMatchObject({
      req: { method: 'GET', url: '/api/pool/counts' },
      res: { statusCode: 200 },
      responseTime: expect.any(Number),
    });
  });

  it('replaces an unsafe or overlong X-Request-Id with a fresh UUID, also on errors', async () => {
    for (const given of ['has space', 'semi;colon', 'x'.repeat(129), '"quoted"', 'ü']) {
      const res = await fetch(`${api.url}/api/pool/nothing-here`, { headers: { 'x-request-id': given } });
      expect(res.status).toBe(404);
      const echoed = res.headers.get('x-request-id') ?? '';
      expect(echoed).toMatch(UUID);
      expect(logLines.some((l) => l.requestId === given)).toBe(false);
    }
    const a = (await fetch(`${api.url}/healthz`)).headers.get('x-request-id');
    const b = (await fetch(`${api.url}/healthz`)).headers.get('x-request-id');
    expect(a).toMatch(UUID);
    expect(b).toMatch(UUID);
    expect(a).not.toBe(b);
  });
});

describe('the drain', () => {
  it('/readyz turns 503 at once while requests are still served, then the server stops accepting', async () => {
    const drained = api.drain({ delayMs: 1_000 });
    const ready = await fetch(`${api.url}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toEqual({ ok: false, failing: ['draining'] });
    expect(ready.headers.get('retry-after')).toBe('5');
    expect(ready.headers.get('connection')).toBe('close');
    // Still serving until the delay is over (a load balancer is taking the replica out meanwhile).
    const counts = await fetch(`${api.url}/api/pool/counts`);
    expect(counts.status).toBe(200);
    expect((await fetch(`${api.url}/healthz`)).status).toBe(200);
    await drained;
    await expect(fetch(`${api.url}/healthz`)).rejects.toThrow();
  });
});
