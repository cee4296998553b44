import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { OpenRouterKeys } from '../../activities/providers/openrouter';
import { type ResourceContext, resourceName } from '../../activities/providers/types';
import {
  type ProviderError,
  ProviderNotFoundError,
  ProviderRateLimitedError,
  ProviderRejectedError,
  ProviderUnavailableError,
} from '../../contracts/provider-errors';
import { type OpenRouterStandin, startOpenRouterStandin } from '../standins/openrouter-standin';

const TIMEOUT_MS = 1500;

const ctx = (pool: string, instanceId: string): ResourceContext => ({
  instanceId,
  poolName: pool,
  name: resourceName(pool, instanceId),
  idempotencyKey: `instance-${instanceId}:create-llmKey`,
});

/** Mimics the activity's retry policy: rejections are final, 429 waits Retry-After, the rest retries. */
async function retrying<T>(fn: () => Promise<T>, seen: unknown[] = [], attempts = 10): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (err) {
      seen.push(err);
      if (err instanceof ProviderRejectedError || i >= attempts) throw err;
      await new Promise((r) =>
        setTimeout(r, err instanceof ProviderRateLimitedError ? err.retryAfterMs : 20),
      );
    }
  }
}

/** No error, whatever its class, may carry a secret in its message, detail or stack. */
function expectNoSecrets(errors: unknown[], secrets: string[]) {
  for (const err of errors) {
    const text = [String(err), (err as Error).stack ?? '', (err as ProviderError).detail ?? ''].join('\n');
    for (const secret of secrets) expect(text).not.toContain(secret);
  }
}

let standin: OpenRouterStandin;
let keys: OpenRouterKeys;
beforeEach(async () => {
  standin = await startOpenRouterStandin({ pageSize: 3 });
  keys = new OpenRouterKeys({
    managementKey: standin.managementKey,
    monthlyLimitUsd: 5,
    baseUrl: standin.baseUrl,
    timeoutMs: TIMEOUT_MS,
  });
});
afterEach(() => standin.close());

