/**
 * The Telnyx adapter against the stand-in and a real Postgres (its own database: `phone_numbers` is global):
 * pool before ordering, adoption after lost answers, faults retried like an activity, return to the pool and
 * release beyond its size, the sweeper's paginated list, SMS, auth errors, and concurrent takers.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { eq } from 'drizzle-orm';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { poolTag, RESERVE_TAG, TelnyxNumbers, type TelnyxOptions } from '../../activities/providers/telnyx';
import { type ResourceContext, resourceName } from '../../activities/providers/types';
import {
  ProviderRateLimitedError,
  ProviderRejectedError,
  ProviderUnavailableError,
} from '../../contracts/provider-errors';
import { type Database, openDatabase } from '../../drizzle/client';
import { phoneNumbers } from '../../drizzle/schema';
import { startTelnyxStandin, type TelnyxStandin } from '../standins/telnyx-standin';
import { createDatabase } from '../support/databases';

const PROFILE = 'mp-standin';
const POOL = 'tp';

let database: Database;
let dropDatabase: () => Promise<void>;
let standin: TelnyxStandin;

beforeAll(async () => {
  // A database of our own, next to the run's one (same server).
  const runUrl = inject('databaseUrl');
  const own = await createDatabase(runUrl, 'convos_telnyx');
  database = await openDatabase({ url: own.url, dataDir: '.data', poolSize: 10 });
  dropDatabase = own.drop;
});

afterAll(async () => {
  await database?.close();
  await dropDatabase?.();
});

let stockSeq = 0;
const newStock = (n: number) =>
  Array.from({ length: n }, () => `+1312555${String(1000 + stockSeq++).padStart(4, '0')}`);

beforeEach(async () => {
  await database.db.delete(phoneNumbers);
  standin = await startTelnyxStandin({ messagingProfiles: [PROFILE, 'mp-other'], stock: newStock(20) });
});
afterEach(async () => {
  await standin.close();
});

function telnyx(over: Partial<TelnyxOptions> = {}): TelnyxNumbers {
  return new TelnyxNumbers({
    apiKey: standin.apiKey,
    messagingProfileId: PROFILE,
    db: database.db,
    maxPooledNumbers: 5,
    baseUrl: standin.baseUrl,
    timeoutMs: 300,
    orderPollMs: 10,
    orderWaitMs: 2000,
    ...over,
  });
}

const ctx = (instanceId: string, poolName = POOL): ResourceContext => ({
  instanceId,
  poolName,
  name: resourceName(poolName, instanceId),
  idempotencyKey: `instance-${instanceId}:phone`,
});

/** What the activity layer does: retry retryable failures (honouring Retry-After), never rejected ones. */
async function retried<T>(fn: () => Promise<T>, attempts = 10): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof ProviderRejectedError || i >= attempts) throw err;
      await sleep(err instanceof ProviderRateLimitedError ? err.retryAfterMs : 20);
    }
  }
}

const rows = () => database.db.select().from(phoneNumbers);
/** Requests by `METHOD /path` under the API's /v2 prefix. */
const count = (label: string) => standin.requests.filter((r) => r === label.replace(' /', ' /v2/')).length;
const orderedFor = (name: string) => standin.orders.filter((o) => o.customer_reference === name).length;

/** A number we already own, sitting in our pool. */
function seedPool(n: number) {
  return Promise.all(
    newStock(n).map(async (phone) => {
      const held = standin.hold(phone, { tags: [RESERVE_TAG], customerReference: RESERVE_TAG });
      await database.db
        .insert(phoneNumbers)
        .values({ phoneNumber: phone, providerId: held.id, status: 'available' });
      return held;
    }),
  );
}

