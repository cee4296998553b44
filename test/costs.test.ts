/**
 * What the fleet costs, through the API against the provider stand-ins (OpenRouter, AgentMail, Telnyx over
 * their real wire formats): the instance detail's LLM key usage (read from OpenRouter's key endpoint, kept
 * ~60 s, shown as unavailable with why when OpenRouter fails, never a 5xx), raising the cap (seen at once),
 * and the fleet totals of `GET /api/pool/costs` (credits left, keys/inboxes/numbers in use and pooled).
 */
import { randomUUID } from 'node:crypto';
import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentMailInboxes } from '../activities/providers/agentmail';
import { OpenRouterKeys } from '../activities/providers/openrouter';
import { TelnyxNumbers } from '../activities/providers/telnyx';
import { LLM_USAGE_DEADLINE_MS } from '../api/llm-usage';
import { instanceResources } from '../drizzle/schema';
import { recordSecrets, type Stack, startStack } from './stack';
import { type AgentMailStandin, startAgentMailStandin } from './standins/agentmail-standin';
import { type OpenRouterStandin, startOpenRouterStandin } from './standins/openrouter-standin';
import { startTelnyxStandin, type TelnyxStandin } from './standins/telnyx-standin';
import { type ClaimBody, newKey, shared } from './support/helpers';

let openrouter: OpenRouterStandin;
let agentmail: AgentMailStandin;
let telnyx: TelnyxStandin;
let stack: Stack;

interface Usage {
  available: boolean;
  usageUsd?: number;
  limitUsd?: number | null;
  remainingUsd?: number | null;
  limitReset?: string | null;
  disabled?: boolean;
  fetchedAt?: string;
  reason?: string;
}
interface Held {
  inUse: number;
  pooled: number;
  other: number;
}
interface Costs {
  credits: (Usage & { totalUsd?: number; usedUsd?: number }) | null;
  keys: Held;
  inboxes: Held;
  numbers: Held & { spare: number };
}

async function api<T>(method: string, url: string, body?: unknown, headers?: Record<string, string>) {
  const res = await stack.api(method, url, body, headers);
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : null) as T, text };
}

const keyReads = () => openrouter.requests.filter((r) => r.startsWith('GET /api/v1/keys/')).length;

async function llmKeyOf(id: string): Promise<string> {
  const [row] = await stack.database.db
    .select()
    .from(instanceResources)
    .where(and(eq(instanceResources.instanceId, id), eq(instanceResources.kind, 'llmKey')));
  if (!row) throw new Error(`instance ${id} has no LLM key`);
  return row.ref;
}

async function idleIds(): Promise<string[]> {
  const { body } = await api<{ idle: Array<{ id: string }> }>('GET', '/api/pool/agents');
  return body.idle.map((a) => a.id);
}

let claimed: string;

beforeAll(async () => {
  openrouter = await startOpenRouterStandin({ totalCredits: 100 });
  agentmail = await startAgentMailStandin();
  telnyx = await startTelnyxStandin({
    stock: Array.from({ length: 20 }, (_, i) => `+1555${String(2_000_000 + i).slice(1)}`),
  });
  recordSecrets(openrouter.managementKey, agentmail.apiKey, telnyx.apiKey);
  // A fresh database: the reusable number pool is global, other suites must not see ours.
  const { databaseUrl: _shared, ...rest } = shared();
  stack = await startStack({
    ...rest,
    targetIdle: 2,
    maxTotal: 10,
    resourcesFor: (db) => ({
      enabled: {
        // A long client timeout: the API's own deadline on usage reads is what a hanging OpenRouter meets.
        llmKey: new OpenRouterKeys({
          managementKey: openrouter.managementKey,
          monthlyLimitUsd: 5,
          baseUrl: openrouter.baseUrl,
          timeoutMs: 20_000,
        }),
        inbox: new AgentMailInboxes({ apiKey: agentmail.apiKey, baseUrl: agentmail.baseUrl }),
        phone: new TelnyxNumbers({
          apiKey: telnyx.apiKey,
          messagingProfileId: 'mp-standin',
          db,
          maxPooledNumbers: 3,
          baseUrl: telnyx.baseUrl,
          orderPollMs: 100,
        }),
      },
      disabled: [],
    }),
  });
  await stack.waitFor('two idle instances', async () => (await stack.counts()).idle >= 2, 90_000);
  const claim = await api<ClaimBody>(
    'POST',
    '/api/pool/claim',
    { agentName: 'Spender' },
    {
      'idempotency-key': newKey('costs'),
    },
  );
  expect(claim.status).toBe(200);
  claimed = claim.body.instanceId;
  // The pool refills behind the claim: two idle again, one claimed.
  await stack.waitFor(
    'the pool refilled',
    async () => {
      const c = await stack.counts();
      return c.idle === 2 && c.claimed === 1 && c.starting === 0;
    },
    90_000,
  );
}, 240_000);

afterAll(async () => {
  await stack?.stop();
  await Promise.all([openrouter?.close(), agentmail?.close(), telnyx?.close()]);
});

