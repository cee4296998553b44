/**
 * Declarative pool settings: what a worker's environment declares is applied to the running pool on every
 * worker start (an Update), shown by `GET /api/pool/info` as `config`; an operator's run-time change stays in
 * force until the declaration of that setting changes; a change of compute provider warms on the new provider,
 * then drains the old one's idle instances and never touches a claimed one.
 */
import { eq } from 'drizzle-orm';
import { afterAll, describe, expect, it } from 'vitest';
import { SecretStore, secretKeyFromBase64 } from '../activities/secret-store';
import { buildApp } from '../api/app';
import { instances } from '../drizzle/schema';
import { StandinComputeProvider } from '../tools/runtime-standin/compute-provider';
import type { PoolSettingsReport } from '../workflows/types';
import { type Stack, startStack, TEST_TIMINGS } from './stack';
import { claimOne, json, poolSeesIdle, shared } from './support/helpers';

interface Info {
  computeProvider: string;
  targetIdle: number;
  config: Omit<PoolSettingsReport, 'changed'> | null;
}

const stacks: Stack[] = [];
afterAll(() => Promise.all(stacks.map((s) => s.stop())));

const info = async (stack: Stack) => json<Info>(await fetch(`${stack.apiUrl}/api/pool/info`));

describe('declared settings', () => {
  it('apply to the running pool; an operator change stays until its declaration changes', async () => {
    const stack = await startStack(shared({ targetIdle: 1, maxTotal: 10 }));
    stacks.push(stack);
    await stack.waitFor('1 idle', async () => (await stack.counts()).idle === 1);

    const first = await stack.declare({ targetIdle: 2 });
    expect(first?.changed).toEqual(['targetIdle']);
    expect(first?.settings.targetIdle).toBe(2);
    await stack.waitFor('2 idle', async () => (await stack.counts()).idle === 2);
    await stack.waitFor(
      'info to show target 2',
      async () => (await info(stack)).config?.settings.targetIdle === 2,
    );
    const shown = (await info(stack)).config!;
    expect(shown.declared.targetIdle).toBe(2);
    expect(shown.overridden).toEqual([]);
    expect(shown.settings.instanceTimings).toEqual(TEST_TIMINGS);

    // The health sweeper runs a shard per 500 instances of maxTotal, and follows an operator's change of it.
    const sweeper = stack.temporal.workflow.getHandle(`health-${stack.poolName}`);
    // Shards running now (a cancelled one stays pending until its next recorded heartbeat).
    const CANCEL_REQUESTED = 3;
    const shards = async () =>
      ((await sweeper.describe()).raw.pendingActivities ?? []).filter((a) => a.state !== CANCEL_REQUESTED)
        .length;
    await stack.waitFor('one shard', async () => (await shards()) === 1);
    expect((await stack.api('PUT', '/api/pool/target', { targetIdle: 2, maxTotal: 1100 })).status).toBe(200);
    await stack.waitFor('three shards', async () => (await shards()) === 3, 30_000);
    expect((await stack.api('PUT', '/api/pool/target', { targetIdle: 2, maxTotal: 10 })).status).toBe(200);
    await stack.waitFor('one shard again', async () => (await shards()) === 1, 30_000);

    // An operator raises the target at run time; a worker restart declaring the same as before keeps it.
    expect((await stack.api('PUT', '/api/pool/target', { targetIdle: 3 })).status).toBe(200);
    const restart = await stack.declare({ targetIdle: 2 });
    expect(restart?.changed).toEqual([]);
    expect(restart?.settings.targetIdle).toBe(3);
    expect(restart?.overridden).toEqual(['targetIdle']);
    await stack.waitFor('info to show the override', async () =>
      Boolean((await info(stack)).config?.overridden.includes('targetIdle')),
    );

    // A new declaration of that setting wins; other settings change with it.
    const changed = await stack.declare({ targetIdle: 1, breakerThreshold: 7, reconcileIntervalMs: 120_000 });
    expect(changed?.changed.sort()).toEqual(['breakerThreshold', 'reconcileIntervalMs', 'targetIdle']);
    expect(changed?.settings).toMatchObject({ targetIdle: 1, breakerThreshold: 7 });
    expect(changed?.overridden).toEqual([]);
    // The sweeper Schedule follows its declared interval.
    const schedule = await stack.temporal.schedule.getHandle(`reconcile-${stack.poolName}`).describe();
    expect(schedule.spec.intervals?.[0]?.every).toBe(120_000);

    // Settings no environment could declare are refused before anything applies.
    await expect(stack.declare({ targetIdle: -1 })).rejects.toThrow(/targetIdle/);
    const after = await stack.declare({ targetIdle: 1, breakerThreshold: 7, reconcileIntervalMs: 120_000 });
    expect(after?.changed).toEqual([]);
    expect(after?.settings.targetIdle).toBe(1);
  });

  it('a new compute provider warms first, then the old idle instances go; a claimed one stays', async () => {
    const stack = await startStack(
      shared({
        targetIdle: 2,
        maxTotal: 10,
        extraCompute: (url) => [new StandinComputeProvider(url, { name: 'standin-b' })],
      }),
    );
    stacks.push(stack);
    await stack.waitFor('2 idle', async () => (await stack.counts()).idle === 2);
    const claimed = await claimOne(stack, 'Stays');
    await stack.waitFor('2 idle again', async () => (await stack.counts()).idle === 2, 60_000);
    await poolSeesIdle(stack, 2);

    const byProvider = async () => {
      const rows = await stack.database.db
        .select({ id: instances.id, status: instances.status, provider: instances.provider })
        .from(instances)
        .where(eq(instances.pool, stack.poolName));
      return rows.filter((r) => r.status !== 'destroyed');
    };
    const before = await byProvider();
    expect(before.every((r) => r.provider === 'standin')).toBe(true);

    const report = await stack.declare({ computeProvider: 'standin-b' });
    expect(report?.changed).toEqual(['computeProvider']);
    expect(report?.retiring).toBe(2);

    await stack.waitFor(
      'the idle instances to be all on standin-b',
      async () => {
        const live = await byProvider();
        const idle = live.filter((r) => r.status === 'idle');
        return (
          idle.length === 2 &&
          idle.every((r) => r.provider === 'standin-b') &&
          !live.some((r) => r.provider === 'standin' && r.status !== 'claimed')
        );
      },
      90_000,
    );
    // The claimed one was never touched: same instance, still claimed, on the old provider.
    const live = await byProvider();
    expect(live.find((r) => r.id === claimed.instanceId)).toMatchObject({
      status: 'claimed',
      provider: 'standin',
    });
    const shown = await info(stack);
    expect(shown.computeProvider).toBe('standin-b');
    // The pool's own view (its last read of the read model, at most a second behind) catches up.
    await stack.waitFor('nothing retiring', async () => (await info(stack)).config?.retiring === 0, 10_000);
    // The drained ones were intentional: no start failure was counted.
    const state = await stack.temporal.workflow.getHandle(`pool-${stack.poolName}`).query('getPoolState');
    expect((state as { breaker: { consecutiveFailures: number } }).breaker.consecutiveFailures).toBe(0);
  });
});