describe('telnyx create', () => {
  it('orders a number when the pool is empty, attached and tagged, and is idempotent', async () => {
    const t = telnyx();
    const c = ctx('a1');
    const created = await t.create(c);
    expect(created.env.TELNYX_PHONE_NUMBER).toMatch(/^\+1\d{10}$/);
    expect(created.metadata).toEqual({ phoneNumber: created.env.TELNYX_PHONE_NUMBER });
    expect(created.secret).toBeUndefined();
    expect(count('GET /available_phone_numbers')).toBe(1);
    expect(count('POST /number_orders')).toBe(1);
    expect(standin.orders[0]).toMatchObject({ customer_reference: c.name, messaging_profile_id: PROFILE });

    const held = standin.inventory.items.get(created.ref)!;
    expect(held.phone_number).toBe(created.env.TELNYX_PHONE_NUMBER);
    expect(held.tags).toEqual([c.name, poolTag(POOL)]);
    expect(held.customer_reference).toBe(c.name);
    expect(held.messaging_profile_id).toBe(PROFILE);
    expect(await rows()).toMatchObject([
      { phoneNumber: held.phone_number, providerId: held.id, status: 'assigned', instanceId: 'a1' },
    ]);

    // The same call again (an activity retry after success) returns the same number, buys nothing.
    expect(await t.create(c)).toEqual(created);
    expect(count('POST /number_orders')).toBe(1);
    expect(standin.inventory.duplicates()).toEqual([]);
  });

  it('attaches the messaging profile when the order did not', async () => {
    const t = telnyx();
    const row = await seedPool(1);
    standin.inventory.items.get(row[0]!.id)!.messaging_profile_id = null;
    const created = await t.create(ctx('a2'));
    expect(count(`PATCH /phone_numbers/${created.ref}/messaging`)).toBe(1);
    expect(standin.inventory.items.get(created.ref)!.messaging_profile_id).toBe(PROFILE);
  });

  it('reuses a pooled number before ordering anything', async () => {
    const [pooled] = await seedPool(1);
    const created = await telnyx().create(ctx('b1'));
    expect(created.ref).toBe(pooled!.id);
    expect(count('GET /available_phone_numbers')).toBe(0);
    expect(count('POST /number_orders')).toBe(0);
    expect(standin.inventory.items.get(pooled!.id)).toMatchObject({
      tags: [resourceName(POOL, 'b1'), poolTag(POOL)],
      customer_reference: resourceName(POOL, 'b1'),
    });
    expect(await rows()).toMatchObject([
      { phoneNumber: pooled!.phone_number, status: 'assigned', instanceId: 'b1' },
    ]);
  });

  it('skips a pooled number that Telnyx no longer has', async () => {
    const [gone, kept] = await seedPool(2);
    // The oldest pooled number is taken first: make it the one Telnyx lost.
    await database.db
      .update(phoneNumbers)
      .set({ updatedAt: new Date(Date.now() - 60_000) })
      .where(eq(phoneNumbers.providerId, gone!.id));
    standin.inventory.remove(gone!.id);
    const created = await telnyx().create(ctx('b2'));
    expect(created.ref).toBe(kept!.id);
    expect(count('POST /number_orders')).toBe(0);
    const byRef = new Map((await rows()).map((r) => [r.providerId, r]));
    expect(byRef.get(gone!.id)).toMatchObject({ status: 'released', instanceId: null });
    expect(byRef.get(kept!.id)).toMatchObject({ status: 'assigned', instanceId: 'b2' });
  });

  it('adopts the number of an order whose answer was lost: one order, one number', async () => {
    const t = telnyx();
    const c = ctx('c1');
    standin.faults.failNext(/^POST \/v2\/number_orders$/, 'lost');
    await expect(t.create(c)).rejects.toBeInstanceOf(ProviderUnavailableError);
    expect(await rows()).toEqual([]); // nothing recorded: the answer never came
    const created = await retried(() => t.create(c));
    expect(orderedFor(c.name)).toBe(1);
    expect(standin.inventory.list()).toHaveLength(1);
    expect(standin.inventory.duplicates()).toEqual([]);
    expect(created.ref).toBe(standin.inventory.list()[0]!.id);
    expect(await rows()).toHaveLength(1);
  });

  it('adopts a pending order on retry instead of ordering again', async () => {
    await standin.close();
    standin = await startTelnyxStandin({ messagingProfiles: [PROFILE], stock: newStock(5), pendingPolls: 6 });
    const t = telnyx({ orderWaitMs: 30, orderPollMs: 10 });
    const c = ctx('c2');
    await expect(t.create(c)).rejects.toThrow(/still pending/);
    const created = await retried(() => t.create(c));
    expect(orderedFor(c.name)).toBe(1);
    expect(standin.inventory.items.has(created.ref)).toBe(true);
  });

  it('orders another number when an order fails', async () => {
    const t = telnyx();
    standin.failNextOrders(1);
    const created = await retried(() => t.create(ctx('c3')));
    expect(standin.orders.map((o) => o.status)).toEqual(['failure', 'success']);
    expect(standin.inventory.list().map((n) => n.id)).toEqual([created.ref]);
  });

  it('retries through 5xx, 429 with Retry-After, timeouts and lost answers at every step', async () => {
    const t = telnyx();
    const c = ctx('d1');
    standin.faults.failNext(/^GET \/v2\/phone_numbers$/, '5xx');
    standin.faults.failNext(/^GET \/v2\/number_orders$/, 'timeout');
    standin.faults.failNext(/^GET \/v2\/available_phone_numbers$/, '429');
    standin.faults.failNext(/^POST \/v2\/number_orders$/, 'timeout');
    standin.faults.failNext(/^POST \/v2\/number_orders$/, 'lost');
    standin.faults.failNext(/^GET \/v2\/number_orders\//, '5xx');
    standin.faults.failNext(/^PATCH \/v2\/phone_numbers\/[^/]+$/, 'lost');
    const started = Date.now();
    const created = await retried(() => t.create(c));
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000); // the 429's Retry-After: 1 was honoured
    expect(standin.faults.injected.map((f) => f.kind).sort()).toEqual(
      ['5xx', '5xx', '429', 'lost', 'lost', 'timeout', 'timeout'].sort(),
    );
    expect(orderedFor(c.name)).toBe(1);
    expect(standin.inventory.list()).toHaveLength(1);
    expect(standin.inventory.items.get(created.ref)!.customer_reference).toBe(c.name);
    expect(await rows()).toMatchObject([{ status: 'assigned', instanceId: 'd1' }]);
  });

  it('rejects a wrong API key without retrying and without echoing the key', async () => {
    const t = telnyx({ apiKey: 'KEY_wrong_secret_value' });
    const err = await t.create(ctx('e1')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderRejectedError);
    expect((err as ProviderRejectedError).status).toBe(401);
    expect((err as Error).message).not.toContain('KEY_wrong_secret_value');
    // Refused at the first call, not retried, and nothing ordered.
    expect(standin.requests).toEqual(['GET /v2/phone_numbers']);
    await expect(t.list(POOL)).rejects.toBeInstanceOf(ProviderRejectedError);
  });

  it('never hands one pooled number to two concurrent creates', async () => {
    for (let round = 0; round < 5; round++) {
      await database.db.delete(phoneNumbers);
      const [pooled] = await seedPool(1);
      const t = telnyx();
      const [x, y] = await Promise.all([t.create(ctx(`f${round}x`)), t.create(ctx(`f${round}y`))]);
      expect(x!.ref).not.toBe(y!.ref);
      expect([x!.ref, y!.ref]).toContain(pooled!.id);
    }
    // Wider: 8 instances racing for 3 pooled numbers → 3 reused, 5 ordered, all distinct.
    await database.db.delete(phoneNumbers);
    const pooled = await seedPool(3);
    const ordersBefore = standin.orders.length;
    const created = await Promise.all(Array.from({ length: 8 }, (_, i) => telnyx().create(ctx(`g${i}`))));
    expect(new Set(created.map((c) => c.ref)).size).toBe(8);
    for (const p of pooled) expect(created.map((c) => c.ref)).toContain(p.id);
    expect(standin.orders.length - ordersBefore).toBe(5);
    const assigned = (await rows()).filter((r) => r.status === 'assigned');
    expect(new Set(assigned.map((r) => r.instanceId)).size).toBe(8);
  });
});