describe('LLM key usage on the instance detail', () => {
  it("shows what the instance's key spent against its cap, and keeps it ~60 s", async () => {
    const ref = await llmKeyOf(claimed);
    openrouter.inventory.items.get(ref)!.usage = 1.25;
    const reads = keyReads();
    const first = await api<{ usage: Usage }>('GET', `/api/pool/instances/${claimed}`);
    expect(first.status).toBe(200);
    expect(first.body.usage).toMatchObject({
      available: true,
      usageUsd: 1.25,
      limitUsd: 5,
      remainingUsd: 3.75,
      limitReset: 'monthly',
      disabled: false,
    });
    expect(keyReads()).toBe(reads + 1);
    // Spent more meanwhile: the kept answer is shown, OpenRouter is not asked again.
    openrouter.inventory.items.get(ref)!.usage = 2;
    const second = await api<{ usage: Usage }>('GET', `/api/pool/instances/${claimed}`);
    expect(second.body.usage).toEqual(first.body.usage);
    expect(keyReads()).toBe(reads + 1);
    // Nothing of the key itself is in the answer.
    expect(first.text).not.toContain(openrouter.inventory.items.get(ref)!.key);
  });

  it('raising the cap shows the new cap at once', async () => {
    const raised = await api('PUT', `/api/pool/instances/${claimed}/llm-limit`, { monthlyLimitUsd: 12 });
    expect(raised).toMatchObject({ status: 200, body: { instanceId: claimed, monthlyLimitUsd: 12 } });
    const after = await api<{ usage: Usage }>('GET', `/api/pool/instances/${claimed}`);
    expect(after.body.usage).toMatchObject({ available: true, usageUsd: 2, limitUsd: 12, remainingUsd: 10 });
  });

  it('answers 200 with the usage unavailable and why when OpenRouter fails, and reads it again next time', async () => {
    const [a, b] = await idleIds();
    expect(b).toBeDefined();
    openrouter.faults.failNext(/^GET \/api\/v1\/keys\//, '5xx');
    const down = await api<{ usage: Usage; status: string }>('GET', `/api/pool/instances/${a}`);
    expect(down.status).toBe(200);
    expect(down.body.status).toBe('idle');
    expect(down.body.usage).toEqual({ available: false, reason: 'the LLM key provider answered 503' });

    openrouter.faults.failNext(/^GET \/api\/v1\/keys\//, '429');
    const limited = await api<{ usage: Usage }>('GET', `/api/pool/instances/${b}`);
    expect(limited.status).toBe(200);
    expect(limited.body.usage?.reason).toMatch(/rate limiting \(429/);

    // A hanging OpenRouter: the detail answers after the API's deadline, not the client's 20 s timeout.
    // (The failure seen for `a` above was not kept: this is a new read.)
    openrouter.faults.failNext(/^GET \/api\/v1\/keys\//, 'timeout');
    const started = Date.now();
    const hung = await api<{ usage: Usage }>('GET', `/api/pool/instances/${a}`);
    expect(hung.status).toBe(200);
    expect(hung.body.usage).toEqual({
      available: false,
      reason: `the LLM key provider did not answer within ${LLM_USAGE_DEADLINE_MS} ms`,
    });
    expect(Date.now() - started).toBeLessThan(LLM_USAGE_DEADLINE_MS + 2_000);

    // A failure is not kept: the next look reads OpenRouter again and shows the usage.
    const back = await api<{ usage: Usage }>('GET', `/api/pool/instances/${a}`);
    expect(back.body.usage).toMatchObject({ available: true, usageUsd: 0, limitUsd: 5 });
  });

  it('refuses hostile ids with a 4xx and never passes them to OpenRouter', async () => {
    const before = openrouter.requests.length;
    for (const id of [
      '..%2F..%2Fcredits',
      '%2E%2E',
      'a%00b',
      'x'.repeat(65),
      '%E2%80%AEevil',
      'id%20with%20space',
      "1'%20or%201=1",
    ]) {
      const detail = await api('GET', `/api/pool/instances/${id}`);
      expect(detail.status, id).toBeGreaterThanOrEqual(400);
      expect(detail.status, id).toBeLessThan(500);
      const raise = await api('PUT', `/api/pool/instances/${id}/llm-limit`, { monthlyLimitUsd: 5 });
      expect(raise.status, id).toBeGreaterThanOrEqual(400);
      expect(raise.status, id).toBeLessThan(500);
    }
    expect((await api('GET', `/api/pool/instances/${randomUUID()}`)).status).toBe(404);
    for (const body of [{ monthlyLimitUsd: '12' }, { monthlyLimitUsd: 0 }, { monthlyLimitUsd: 1e9 }, {}]) {
      expect((await api('PUT', `/api/pool/instances/${claimed}/llm-limit`, body)).status).toBe(400);
    }
    expect(openrouter.requests.slice(before)).toEqual([]);
    expect(openrouter.inventory.items.get(await llmKeyOf(claimed))?.limit).toBe(12);
  });
});

describe('fleet totals', () => {
  it('counts keys, inboxes and numbers in use and pooled, and the credits left; OpenRouter down → still 200', async () => {
    const held = { inUse: 1, pooled: 2, other: 0 };
    openrouter.faults.failNext(/^GET \/api\/v1\/credits$/, '5xx');
    const down = await api<Costs>('GET', '/api/pool/costs');
    expect(down.status).toBe(200);
    expect(down.body).toEqual({
      credits: { available: false, reason: 'the LLM key provider answered 503' },
      keys: held,
      inboxes: held,
      numbers: { ...held, spare: 0 },
    });

    const costs = await api<Costs>('GET', '/api/pool/costs');
    expect(costs.status).toBe(200);
    expect(costs.body).toMatchObject({ keys: held, inboxes: held, numbers: { ...held, spare: 0 } });
    // Bought 100; the claimed key spent 2.
    expect(costs.body.credits).toMatchObject({
      available: true,
      totalUsd: 100,
      usedUsd: 2,
      remainingUsd: 98,
    });
    // Kept: OpenRouter answered once.
    await api('GET', '/api/pool/costs');
    expect(openrouter.requests.filter((r) => r === 'GET /api/v1/credits')).toHaveLength(1);
    expect((await fetch(`${stack.apiUrl}/api/pool/costs`)).status).toBe(401);
  });
});
