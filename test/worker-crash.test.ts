/**
 * The worker is SIGKILLed in the middle of claims and started again: every claim is bound exactly once
 * (or fails cleanly), retries of each key return the same binding, and nothing is left half-claimed.
 */
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type Stack, startStack } from './stack';
import { type ClaimBody, forkWorker, json, newKey, shared } from './support/helpers';

let stack: Stack;
let worker: ChildProcess | null = null;

beforeAll(async () => {
  stack = await startStack(shared({ targetIdle: 20, maxTotal: 60, noWorker: true }));
  worker = await forkWorker(stack);
  await stack.waitFor('20 idle', async () => (await stack.counts()).idle === 20, 120_000);
});
afterAll(async () => {
  worker?.kill('SIGKILL');
  await stack?.stop();
});

it('binds each claim exactly once across worker SIGKILLs', async () => {
  const keys = Array.from({ length: 24 }, (_, i) => newKey(`crash${i}`));
  const claim = (key: string) =>
    stack.api(
      'POST',
      '/api/pool/claim',
      { agentName: 'Crash', maxWaitMs: 60_000 },
      { 'idempotency-key': key },
    );
  const inFlight = Promise.all(keys.map(claim));

  for (let round = 0; round < 2; round++) {
    await new Promise((r) => setTimeout(r, 150));
    worker!.kill('SIGKILL');
    await new Promise((r) => setTimeout(r, 500));
    worker = await forkWorker(stack);
  }
  const responses = await inFlight;
  const bodies = await Promise.all(responses.map((r) => json<ClaimBody>(r)));
  const statuses = responses.map((r) => r.status);
  // Clean outcomes only: bound, or an honest "no instance" / "provisioning failed".
  for (const s of statuses) expect([200, 502, 503]).toContain(s);
  const bound = bodies.filter((_, i) => statuses[i] === 200);
  expect(bound.length).toBeGreaterThanOrEqual(20);
  expect(new Set(bound.map((b) => b.instanceId)).size).toBe(bound.length);

  // Each instance was provisioned for at most one claim key, and each bound key for exactly one instance.
  const inventory = await stack.compute.inventory();
  const keyOf = new Map(inventory.filter((i) => i.provisioned).map((i) => [i.id, i.provisioned!.requestId]));
  bodies.forEach((b, i) => {
    if (statuses[i] === 200) expect(keyOf.get(b.instanceId)).toBe(keys[i]);
  });
  const boundKeys = [...keyOf.values()];
  expect(new Set(boundKeys).size).toBe(boundKeys.length);

  // Retrying every key answers the same binding.
  const retries = await Promise.all(keys.map(claim));
  for (const [i, r] of retries.entries()) {
    if (statuses[i] !== 200) continue;
    expect(r.status).toBe(200);
    expect((await json<ClaimBody>(r)).instanceId).toBe(bodies[i]!.instanceId);
  }
  // Nothing is left half-claimed.
  await stack.waitFor(
    'no instance stuck in claiming',
    async () => (await stack.counts()).claiming === 0,
    60_000,
  );
}, 240_000);