describe('telnyx destroy', () => {
  it('returns the number to our pool, and the next instance reuses it', async () => {
    const t = telnyx();
    const a = ctx('h1');
    const created = await t.create(a);
    await t.destroy(a, created.ref);
    expect(standin.inventory.items.get(created.ref)).toMatchObject({
      tags: [RESERVE_TAG],
      customer_reference: RESERVE_TAG,
      messaging_profile_id: PROFILE,
    });
    expect(await rows()).toMatchObject([{ providerId: created.ref, status: 'available', instanceId: null }]);
    expect(await t.list(POOL)).toEqual([]);

    // Again (a retry, or the sweeper): nothing left to do for this instance.
    await t.destroy(a, created.ref);
    await t.destroy(a, null);
    expect(await rows()).toMatchObject([{ status: 'available' }]);

    const orders = standin.orders.length;
    const next = await t.create(ctx('h2'));
    expect(next.ref).toBe(created.ref);
    expect(standin.orders.length).toBe(orders);
    // A late destroy of the first instance must not take the number from the second.
    await t.destroy(a, created.ref);
    expect(await rows()).toMatchObject([{ status: 'assigned', instanceId: 'h2' }]);
    expect(standin.inventory.items.get(created.ref)!.customer_reference).toBe(resourceName(POOL, 'h2'));
  });

  it('releases at Telnyx once the pool holds maxPooledNumbers', async () => {
    const t = telnyx({ maxPooledNumbers: 1 });
    const [a, b] = [ctx('i1'), ctx('i2')];
    const ra = await t.create(a);
    const rb = await t.create(b);
    await Promise.all([retried(() => t.destroy(a, ra.ref)), retried(() => t.destroy(b, rb.ref))]);
    const all = await rows();
    const available = all.filter((r) => r.status === 'available');
    const released = all.filter((r) => r.status === 'released');
    expect(available).toHaveLength(1);
    expect(released).toHaveLength(1);
    expect(count(`DELETE /phone_numbers/${released[0]!.providerId}`)).toBe(1);
    expect(standin.inventory.list().map((n) => n.id)).toEqual([available[0]!.providerId]);
  });

  it('treats a number already gone at Telnyx as released', async () => {
    // Releasing (pool full): DELETE answers 404.
    const t0 = telnyx({ maxPooledNumbers: 0 });
    const a = await t0.create(ctx('j1'));
    standin.inventory.remove(a.ref);
    await t0.destroy(ctx('j1'), a.ref);
    // Pooling: re-tagging answers 404.
    const t5 = telnyx();
    const b = await t5.create(ctx('j2'));
    standin.inventory.remove(b.ref);
    await t5.destroy(ctx('j2'), b.ref);
    expect((await rows()).map((r) => r.status)).toEqual(['released', 'released']);
    // And an instance that never had a number.
    await t5.destroy(ctx('j3'), null);
    await t5.destroy(ctx('j4'), 'no-such-id');
  });

  it('finds and gives back a number bought for an instance whose order answer was lost', async () => {
    const t = telnyx({ maxPooledNumbers: 0 });
    const c = ctx('k1');
    standin.faults.failNext(/^POST \/v2\/number_orders$/, 'lost');
    await expect(t.create(c)).rejects.toBeInstanceOf(ProviderUnavailableError);
    expect(standin.orders).toHaveLength(1);
    // The saga's compensation only knows the name.
    await retried(() => t.destroy(c, null));
    expect(standin.inventory.list()).toEqual([]);
    expect(await rows()).toMatchObject([{ status: 'released' }]);
  });

  it('survives faults during a churn of creates and destroys: no duplicates, nothing leaked', async () => {
    standin.stock.push(...newStock(40));
    const t = telnyx({ maxPooledNumbers: 3 });
    standin.faults.set({ rate: 0.25, seed: 7, kinds: ['5xx', 'timeout', 'lost'] });
    const ids = Array.from({ length: 12 }, (_, i) => `m${i}`);
    await Promise.all(
      ids.map(async (id) => {
        const created = await retried(() => t.create(ctx(id)), 30);
        await retried(() => t.destroy(ctx(id), created.ref), 30);
      }),
    );
    standin.faults.clear();
    expect(standin.faults.injected.length).toBeGreaterThan(5);
    expect(standin.inventory.duplicates()).toEqual([]);
    for (const id of ids) expect(orderedFor(resourceName(POOL, id))).toBeLessThanOrEqual(1);
    const all = await rows();
    const available = all.filter((r) => r.status === 'available');
    expect(all.filter((r) => r.status === 'assigned')).toEqual([]);
    expect(available.length).toBeLessThanOrEqual(3);
    // What Telnyx still holds is exactly our pool, tagged as such.
    expect(
      standin.inventory
        .list()
        .map((n) => n.id)
        .sort(),
    ).toEqual(available.map((r) => r.providerId).sort());
    for (const n of standin.inventory.list()) expect(n.tags).toEqual([RESERVE_TAG]);
    expect(await t.list(POOL)).toEqual([]);
  });
});

