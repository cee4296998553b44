/**
 * 200 concurrent claims on 150 idle instances: exactly 150 distinct bindings, the other 50 answered 503 with
 * Retry-After at their deadline, and no instance ever bound to two claims.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { getStateQuery } from '../workflows/messages';
import { type Stack, startStack } from './stack';
import { type ClaimBody, json, newKey, shared } from './support/helpers';

let stack: Stack;
beforeAll(async () => {
  // maxTotal = 150: claimed instances count, so nothing refills and 50 claims must wait in vain.
  stack = await startStack(shared({ targetIdle: 150, maxTotal: 150, timings: { healthIntervalMs: 60_000 } }));
  await stack.waitFor('150 idle', async () => (await stack.counts()).idle === 150, 180_000);
}, 240_000);
afterAll(() => stack?.stop());

it('binds 150 of 200 concurrent claims to 150 distinct instances, never one instance twice', async () => {
  const keys = Array.from({ length: 200 }, (_, i) => newKey(`load${i}`));
  const responses = await Promise.all(
    keys.map((key) =>
      stack.api(
        'POST',
        '/api/pool/claim',
        { agentName: 'Load', maxWaitMs: 3000 },
        { 'idempotency-key': key },
      ),
    ),
  );
  const ok = responses.map((r, i) => ({ r, key: keys[i]! })).filter(({ r }) => r.status === 200);
  const refused = responses.filter((r) => r.status === 503);
  expect(ok.length).toBe(150);
  expect(refused.length).toBe(50);
  for (const r of refused) expect(r.headers.get('retry-after')).toMatch(/^\d+$/);

  const bindings = await Promise.all(ok.map(async ({ r, key }) => ({ key, body: await json<ClaimBody>(r) })));
  expect(new Set(bindings.map((b) => b.body.instanceId)).size).toBe(150);

  // The runtime side agrees: each instance provisioned once, for exactly the claim that got it.
  const inventory = await stack.compute.inventory();
  const provisioned = inventory.filter((i) => i.provisioned);
  expect(provisioned.length).toBe(150);
  for (const inst of provisioned) expect(inst.provisionCalls).toBe(1);
  const byInstance = new Map(provisioned.map((i) => [i.id, i.provisioned!.requestId]));
  for (const { key, body } of bindings) expect(byInstance.get(body.instanceId)).toBe(key);

  // And so do the workflows.
  for (const { key, body } of bindings.slice(0, 20)) {
    const state = await stack.temporal.workflow.getHandle(`instance-${body.instanceId}`).query(getStateQuery);
    expect(state.claim?.claimKey).toBe(key);
  }
}, 180_000);
