/**
 * Operating the pool: drain never touches a claimed instance, kill, crash → restart, teardown failure →
 * failed → operator retry, self-destruct with the instance's own token, and the sweeper (orphans, read model).
 */
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SecretStore, secretKeyFromBase64 } from '../activities/secret-store';
import { INSTANCE_TOKEN } from '../contracts/secrets';
import { instanceEvents, instanceResources, instances } from '../drizzle/schema';
import { getStateQuery } from '../workflows/messages';
import { type Stack, startStack } from './stack';
import { claimOne, type ErrorBody, json, newKey, shared } from './support/helpers';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack(
    shared({
      targetIdle: 3,
      maxTotal: 30,
      timings: { healthIntervalMs: 300 },
      // A provider that is configured out: every instance records it as skipped, with the reason.
      resourcesFor: () => ({
        enabled: {},
        disabled: [
          {
            kind: 'inbox',
            name: 'agentmail',
            reason: 'agentmail is not configured (AGENTMAIL_API_KEY not set)',
          },
        ],
      }),
    }),
  );
  await stack.waitFor('3 idle', async () => (await stack.counts()).idle === 3);
});
afterAll(() => stack?.stop());

const claim = (name: string) => claimOne(stack, name);
const status = async (id: string) =>
  (await stack.temporal.workflow.getHandle(`instance-${id}`).query(getStateQuery)).status;
const rowStatus = async (id: string) =>
  (await stack.database.db.select().from(instances).where(eq(instances.id, id)))[0]?.status;
const waitRow = (id: string, want: string, timeoutMs?: number) =>
  stack.waitFor(`${id} ${want}`, async () => (await rowStatus(id)) === want, timeoutMs);

describe('instance detail', () => {
  it('lists resources with their facts, and a configured-out provider as skipped with the reason', async () => {
    const claimed = await claim('Inspector');
    const res = await stack.api('GET', `/api/pool/instances/${claimed.instanceId}`);
    expect(res.status).toBe(200);
    const body = await json<{
      resources: Array<{ kind: string; status: string; details: Record<string, string> }>;
    }>(res);
    expect(body.resources.find((r) => r.kind === 'inbox')).toMatchObject({
      status: 'skipped',
      details: { reason: 'agentmail is not configured (AGENTMAIL_API_KEY not set)' },
    });
    expect(body.resources.find((r) => r.kind === 'compute')).toMatchObject({
      status: 'active',
      details: { url: expect.stringContaining(claimed.instanceId) },
    });
  });
});

describe('drain', () => {
  it('never touches a claimed instance', async () => {
    const claimed = await claim('Keeper');
    await stack.waitFor('refill', async () => (await stack.counts()).idle === 3);
    const res = await stack.api('POST', '/api/pool/drain', { count: 20 });
    const body = await json<{ draining: string[] }>(res);
    expect(res.status).toBe(202);
    expect(body.draining).not.toContain(claimed.instanceId);
    expect(body.draining.length).toBeGreaterThanOrEqual(3);
    for (const id of body.draining) await waitRow(id, 'destroyed');
    expect(await status(claimed.instanceId)).toBe('claimed');
    expect((await stack.compute.inventory()).some((i) => i.id === claimed.instanceId)).toBe(true);
    await stack.waitFor('refill after drain', async () => (await stack.counts()).idle === 3);
  });
});

describe('kill', () => {
  it('destroys an instance; a second kill is a 409 and an unknown id a 404', async () => {
    const claimed = await claim('Doomed');
    expect((await stack.api('DELETE', `/api/pool/instances/${claimed.instanceId}`)).status).toBe(202);
    await waitRow(claimed.instanceId, 'destroyed');
    const again = await stack.api('DELETE', `/api/pool/instances/${claimed.instanceId}`);
    expect(again.status).toBe(409);
    expect((await json<ErrorBody>(again)).code).toBe('ALREADY_DESTROYED');
    expect((await stack.api('DELETE', '/api/pool/instances/no-such-instance')).status).toBe(404);
    expect((await stack.compute.inventory()).some((i) => i.id === claimed.instanceId)).toBe(false);
  });
});

describe('crash and restart', () => {
  it('restarts a claimed instance that stops answering and brings it back to claimed', async () => {
    const claimed = await claim('Phoenix');
    await stack.compute.setFaults(claimed.instanceId, { down: true });
    await stack.waitFor('crash detected and recovered', async () => {
      const events = await stack.database.db
        .select()
        .from(instanceEvents)
        .where(eq(instanceEvents.instanceId, claimed.instanceId));
      return (
        events.some((e) => e.toStatus === 'crashed') &&
        events.some((e) => e.reason === 'runtime restarted from its state')
      );
    });
    expect(await status(claimed.instanceId)).toBe('claimed');
  });
});

