/**
 * Anonymous abuse: the claim limit is per end user (the site names each visitor with X-Client-Id), anonymous
 * claims (X-Client-Anonymous) share a global budget per minute, and an anonymous claim whose conversation
 * stays quiet is reclaimed, so a script can neither hold nor burn the pool.
 */
import { eq, like } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { claims, instanceEvents, instances } from '../drizzle/schema';
import { type Stack, startStack } from './stack';
import { type ClaimBody, type ErrorBody, json, newKey, shared } from './support/helpers';

const BUDGET = 4;
const IDLE_TTL_MS = 4_000;

let stack: Stack;
beforeAll(async () => {
  stack = await startStack(
    shared({
      targetIdle: 3,
      maxTotal: 12,
      claimRateLimitPerMinute: 2,
      env: { ANON_CLAIMS_PER_MINUTE: String(BUDGET), ANON_CLAIM_IDLE_TTL_MS: String(IDLE_TTL_MS) },
    }),
  );
  await stack.waitFor('3 idle', async () => (await stack.counts()).idle === 3);
});
afterAll(() => stack?.stop());

let visitors = 0;
const visitor = () => `site-visitor-${++visitors}`;

const claim = (client: string, opts: { anonymous?: boolean; key?: string; maxWaitMs?: number } = {}) =>
  stack.api(
    'POST',
    '/api/pool/claim',
    { agentName: 'Visitor', maxWaitMs: opts.maxWaitMs ?? 0 },
    {
      'idempotency-key': opts.key ?? newKey('anon'),
      'x-client-id': client,
      ...(opts.anonymous ? { 'x-client-anonymous': 'true' } : {}),
    },
  );

const status = async (id: string) =>
  (await stack.database.db.select().from(instances).where(eq(instances.id, id)))[0]?.status;

describe('anonymous claims have a lifetime', () => {
  it('reclaims an anonymous claim whose conversation stays quiet; active or authenticated ones stay', async () => {
    const quiet = await claim(visitor(), { anonymous: true, maxWaitMs: 20_000 });
    const active = await claim(visitor(), { anonymous: true, maxWaitMs: 20_000 });
    const owned = await claim(visitor(), { maxWaitMs: 20_000 });
    expect([quiet.status, active.status, owned.status]).toEqual([200, 200, 200]);
    const [quietId, activeId, ownedId] = await Promise.all(
      [quiet, active, owned].map(async (r) => (await json<ClaimBody>(r)).instanceId),
    );

    // Someone keeps talking in the active one's conversation.
    const talking = setInterval(() => void stack.compute.recordActivity(activeId!).catch(() => {}), 500);
    try {
      await stack.waitFor(
        'the quiet anonymous claim reclaimed',
        async () => (await status(quietId!)) === 'destroyed',
        30_000,
      );
      const [event] = await stack.database.db
        .select()
        .from(instanceEvents)
        .where(like(instanceEvents.reason, '%conversation was quiet%'));
      expect(event?.instanceId).toBe(quietId);
      // Well past the lifetime, the other two are still claimed.
      await new Promise((r) => setTimeout(r, IDLE_TTL_MS));
      expect(await status(activeId!)).toBe('claimed');
      expect(await status(ownedId!)).toBe('claimed');
    } finally {
      clearInterval(talking);
    }
  });
});

describe('limits per client and a global anonymous budget', () => {
  it('rate-limits each client on its own, not every visitor in one bucket', async () => {
    const a = visitor();
    const b = visitor();
    expect((await claim(a)).status).not.toBe(429);
    expect((await claim(a)).status).not.toBe(429);
    const third = await claim(a);
    expect(third.status).toBe(429);
    expect(third.headers.get('retry-after')).toMatch(/^\d+$/);
    expect((await claim(b)).status).not.toBe(429);
  });

  it('admits at most the budget of anonymous claims per minute across clients; others are unaffected', async () => {
    const used = await stack.database.db.select().from(claims).where(eq(claims.anonymous, true));
    const admittedKeys: string[] = [];
    for (let i = used.length; i < BUDGET; i++) {
      const key = newKey('budget');
      const res = await claim(visitor(), { anonymous: true, key });
      expect(res.status).not.toBe(429);
      if (res.status === 503)
        expect((await json<ErrorBody>(res)).code).not.toBe('ANONYMOUS_BUDGET_EXHAUSTED');
      admittedKeys.push(key);
    }
    const refusedKey = newKey('over');
    const refused = await claim(visitor(), { anonymous: true, key: refusedKey });
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
    expect((await json<ErrorBody>(refused)).code).toBe('ANONYMOUS_BUDGET_EXHAUSTED');
    // Nothing was recorded for the refused claim.
    expect(await stack.database.db.select().from(claims).where(eq(claims.key, refusedKey))).toEqual([]);

    // A retry of an admitted key is not a new claim; an authenticated client's claim is not anonymous.
    if (admittedKeys[0]) {
      const retry = await claim(visitor(), { anonymous: true, key: admittedKeys[0] });
      if (retry.status === 503)
        expect((await json<ErrorBody>(retry)).code).not.toBe('ANONYMOUS_BUDGET_EXHAUSTED');
    }
    const owned = await claim(visitor(), { maxWaitMs: 20_000 });
    expect(owned.status).toBe(200);
  });
});
