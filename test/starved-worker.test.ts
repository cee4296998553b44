/**
 * A starved worker never turns a claim into a 500 (issue 13, point 4). The only worker runs in a child process
 * and is SIGSTOPped, so no claim Update is ever answered: 20 claims at once with a short `maxWaitMs` each keep
 * asking their instance (same Update id) and then answer 503 CLAIM_PENDING with Retry-After. After SIGCONT,
 * retries with the same keys bind, each exactly once: one instance per key, one key per instance, in the
 * read model and at the runtime stand-in alike.
 */
import type { ChildProcess } from 'node:child_process';
import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { instances } from '../drizzle/schema';
import { type Stack, startStack } from './stack';
import { type ClaimBody, type ErrorBody, forkWorker, json, newKey, shared } from './support/helpers';

let stack: Stack;
let worker: ChildProcess | null = null;

beforeAll(async () => {
  stack = await startStack(shared({ targetIdle: 20, maxTotal: 40, noWorker: true }));
  worker = await forkWorker(stack);
  await stack.waitFor('20 idle', async () => (await stack.counts()).idle === 20, 90_000);
}, 120_000);
afterAll(async () => {
  worker?.kill('SIGCONT');
  worker?.kill('SIGKILL');
  await stack?.stop();
});

it('answers 503 with Retry-After while the worker is starved, never 500; retries bind exactly once', async () => {
  const keys = Array.from({ length: 20 }, (_, i) => newKey(`starved${i}`));
  const claim = (key: string, maxWaitMs: number) =>
    stack.api('POST', '/api/pool/claim', { agentName: 'Starved', maxWaitMs }, { 'idempotency-key': key });

  worker!.kill('SIGSTOP');
  const t0 = Date.now();
  const starved = await Promise.all(keys.map((k) => claim(k, 500)));
  const elapsed = Date.now() - t0;
  const statuses = starved.map((r) => r.status);
  // Nothing can be bound while no worker runs: every claim waited for its instance, then said "retry".
  expect(statuses.filter((s) => s !== 503)).toEqual([]);
  for (const r of starved) {
    expect(r.headers.get('retry-after')).toMatch(/^\d+$/);
    expect((await json<ErrorBody>(r)).code).toBe('CLAIM_PENDING');
  }
  // Each kept asking its instance for a while past its short deadline, and no longer than the minimum wait.
  expect(elapsed).toBeGreaterThan(5_000);
  expect(elapsed).toBeLessThan(30_000);

  worker!.kill('SIGCONT');
  const retries = await Promise.all(keys.map((k) => claim(k, 20_000)));
  const bodies = await Promise.all(retries.map((r) => json<ClaimBody & ErrorBody>(r)));
  expect(retries.map((r) => r.status)).toEqual(keys.map(() => 200));
  const bound = bodies.map((b) => b.instanceId);
  expect(new Set(bound).size).toBe(keys.length);

  // Exactly once: the stand-in provisioned each bound instance for its key only, and no other instance for
  // any of these keys; the read model agrees.
  const inventory = (await stack.compute.inventory()).filter((i) => i.provisioned);
  const keyOf = new Map(inventory.map((i) => [i.id, i.provisioned!.requestId]));
  for (const [i, b] of bodies.entries()) expect(keyOf.get(b.instanceId)).toBe(keys[i]);
  const provisionedKeys = [...keyOf.values()].filter((k) => keys.includes(k));
  expect(provisionedKeys.length).toBe(keys.length);
  await stack.waitFor(
    'the read model shows the 20 claims',
    async () => {
      const rows = await stack.database.db
        .select({ id: instances.id, claimKey: instances.claimKey })
        .from(instances)
        .where(and(eq(instances.pool, stack.poolName), eq(instances.status, 'claimed')));
      return rows.length === keys.length && rows.every((r) => keyOf.get(r.id) === r.claimKey);
    },
    30_000,
  );

  // A later repeat answers the same binding.
  const again = await Promise.all(keys.map((k) => claim(k, 500)));
  for (const [i, r] of again.entries()) {
    expect(r.status).toBe(200);
    expect((await json<ClaimBody>(r)).instanceId).toBe(bound[i]);
  }
}, 90_000);
