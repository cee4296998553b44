/**
 * Lifecycle under start failures: a start that never becomes ready is replaced after the deadline, the
 * circuit breaker stops warming when starts keep failing and closes once they succeed, and long-lived
 * instances continue as new and stay claimable.
 */
import vm from 'node:vm';
import { and, eq } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import { instanceEvents, instances } from '../drizzle/schema';
import { WORKFLOW_STACK_FRAMES } from '../workers/workflow-stack-traces';
import { getPoolStateQuery, healthChangedSignal } from '../workflows/messages';
import { startStack } from './stack';
import { type ClaimBody, json, newKey, shared } from './support/helpers';

interface Info {
  breaker: { open: boolean; consecutiveFailures: number };
}

describe('start failures', () => {
  it('replaces a start that never becomes ready after the deadline', async () => {
    const stack = await startStack(
      shared({ targetIdle: 1, faults: { neverReady: true }, timings: { startDeadlineMs: 1500 } }),
    );
    try {
      const events = () =>
        stack.database.db
          .select()
          .from(instanceEvents)
          .where(eq(instanceEvents.reason, 'not ready within the start deadline (1500 ms)'));
      await stack.waitFor('a start to pass its deadline', async () => (await events()).length > 0);
      const [first] = await events();
      expect(first!.toStatus).toBe('destroying');
      // Its compute is released, and once starts work again the pool reaches its target.
      stack.setDefaultFaults(undefined);
      await stack.waitFor('the stuck instance to be destroyed', async () =>
        (await stack.compute.inventory()).every((i) => i.id !== first!.instanceId),
      );
      await stack.waitFor('1 idle', async () => (await stack.counts()).idle === 1, 60_000);
    } finally {
      await stack.stop();
    }
  });

  it('a start killed while its compute is being created leaves nothing behind', async () => {
    const stack = await startStack(shared({ targetIdle: 0 }));
    try {
      stack.compute.createDelayMs = 3000;
      const started = await stack.api('POST', '/api/pool/replenish', { count: 1 });
      const [id] = (await json<{ started: string[] }>(started)).started;
      await stack.waitFor('the create to be in flight', async () => stack.compute.createCalls > 0);
      expect((await stack.api('DELETE', `/api/pool/instances/${id}`)).status).toBe(202);
      await stack.waitFor('destroyed', async () => {
        const [row] = await stack.database.db.select().from(instances).where(eq(instances.id, id!));
        return row?.status === 'destroyed';
      });
      // The teardown waited for the create it could not interrupt, so it released what the create made.
      await stack.waitFor('the slow create to land', async () => stack.compute.createsFinished === 1);
      await new Promise((r) => setTimeout(r, 500));
      expect((await stack.compute.inventory()).map((i) => i.id)).not.toContain(id);
      expect(stack.compute.createCalls).toBe(1);
    } finally {
      await stack.stop();
    }
  });

  it('opens the circuit breaker on repeated start failures and closes it after a success', async () => {
    const stack = await startStack(
      shared({
        targetIdle: 2,
        pool: { breakerThreshold: 3, breakerCooldownMs: 3000 },
        timings: { stepMaxAttempts: 1 },
      }),
    );
    try {
      await stack.waitFor('2 idle', async () => (await stack.counts()).idle === 2);
      stack.compute.createFailures = 1_000_000;
      // Force new starts: drain the idle ones.
      expect((await stack.api('POST', '/api/pool/drain', { count: 2 })).status).toBe(202);
      await stack.waitFor('the breaker to open', async () => {
        const info = await json<Info>(await fetch(`${stack.apiUrl}/api/pool/info`));
        return info.breaker.open;
      });
      // While open (and cooling down) the pool does not keep calling the failing provider.
      const calls = stack.compute.createCalls;
      await new Promise((r) => setTimeout(r, 2000));
      expect(stack.compute.createCalls - calls).toBeLessThanOrEqual(1);

      stack.compute.createFailures = 0;
      await stack.waitFor('2 idle again', async () => (await stack.counts()).idle === 2, 60_000);
      const state = await stack.temporal.workflow
        .getHandle(`pool-${stack.poolName}`)
        .query(getPoolStateQuery);
      expect(state.breaker.open).toBe(false);
    } finally {
      await stack.stop();
    }
  });
});

describe('long-lived instances', () => {
  it('continue as new before their history grows large, and stay claimable', async () => {
    const stack = await startStack(shared({ targetIdle: 1, timings: { maxHistoryEvents: 100 } }));
    try {
      await stack.waitFor('1 idle', async () => (await stack.counts()).idle === 1);
      const [row] = await stack.database.db
        .select()
        .from(instances)
        .where(and(eq(instances.pool, stack.poolName), eq(instances.status, 'idle')));
      const workflowId = `instance-${row!.id}`;
      // The worker's start set the stack trace limit its workflow threads and their sandboxes start from
      // (workers/workflow-stack-traces.ts): a V8 context made in this process now starts from it too.
      expect(vm.runInContext('Error.stackTraceLimit', vm.createContext({}))).toBe(WORKFLOW_STACK_FRAMES);
      const runs = async () => {
        let n = 0;
        for await (const _ of stack.temporal.workflow.list({ query: `WorkflowId = '${workflowId}'` })) n += 1;
        return n;
      };
      // An idle instance whose runtime stays healthy records nothing (the health sweeper watches it from
      // outside): what grows a history is messages, here stale health reports, which it ignores.
      const handle = stack.temporal.workflow.getHandle(workflowId);
      const stale = { seq: 0, healthy: false, failures: 1, gone: false, error: 'stale' };
      await stack.waitFor(
        'a continue-as-new',
        async () => {
          for (let i = 0; i < 5; i++) await handle.signal(healthChangedSignal, stale).catch(() => {});
          return (await runs()) >= 2;
        },
        60_000,
      );
      const res = await stack.api(
        'POST',
        '/api/pool/claim',
        { agentName: 'Old' },
        { 'idempotency-key': newKey('can') },
      );
      const body = await json<ClaimBody>(res);
      expect(res.status).toBe(200);
      expect(body.instanceId).toBe(row!.id);
    } finally {
      await stack.stop();
    }
  });
});
