/**
 * Claim invariants on a small pool: idempotency (same key → same binding, also concurrently), a reused key
 * with another body (409), provisioning failure moves the claim to another instance and destroys the tainted
 * one, waiting claims on an empty pool, and SSE progress.
 */
import type { AddressInfo } from 'node:net';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SecretStore, secretKeyFromBase64 } from '../activities/secret-store';
import { buildApp } from '../api/app';
import { instanceEvents, instances } from '../drizzle/schema';
import { getStateQuery } from '../workflows/messages';
import { type Stack, startStack } from './stack';
import { type ClaimBody, type ErrorBody, json, newKey, shared } from './support/helpers';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack(shared({ targetIdle: 3, maxTotal: 20 }));
  await stack.waitFor('3 idle', async () => (await stack.counts()).idle === 3);
});
afterAll(() => stack?.stop());

const claim = (body: Record<string, unknown>, key: string, headers: Record<string, string> = {}) =>
  stack.api('POST', '/api/pool/claim', body, { 'idempotency-key': key, ...headers });

describe('idempotent claims', () => {
  it('the same Idempotency-Key sent 10 times at once binds one instance and answers the same', async () => {
    const key = newKey('same');
    const responses = await Promise.all(Array.from({ length: 10 }, () => claim({ agentName: 'Twin' }, key)));
    const bodies = await Promise.all(responses.map((r) => json<ClaimBody>(r)));
    expect(responses.map((r) => r.status)).toEqual(Array(10).fill(200));
    expect(new Set(bodies.map((b) => JSON.stringify(b))).size).toBe(1);

    const inventory = await stack.compute.inventory();
    const bound = inventory.filter((i) => i.provisioned?.requestId === key);
    expect(bound.map((i) => i.id)).toEqual([bodies[0]!.instanceId]);
    const state = await stack.temporal.workflow
      .getHandle(`instance-${bodies[0]!.instanceId}`)
      .query(getStateQuery);
    expect(state.status).toBe('claimed');
    expect(state.claim?.claimKey).toBe(key);

    // A later retry still gets the same answer.
    const again = await claim({ agentName: 'Twin' }, key);
    expect(await json<ClaimBody>(again)).toEqual(bodies[0]);
  });

  it('is idempotent across API replicas', async () => {
    // A second API replica on the same database and Temporal: its claim service is another lease owner.
    const replica = await buildApp({
      db: stack.database.db,
      temporal: stack.temporal,
      secrets: new SecretStore(stack.database.db, secretKeyFromBase64(stack.secretsKey)),
      config: stack.config,
      apiKey: stack.apiKey,
    });
    await replica.listen({ port: 0, host: '127.0.0.1' });
    try {
      const replicaUrl = `http://127.0.0.1:${(replica.server.address() as AddressInfo).port}`;
      const key = newKey('replica');
      const responses = await Promise.all(
        [stack.apiUrl, replicaUrl, stack.apiUrl, replicaUrl].map((base) =>
          fetch(`${base}/api/pool/claim`, {
            method: 'POST',
            headers: {
              authorization: `Bearer ${stack.apiKey}`,
              'content-type': 'application/json',
              'idempotency-key': key,
            },
            body: JSON.stringify({ agentName: 'Replica' }),
          }),
        ),
      );
      expect(responses.map((r) => r.status)).toEqual([200, 200, 200, 200]);
      const bodies = await Promise.all(responses.map((r) => json<ClaimBody>(r)));
      expect(new Set(bodies.map((b) => b.instanceId)).size).toBe(1);
      const bound = (await stack.compute.inventory()).filter((i) => i.provisioned?.requestId === key);
      expect(bound.length).toBe(1);
    } finally {
      await replica.close();
    }
  });

  it('a used key with a different body is a 409 and changes nothing', async () => {
    const key = newKey('reuse');
    const first = await claim({ agentName: 'First' }, key);
    expect(first.status).toBe(200);
    await stack.waitFor('refill', async () => (await stack.counts()).idle === 3);
    const before = await stack.counts();
    const second = await claim({ agentName: 'Second' }, key);
    expect(second.status).toBe(409);
    expect((await json<ErrorBody>(second)).code).toBe('IDEMPOTENCY_KEY_REUSED');
    expect(await stack.counts()).toEqual(before);
  });
});