describe('OpenRouterKeys', () => {
  it('creates a named key with a monthly cap and hands out a secret that works', async () => {
    const c = ctx('p1', 'i-1');
    const created = await keys.create(c);

    const [stored, ...more] = standin.keysNamed(c.name);
    expect(more).toHaveLength(0);
    expect(stored).toMatchObject({ hash: created.ref, limit: 5, limit_reset: 'monthly', disabled: false });
    expect(created.secret).toEqual({ env: 'OPENROUTER_API_KEY', value: stored?.key });
    expect(created.metadata).toEqual({ name: c.name, limitUsd: '5', limitReset: 'monthly' });
    expect(created.env).toEqual({});
    expect(JSON.stringify([created.ref, created.metadata, created.env])).not.toContain(created.secret?.value);

    // The key itself authenticates (and the management key is not what the instance gets).
    const res = await fetch(`${standin.baseUrl}/key`, {
      headers: { authorization: `Bearer ${created.secret?.value}` },
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { data: { limit: number } }).data.limit).toBe(5);
    expect(created.secret?.value).not.toBe(standin.managementKey);
  });

  it('after a lost create response, the retry replaces the orphaned key: one key, whose secret works', async () => {
    const c = ctx('p1', 'i-lost');
    standin.faults.failNext(/^POST \/api\/v1\/keys$/, 'lost');
    const seen: unknown[] = [];
    const created = await retrying(() => keys.create(c), seen);

    expect(seen).toHaveLength(1);
    expect(seen[0]).toBeInstanceOf(ProviderUnavailableError);
    // Two creations happened (the first secret was lost in transit), but only the second key is left.
    expect(standin.inventory.creations.get(c.name)).toBe(2);
    const live = standin.keysNamed(c.name);
    expect(live).toHaveLength(1);
    expect(live[0]?.hash).toBe(created.ref);
    expect(live[0]?.key).toBe(created.secret?.value);
    expect(standin.requests.filter((r) => r.startsWith('DELETE /api/v1/keys/'))).toHaveLength(1);
  });

  it('lists a pool by name prefix across pages, including disabled keys', async () => {
    const ids = Array.from({ length: 7 }, () => randomUUID());
    for (const id of ids) await keys.create(ctx('p1', id));
    await keys.create(ctx('p2', randomUUID()));
    await keys.create(ctx('p1x', randomUUID()));
    // Pool `p1-x`'s names start with pool `p1`'s prefix: instance ids are UUIDs, so they never parse as p1's.
    await keys.create(ctx('p1-x', randomUUID()));
    const disabledId = randomUUID();
    const disabled = await keys.create(ctx('p1', disabledId));
    const stored = standin.inventory.items.get(disabled.ref);
    if (stored) stored.disabled = true;
    // Someone else's key in the same account.
    await fetch(`${standin.baseUrl}/keys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${standin.managementKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'hand-made key' }),
    });
    standin.requests.length = 0;

    const held = await keys.list('p1');
    // p1-x's key matches the prefix but is not one of p1's instances: listed, with no instance id.
    expect(held.filter((h) => h.instanceId === null)).toHaveLength(1);
    const ours = held.filter((h) => h.instanceId !== null);
    expect(ours.map((h) => h.instanceId).sort()).toEqual([...ids, disabledId].sort());
    for (const h of ours) {
      expect(h.name).toBe(resourceName('p1', h.instanceId ?? ''));
      expect(standin.inventory.items.get(h.ref)?.name).toBe(h.name);
    }
    // 12 keys at 3 a page: 4 pages, then the empty one that ends the listing.
    expect(standin.requests.filter((r) => r === 'GET /api/v1/keys')).toHaveLength(5);
    expect(await keys.list('nobody')).toEqual([]);
  });

  it('destroys by ref, by name, and treats an already deleted key as done', async () => {
    const a = ctx('p1', 'a');
    const b = ctx('p1', 'b');
    const createdA = await keys.create(a);
    await keys.create(b);

    await keys.destroy(a, createdA.ref);
    expect(standin.keysNamed(a.name)).toHaveLength(0);
    await keys.destroy(a, createdA.ref); // gone already: still success

    await keys.destroy(b, null); // creation never confirmed: found by name
    expect(standin.keysNamed(b.name)).toHaveLength(0);
    await keys.destroy(b, null);
    expect(standin.inventory.list()).toHaveLength(0);
  });

  it('destroy also removes stray keys under the same name (overlapping create attempts)', async () => {
    const c = ctx('p1', 'twice');
    const recorded = await keys.create(c);
    // A second attempt that ran alongside (its activity timed out, not its request) left another key.
    const stray = await fetch(`${standin.baseUrl}/keys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${standin.managementKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: c.name, limit: 5, limit_reset: 'monthly' }),
    });
    expect(stray.status).toBe(201);
    expect(standin.keysNamed(c.name)).toHaveLength(2);

    await keys.destroy(c, recorded.ref);
    expect(standin.keysNamed(c.name)).toHaveLength(0);
  });

  it('rides out 5xx, 429 (waiting Retry-After) and timeouts with retries', async () => {
    const c = ctx('p1', 'faulty');
    standin.faults.failNext(/^GET \/api\/v1\/keys$/, '5xx');
    standin.faults.failNext(/^POST \/api\/v1\/keys$/, '429');
    standin.faults.failNext(/^POST \/api\/v1\/keys$/, 'timeout');
    const seen: unknown[] = [];
    const started = Date.now();
    const created = await retrying(() => keys.create(c), seen);

    expect(seen.map((e) => (e as Error).name)).toEqual([
      'ProviderUnavailableError',
      'ProviderRateLimitedError',
      'ProviderUnavailableError',
    ]);
    expect((seen[1] as ProviderRateLimitedError).retryAfterMs).toBe(1000);
    expect((seen[2] as Error).message).toContain('timed out');
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000 + TIMEOUT_MS - 100);
    expect(standin.keysNamed(c.name).map((k) => k.key)).toEqual([created.secret?.value]);
    expect(standin.inventory.duplicates()).toEqual([]);

    standin.faults.failNext(/^DELETE \/api\/v1\/keys\//, 'lost');
    standin.faults.failNext(/^GET \/api\/v1\/keys$/, '429');
    await retrying(() => keys.destroy(c, created.ref));
    expect(standin.inventory.list()).toHaveLength(0);
  });

  it('raises the cap of a key', async () => {
    const c = ctx('p1', 'spender');
    const created = await keys.create(c);
    expect(await keys.raiseLimit(created.ref, 25)).toEqual({ ref: created.ref, limitUsd: 25 });
    expect(standin.inventory.items.get(created.ref)).toMatchObject({ limit: 25, limit_reset: 'monthly' });
    expect(standin.requests).toContain(`PATCH /api/v1/keys/${created.ref}`);
    expect((await keys.describe(created.ref)).limit).toBe(25);

    await expect(keys.raiseLimit('0'.repeat(64), 25)).rejects.toBeInstanceOf(ProviderNotFoundError);
    await expect(keys.raiseLimit(created.ref, -1)).rejects.toThrow(/positive/);
    await expect(keys.raiseLimit(created.ref, Number.NaN)).rejects.toThrow(/positive/);
  });

  it("reads a key's usage against its cap and the account's credits", async () => {
    const created = await keys.create(ctx('p1', 'reader'));
    standin.inventory.items.get(created.ref)!.usage = 1.5;
    expect(await keys.usage(created.ref)).toEqual({
      usageUsd: 1.5,
      limitUsd: 5,
      remainingUsd: 3.5,
      limitReset: 'monthly',
      disabled: false,
    });
    expect(standin.requests).toContain(`GET /api/v1/keys/${created.ref}`);
    // Spent by deleted keys stays spent.
    const other = await keys.create(ctx('p1', 'gone'));
    standin.inventory.items.get(other.ref)!.usage = 0.25;
    await keys.destroy(ctx('p1', 'gone'), other.ref);
    expect(await keys.credits()).toEqual({ totalUsd: 100, usedUsd: 1.75 });

    await expect(keys.usage('0'.repeat(64))).rejects.toBeInstanceOf(ProviderNotFoundError);
    standin.faults.failNext(/^GET \/api\/v1\/credits$/, '5xx');
    await expect(keys.credits()).rejects.toBeInstanceOf(ProviderUnavailableError);
    standin.faults.failNext(/^GET \/api\/v1\/keys\//, '429');
    await expect(keys.usage(created.ref)).rejects.toBeInstanceOf(ProviderRateLimitedError);
  });

  it('a wrong management key is a non-retryable rejection that never shows the key', async () => {
    const wrongKey = `sk-or-v1-${'f'.repeat(64)}`;
    const bad = new OpenRouterKeys({
      managementKey: wrongKey,
      monthlyLimitUsd: 5,
      baseUrl: standin.baseUrl,
      timeoutMs: TIMEOUT_MS,
    });
    const seen: unknown[] = [];
    await expect(retrying(() => bad.create(ctx('p1', 'x')), seen)).rejects.toBeInstanceOf(
      ProviderRejectedError,
    );
    expect(seen).toHaveLength(1); // not retried
    expect((seen[0] as ProviderRejectedError).status).toBe(401);
    await expect(bad.list('p1')).rejects.toBeInstanceOf(ProviderRejectedError);
    await expect(bad.destroy(ctx('p1', 'x'), 'abc')).rejects.toBeInstanceOf(ProviderRejectedError);
    expectNoSecrets(seen, [wrongKey, standin.managementKey]);
    expect(standin.inventory.list()).toHaveLength(0);
  });

  it('under random faults: every instance ends with exactly its key, then none; no secret in any error', async () => {
    await standin.close();
    standin = await startOpenRouterStandin();
    keys = new OpenRouterKeys({
      managementKey: standin.managementKey,
      monthlyLimitUsd: 5,
      baseUrl: standin.baseUrl,
      timeoutMs: TIMEOUT_MS,
    });
    standin.faults.set({ rate: 0.2, seed: 7, kinds: ['5xx', '429', 'timeout', 'lost'] });
    const seen: unknown[] = [];
    const created = new Map<string, { ref: string; secret: string }>();
    const instances = Array.from({ length: 6 }, (_, i) => ctx('chaos', `c-${i}`));
    await Promise.all(
      instances.map(async (c) => {
        const r = await retrying(() => keys.create(c), seen, 30);
        created.set(c.name, { ref: r.ref, secret: r.secret?.value ?? '' });
      }),
    );
    standin.faults.clear();
    for (const c of instances) {
      expect(standin.keysNamed(c.name).map((k) => [k.hash, k.key])).toEqual([
        [created.get(c.name)?.ref, created.get(c.name)?.secret],
      ]);
    }
    expect((await keys.list('chaos')).length).toBe(instances.length);

    standin.faults.set({ rate: 0.2, seed: 11, kinds: ['5xx', '429', 'timeout', 'lost'] });
    await Promise.all(
      instances.map((c) => retrying(() => keys.destroy(c, created.get(c.name)?.ref ?? null), seen, 30)),
    );
    standin.faults.clear();
    expect(standin.inventory.list()).toHaveLength(0);
    expect(standin.faults.injected.length).toBeGreaterThan(0);
    expectNoSecrets(seen, [standin.managementKey, ...[...created.values()].map((v) => v.secret)]);
  });
});