describe('telnyx list and sms', () => {
  it("lists the pool's numbers across pages and parses instance ids", async () => {
    const ids = Array.from({ length: 23 }, () => randomUUID());
    for (const [i, id] of ids.entries()) {
      standin.hold(`+1415555${String(2000 + i)}`, {
        tags: [resourceName(POOL, id), poolTag(POOL)],
        customerReference: resourceName(POOL, id),
      });
    }
    standin.hold('+14155553000', {
      tags: [resourceName('other', 'z1'), poolTag('other')],
      customerReference: 'x',
    });
    standin.hold('+14155553001', { tags: [RESERVE_TAG], customerReference: RESERVE_TAG });
    // Tagged for the pool but named by no scheme of ours: listed with a null instance id.
    standin.hold('+14155553002', { tags: [poolTag(POOL)], customerReference: 'hand-made' });

    const held = await telnyx({ pageSize: 5 }).list(POOL);
    expect(count('GET /phone_numbers')).toBe(5); // 24 numbers, 5 a page
    expect(held).toHaveLength(24);
    expect(
      held
        .map((h) => h.instanceId)
        .filter(Boolean)
        .sort(),
    ).toEqual([...ids].sort());
    expect(held.find((h) => h.name === 'hand-made')?.instanceId).toBeNull();
    for (const h of held) expect(standin.inventory.items.get(h.ref)).toBeDefined();
  });

  it('sends an SMS from an instance number through the messaging profile', async () => {
    const t = telnyx();
    const created = await t.create(ctx('s1'));
    const from = created.env.TELNYX_PHONE_NUMBER!;
    const { messageId } = await t.sendSms(from, { to: '+13125550199', text: 'hello from s1' });
    expect(standin.messages).toEqual([
      { id: messageId, from, to: '+13125550199', text: 'hello from s1', messaging_profile_id: PROFILE },
    ]);
    await expect(t.sendSms(from, { to: '555', text: 'x' })).rejects.toBeInstanceOf(ProviderRejectedError);
  });
});