describe('failed teardown', () => {
  it('goes to failed with the reason, and an operator retry finishes the teardown', async () => {
    const claimed = await claim('Stubborn');
    const notFailed = await stack.api('POST', `/api/pool/instances/${claimed.instanceId}/retry`);
    expect(notFailed.status).toBe(409);

    stack.compute.destroyFailures = 1_000;
    expect((await stack.api('DELETE', `/api/pool/instances/${claimed.instanceId}`)).status).toBe(202);
    await waitRow(claimed.instanceId, 'failed');
    const detail = await json<{ failedStep: string; lastError: string }>(
      await stack.api('GET', `/api/pool/instances/${claimed.instanceId}`),
    );
    expect(detail.failedStep).toBe('destroy');
    expect(detail.lastError).toContain('injected destroy failure');

    stack.compute.destroyFailures = 0;
    expect((await stack.api('POST', `/api/pool/instances/${claimed.instanceId}/retry`)).status).toBe(202);
    await waitRow(claimed.instanceId, 'destroyed');
  });
});

describe('self-destruct', () => {
  it('accepts only the instance its own token belongs to', async () => {
    const a = await claim('Selfish');
    const b = await claim('Bystander');
    const secrets = new SecretStore(stack.database.db, secretKeyFromBase64(stack.secretsKey));
    const tokenA = (await secrets.get(a.instanceId, INSTANCE_TOKEN))!;
    const call = (credentials: string) =>
      fetch(`${stack.apiUrl}/api/pool/self-destruct`, {
        method: 'POST',
        headers: { authorization: `Bearer ${credentials}` },
      });

    expect((await call(`${b.instanceId}:${tokenA}`)).status).toBe(403);
    expect((await call(`${a.instanceId}:wrong`)).status).toBe(403);
    expect((await call(stack.apiKey)).status).toBe(403);
    expect((await fetch(`${stack.apiUrl}/api/pool/self-destruct`, { method: 'POST' })).status).toBe(401);
    expect(await status(b.instanceId)).toBe('claimed');

    expect((await call(`${a.instanceId}:${tokenA}`)).status).toBe(202);
    await waitRow(a.instanceId, 'destroyed');
    expect(await status(b.instanceId)).toBe('claimed');
    const events = await stack.database.db
      .select()
      .from(instanceEvents)
      .where(eq(instanceEvents.instanceId, a.instanceId));
    expect(events).toContainEqual(
      expect.objectContaining({
        toStatus: 'destroying',
        actor: 'instance',
        reason: 'self-destruct requested by the instance',
      }),
    );
  });

  it('a runtime whose conversation ended: destroyed with the reason in the audit trail, everything it held released', async () => {
    const secrets = new SecretStore(stack.database.db, secretKeyFromBase64(stack.secretsKey));
    const call = (credentials: string, body: unknown) =>
      fetch(`${stack.apiUrl}/api/pool/self-destruct`, {
        method: 'POST',
        headers: { authorization: `Bearer ${credentials}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const cases = [
      ['removed_from_conversation', 'removed from the conversation'],
      ['conversation_ended', 'conversation ended'],
      ['left_conversation', 'left the conversation when asked'],
    ] as const;
    for (const [reason, sentence] of cases) {
      const claimed = await claim(`Exiter${cases.findIndex(([r]) => r === reason) + 1}`);
      const credentials = `${claimed.instanceId}:${(await secrets.get(claimed.instanceId, INSTANCE_TOKEN))!}`;
      // Free text, unknown reasons and extra fields are refused, and change nothing.
      for (const bad of [
        { reason: 'I feel like it' },
        { reason: sentence },
        { reason, extra: 1 },
        [reason],
      ]) {
        const res = await call(credentials, bad);
        expect(res.status, JSON.stringify(bad)).toBe(400);
        expect((await json<ErrorBody>(res)).code).toBeTruthy();
      }
      expect(await status(claimed.instanceId)).toBe('claimed');

      expect((await call(credentials, { reason })).status).toBe(202);
      await waitRow(claimed.instanceId, 'destroyed');
      const events = await stack.database.db
        .select()
        .from(instanceEvents)
        .where(eq(instanceEvents.instanceId, claimed.instanceId));
      expect(events).toContainEqual(
        expect.objectContaining({
          fromStatus: 'claimed',
          toStatus: 'destroying',
          actor: 'instance',
          reason: sentence,
        }),
      );
      // Released: its compute is gone, no resource row is active, its secrets are deleted.
      expect((await stack.compute.inventory()).some((i) => i.id === claimed.instanceId)).toBe(false);
      const resources = await stack.database.db
        .select()
        .from(instanceResources)
        .where(eq(instanceResources.instanceId, claimed.instanceId));
      expect(resources.find((r) => r.kind === 'compute')?.status).toBe('released');
      expect(resources.filter((r) => r.status === 'active')).toEqual([]);
      expect(await secrets.get(claimed.instanceId, INSTANCE_TOKEN)).toBeNull();
    }
  });
});

describe('reconcile', () => {
  it('releases orphaned compute and repairs read-model rows whose workflow is gone', async () => {
    // An orphan: compute of one of our instances whose workflow died (terminated mid-start, say): it has
    // its read-model row (written before anything is created) and no running workflow.
    const orphan = `orphan-${newKey('o').slice(2, 14)}`;
    await stack.compute.create({
      instanceId: orphan,
      poolName: stack.poolName,
      env: { INSTANCE_TOKEN: 'orphan-token' },
    });
    await stack.database.db
      .insert(instances)
      .values({ id: orphan, pool: stack.poolName, status: 'starting', provider: 'standin' });
    // A stranger: compute this deployment never recorded (another deployment on the same account): kept.
    const stranger = `stranger-${newKey('s').slice(2, 14)}`;
    await stack.compute.create({
      instanceId: stranger,
      poolName: stack.poolName,
      env: { INSTANCE_TOKEN: 'stranger-token' },
    });
    // A stale row: the read model says idle, but the workflow was terminated by hand.
    const victim = await claim('Terminated');
    await stack.temporal.workflow
      .getHandle(`instance-${victim.instanceId}`)
      .terminate('test: gone without cleanup');

    expect((await stack.api('POST', '/api/pool/reconcile')).status).toBe(202);
    await stack.waitFor(
      'orphan released',
      async () => !(await stack.compute.inventory()).some((i) => i.id === orphan),
    );
    await waitRow(victim.instanceId, 'destroyed');
    await stack.waitFor('the terminated instance compute released', async () =>
      (await stack.compute.inventory()).every((i) => i.id !== victim.instanceId),
    );
    expect((await stack.compute.inventory()).some((i) => i.id === stranger)).toBe(true);
    await stack.compute.destroy(stranger);
    await stack.waitFor('the orphan release audited', async () =>
      (
        await stack.database.db.select().from(instanceEvents).where(eq(instanceEvents.instanceId, orphan))
      ).some((e) => e.actor === 'reconcile'),
    );
  });

  it('runs the sweeper once more for a request that comes while a run is under way', async () => {
    const runs = async () => {
      let n = 0;
      for await (const _ of stack.temporal.workflow.list({
        query: `WorkflowType = "reconcileWorkflow" AND WorkflowId STARTS_WITH "reconcile-${stack.poolName}"`,
      }))
        n++;
      return n;
    };
    const before = await runs();
    // Back to back: the second request arrives while the first run is still sweeping, or within the same second
    // after it ended (the Schedule's trigger dropped it then: it names runs by the second). A caller asking for
    // a sweep now gets one that starts after it asked.
    expect((await stack.api('POST', '/api/pool/reconcile')).status).toBe(202);
    expect((await stack.api('POST', '/api/pool/reconcile')).status).toBe(202);
    await stack.waitFor('both requested runs', async () => (await runs()) >= before + 2, 30_000);
  });

  it('repairs a row whose status drifted from its running workflow, and leaves agreeing rows alone', async () => {
    const drifted = await claim('Drifted');
    // The read model lost a write: it still says idle at the claim's seq, the workflow says claimed.
    await stack.database.db
      .update(instances)
      .set({ status: 'idle' })
      .where(eq(instances.id, drifted.instanceId));
    const eventsBefore = async () =>
      (
        await stack.database.db
          .select()
          .from(instanceEvents)
          .where(eq(instanceEvents.instanceId, drifted.instanceId))
      ).length;
    const before = await eventsBefore();
    expect((await stack.api('POST', '/api/pool/reconcile')).status).toBe(202);
    await waitRow(drifted.instanceId, 'claimed');
    const [repair] = (
      await stack.database.db
        .select()
        .from(instanceEvents)
        .where(eq(instanceEvents.instanceId, drifted.instanceId))
    ).filter((e) => e.actor === 'reconcile');
    expect(repair?.reason).toBe('read model said idle, workflow says claimed');
    expect(await eventsBefore()).toBe(before + 1);
  });
});
