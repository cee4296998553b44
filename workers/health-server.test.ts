/** The worker's probe server: liveness always, readiness from what it is told, 404/405 for anything else. */
import { Counter, Registry } from 'prom-client';
import { afterEach, expect, it } from 'vitest';
import { type HealthServer, startHealthServer } from './health-server';

let server: HealthServer | null = null;
afterEach(async () => {
  await server?.close();
  server = null;
});

it('answers /healthz always and /readyz 200 or 503 with what is failing and a Retry-After', async () => {
  let failing: string[] = ['starting'];
  server = await startHealthServer({ host: '127.0.0.1', port: 0, unready: async () => failing });
  expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);

  const live = await fetch(`${server.url}/healthz`);
  expect([live.status, await live.json()]).toEqual([200, { ok: true }]);

  let ready = await fetch(`${server.url}/readyz`);
  expect([ready.status, await ready.json()]).toEqual([503, { ok: false, failing: ['starting'] }]);
  expect(ready.headers.get('retry-after')).toBe('5');

  failing = [];
  ready = await fetch(`${server.url}/readyz?verbose=1`);
  expect([ready.status, await ready.json()]).toEqual([200, { ok: true, failing: [] }]);

  failing = ['draining'];
  ready = await fetch(`${server.url}/readyz`);
  expect([ready.status, await ready.json()]).toEqual([503, { ok: false, failing: ['draining'] }]);
  // Liveness does not follow readiness.
  expect((await fetch(`${server.url}/healthz`)).status).toBe(200);

  const head = await fetch(`${server.url}/healthz`, { method: 'HEAD' });
  expect(head.status).toBe(200);
  expect((await fetch(`${server.url}/metrics`)).status).toBe(404);
  expect((await fetch(`${server.url}/readyz`, { method: 'POST' })).status).toBe(405);
});

it('is 503 (not a crash) when the readiness check itself throws', async () => {
  server = await startHealthServer({
    host: '127.0.0.1',
    port: 0,
    unready: async () => {
      throw new Error('boom');
    },
  });
  const ready = await fetch(`${server.url}/readyz`);
  expect([ready.status, await ready.json()]).toEqual([503, { ok: false, failing: ['check'] }]);
  expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
});

it('says which variable to change when its port is taken', async () => {
  server = await startHealthServer({ host: '127.0.0.1', port: 0, unready: async () => [] });
  const port = Number(new URL(server.url).port);
  await expect(startHealthServer({ host: '127.0.0.1', port, unready: async () => [] })).rejects.toThrow(
    /in use: give each worker on this host its own WORKER_HEALTH_PORT, or 0 for none/,
  );
});

it('serves /metrics from the registry it is given: 503 until it exists, then the text; the bearer when set', async () => {
  let registry: Registry | null = null;
  server = await startHealthServer({
    host: '127.0.0.1',
    port: 0,
    unready: async () => [],
    metrics: { registry: () => registry, bearer: 'scrape-token' },
  });
  const scrape = (token?: string) =>
    fetch(`${server!.url}/metrics`, token ? { headers: { authorization: `Bearer ${token}` } } : {});
  expect((await scrape()).status).toBe(401);
  expect((await scrape('scrape-token-x')).status).toBe(401);
  expect((await scrape('scrape-token')).status).toBe(503);

  registry = new Registry();
  new Counter({ name: 'convos_test_total', help: 'a test counter', registers: [registry] }).inc(3);
  const res = await scrape('scrape-token');
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe(registry.contentType);
  expect(await res.text()).toContain('convos_test_total 3');
});

it('serves /metrics without a bearer when none is set', async () => {
  const registry = new Registry();
  server = await startHealthServer({
    host: '127.0.0.1',
    port: 0,
    unready: async () => [],
    metrics: { registry: () => registry, bearer: null },
  });
  expect((await fetch(`${server.url}/metrics`)).status).toBe(200);
});