describe('before any worker started the pool', () => {
  it('pool steering answers 503 with Retry-After, never 500', async () => {
    const stack = stacks[0]!;
    const app = await buildApp({
      db: stack.database.db,
      temporal: stack.temporal,
      secrets: new SecretStore(stack.database.db, secretKeyFromBase64(stack.secretsKey)),
      config: { ...stack.config, pool: { ...stack.config.pool, name: `never-${stack.poolName}` } },
      apiKey: stack.apiKey,
    });
    try {
      const auth = { authorization: `Bearer ${stack.apiKey}` };
      for (const [method, url, payload] of [
        ['PUT', '/api/pool/target', { targetIdle: 2 }],
        ['POST', '/api/pool/replenish', { count: 1 }],
        ['POST', '/api/pool/drain', { count: 1 }],
      ] as const) {
        const res = await app.inject({ method, url, payload, headers: auth });
        expect(res.statusCode, `${method} ${url}`).toBe(503);
        expect(res.headers['retry-after']).toBe('5');
        expect(res.json()).toMatchObject({ code: 'POOL_NOT_READY' });
      }
      // The public info still answers, with no settings in force to show.
      const info = await app.inject({ method: 'GET', url: '/api/pool/info' });
      expect(info.statusCode).toBe(200);
      expect(info.json().config).toBeNull();
    } finally {
      await app.close();
    }
  });
});