describe('provisioning failure', () => {
  it('moves the claim to another instance and destroys the tainted one', async () => {
    await stack.waitFor('3 idle', async () => (await stack.counts()).idle === 3);
    // The claim takes the longest-idle instance first: make exactly that one fail provisioning.
    const [oldest] = await stack.database.db
      .select()
      .from(instances)
      .where(eq(instances.pool, stack.poolName))
      .then((rows) => rows.filter((r) => r.status === 'idle').sort((a, b) => +a.idleAt! - +b.idleAt!));
    await stack.compute.setFaults(oldest!.id, { provisionFailures: -1 });

    const res = await claim({ agentName: 'Survivor' }, newKey('taint'));
    const body = await json<ClaimBody>(res);
    expect(res.status).toBe(200);
    expect(body.instanceId).not.toBe(oldest!.id);

    await stack.waitFor('tainted instance destroyed', async () => {
      const [row] = await stack.database.db.select().from(instances).where(eq(instances.id, oldest!.id));
      return row?.status === 'destroyed';
    });
    const events = await stack.database.db
      .select()
      .from(instanceEvents)
      .where(eq(instanceEvents.instanceId, oldest!.id));
    expect(events.some((e) => e.toStatus === 'destroying' && e.reason.includes('provisioning failed'))).toBe(
      true,
    );
    expect((await stack.compute.inventory()).some((i) => i.id === oldest!.id)).toBe(false);
  });

  it('answers 502 when provisioning fails on every instance tried', async () => {
    await stack.waitFor('3 idle', async () => (await stack.counts()).idle === 3);
    for (const inst of await stack.compute.inventory()) {
      if (!inst.provisioned) await stack.compute.setFaults(inst.id, { provisionFailures: -1 });
    }
    stack.setDefaultFaults({ provisionFailures: -1 });
    const res = await claim({ maxWaitMs: 1500 }, newKey('allfail'));
    expect(res.status).toBe(502);
    expect((await json<ErrorBody>(res)).code).toBe('PROVISION_FAILED');
    stack.setDefaultFaults(undefined);
  });
});

describe('empty pool', () => {
  it('waits for an instance, or answers 503 with Retry-After at the deadline', async () => {
    const target = await stack.api('PUT', '/api/pool/target', { targetIdle: 0 });
    expect(target.status).toBe(200);
    // Claim whatever is idle so the pool is empty.
    await stack.waitFor('no starting', async () => (await stack.counts()).starting === 0);
    while ((await stack.counts()).idle > 0) await claim({ maxWaitMs: 0 }, newKey('empty'));

    const refused = await claim({ maxWaitMs: 500 }, newKey('none'));
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
    expect((await json<ErrorBody>(refused)).code).toBe('NO_IDLE_INSTANCE');

    const waiting = claim({ maxWaitMs: 30_000 }, newKey('wait'));
    await new Promise((r) => setTimeout(r, 300));
    await stack.api('PUT', '/api/pool/target', { targetIdle: 1 });
    const res = await waiting;
    const body = await json<ClaimBody>(res);
    expect(res.status).toBe(200);
    expect(body.warm).toBe(false);
  });

  it('streams progress as server-sent events', async () => {
    await stack.waitFor('1 idle', async () => (await stack.counts()).idle >= 1);
    const res = await claim({ agentName: 'Streamer' }, newKey('sse'), { accept: 'text/event-stream' });
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const text = await res.text();
    const events = text
      .trim()
      .split('\n\n')
      .map((block) => {
        const [eventLine, dataLine] = block.split('\n');
        return {
          event: eventLine!.replace('event: ', ''),
          data: JSON.parse(dataLine!.replace('data: ', '')),
        };
      });
    const steps = events.filter((e) => e.event === 'step').map((e) => `${e.data.step}:${e.data.status}`);
    expect(steps).toEqual(
      expect.arrayContaining(['reserve:active', 'reserve:ok', 'provision:ok', 'conversation:ok']),
    );
    const complete = events.at(-1)!;
    expect(complete.event).toBe('complete');
    expect(complete.data.ok).toBe(true);
    expect(complete.data.result.agentName).toBe('Streamer');
  });
});
