/**
 * The instance lifecycle with every per-instance provider enabled (wallet, OpenRouter, AgentMail, Telnyx),
 * each adapter talking to its stand-in over the real wire format, with faults injected:
 *   - 50 instances started and destroyed with 20 % of provider calls failing (5xx, 429 + Retry-After,
 *     timeouts, lost responses): every stand-in ends empty, nothing was ever created twice;
 *   - a start that fails at each step in turn leaves nothing behind;
 *   - the sweeper finds and releases planted orphans, and only those;
 *   - no secret the providers issued appears in an API response (histories and logs: test/post-run).
 */
import { randomUUID } from 'node:crypto';
import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentMailInboxes } from '../activities/providers/agentmail';
import { OpenRouterKeys } from '../activities/providers/openrouter';
import { TelnyxNumbers } from '../activities/providers/telnyx';
import { type ResourceProvider, resourceName } from '../activities/providers/types';
import { WalletKeys } from '../activities/providers/wallet';
import type { ResourceProviders } from '../activities/resources';
import { SecretStore, secretKeyFromBase64 } from '../activities/secret-store';
import { INSTANCE_TOKEN } from '../contracts/secrets';
import { instanceEvents, instanceResources, instances, phoneNumbers } from '../drizzle/schema';
import { recordSecrets, type Stack, startStack } from './stack';
import { type AgentMailStandin, startAgentMailStandin } from './standins/agentmail-standin';
import { type OpenRouterStandin, startOpenRouterStandin } from './standins/openrouter-standin';
import { startTelnyxStandin, type TelnyxStandin } from './standins/telnyx-standin';
import { type ClaimBody, newKey, shared } from './support/helpers';

const MAX_POOLED_NUMBERS = 3;

let openrouter: OpenRouterStandin;
let agentmail: AgentMailStandin;
let telnyx: TelnyxStandin;
let stack: Stack;
/** Every response body the API gave this test, scanned for provider secrets at the end. */
const responses: string[] = [];

/** Records every secret an adapter hands out, for the scans (here and in test/post-run). */
function recording<P extends ResourceProvider>(provider: P): P {
  const create = provider.create.bind(provider);
  provider.create = async (ctx) => {
    const created = await create(ctx);
    if (created.secret) {
      issued.push(created.secret.value);
      recordSecrets(created.secret.value);
    }
    return created;
  };
  return provider;
}
const issued: string[] = [];

function buildResources(db: Stack['database']['db']): ResourceProviders {
  const timeoutMs = 1500;
  return {
    enabled: {
      wallet: recording(new WalletKeys()),
      llmKey: recording(
        new OpenRouterKeys({
          managementKey: openrouter.managementKey,
          monthlyLimitUsd: 5,
          baseUrl: openrouter.baseUrl,
          timeoutMs,
        }),
      ),
      inbox: recording(
        new AgentMailInboxes({ apiKey: agentmail.apiKey, baseUrl: agentmail.baseUrl, timeoutMs }),
      ),
      phone: recording(
        new TelnyxNumbers({
          apiKey: telnyx.apiKey,
          messagingProfileId: 'mp-standin',
          db,
          maxPooledNumbers: MAX_POOLED_NUMBERS,
          baseUrl: telnyx.baseUrl,
          timeoutMs,
          orderPollMs: 100,
        }),
      ),
    },
    disabled: [],
  };
}

async function api(method: string, url: string, body?: unknown, headers?: Record<string, string>) {
  const res = await stack.api(method, url, body, headers);
  const text = await res.text();
  responses.push(text);
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

const liveCount = async () => {
  const c = await stack.counts();
  return c.starting + c.idle + c.claiming + c.claimed + c.crashed + c.destroying + c.failed;
};

/** What the providers still hold that is not in our reusable number pool. */
async function leftovers() {
  const pooled = new Set(
    (await stack.database.db.select().from(phoneNumbers).where(eq(phoneNumbers.status, 'available'))).map(
      (r) => r.phoneNumber,
    ),
  );
  return {
    keys: openrouter.inventory.list().map((k) => k.name),
    inboxes: agentmail.inventory.list().map((i) => i.inbox_id),
    numbers: telnyx.inventory
      .list()
      .map((n) => n.phone_number)
      .filter((n) => !pooled.has(n)),
    pooled: pooled.size,
  };
}

beforeAll(async () => {
  openrouter = await startOpenRouterStandin();
  agentmail = await startAgentMailStandin();
  telnyx = await startTelnyxStandin({
    stock: Array.from({ length: 400 }, (_, i) => `+1555${String(1_000_000 + i).slice(1)}`),
  });
  recordSecrets(openrouter.managementKey, agentmail.apiKey, telnyx.apiKey);
  // A fresh database: the reusable number pool is global, other suites must not see ours.
  const { databaseUrl: _shared, ...rest } = shared();
  let resources: ResourceProviders | undefined;
  stack = await startStack({
    ...rest,
    targetIdle: 0,
    maxTotal: 80,
    // Starts under 20 % faults on a busy two-core machine take a while: keep the deadline out of the way.
    // 10 attempts: at 20 % faults per call, a release of several calls must not run out of retries by chance.
    timings: { healthIntervalMs: 1000, stepMaxAttempts: 10, startDeadlineMs: 180_000 },
    // Built once the stack's database exists (Telnyx keeps its number pool there).
    resourcesFor: (db) => {
      resources = buildResources(db);
      return resources;
    },
  });
  expect(resources).toBeDefined();
});

afterAll(async () => {
  await stack?.stop();
  await Promise.all([openrouter?.close(), agentmail?.close(), telnyx?.close()]);
});

describe('providers under faults', () => {
  it('starts and destroys 50 instances with 20 % of provider calls failing: nothing leaks, nothing twice', async () => {
    for (const [i, standin] of [openrouter, agentmail, telnyx].entries()) {
      standin.faults.set({ rate: 0.2, seed: 4242 + i });
    }
    expect((await api('PUT', '/api/pool/target', { targetIdle: 50, maxTotal: 80 })).status).toBe(200);
    const t0 = Date.now();
    await stack.waitFor('50 idle', async () => (await stack.counts()).idle >= 50, 300_000);
    console.log(`50 idle under faults in ${Date.now() - t0} ms`);

    // Every idle instance holds exactly its four resources, each recorded once.
    const active = await stack.database.db
      .select()
      .from(instanceResources)
      .where(eq(instanceResources.status, 'active'));
    const idleIds = (
      await stack.database.db.select().from(instances).where(eq(instances.status, 'idle'))
    ).map((r) => r.id);
    for (const id of idleIds) {
      expect(
        active
          .filter((r) => r.instanceId === id)
          .map((r) => r.kind)
          .sort(),
      ).toEqual(['compute', 'inbox', 'llmKey', 'phone', 'wallet']);
    }
    expect(openrouter.inventory.list().length).toBeGreaterThanOrEqual(50);

    // Claim a few (they keep their resources), then take everything down.
    const claimed: ClaimBody[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await api(
        'POST',
        '/api/pool/claim',
        { agentName: `Agent ${i}` },
        { 'idempotency-key': newKey('p') },
      );
      expect(res.status).toBe(200);
      claimed.push(res.body as ClaimBody);
    }
    expect((await api('PUT', '/api/pool/target', { targetIdle: 0 })).status).toBe(200);
    for (;;) {
      const res = await api('POST', '/api/pool/drain', { count: 20 });
      if ((res.body as { draining: string[] }).draining.length === 0) break;
    }
    for (const c of claimed)
      expect((await api('DELETE', `/api/pool/instances/${c.instanceId}`)).status).toBe(202);
    const t1 = Date.now();
    await stack.waitFor('every instance destroyed', async () => (await liveCount()) === 0, 300_000);
    console.log(`all destroyed under faults in ${Date.now() - t1} ms`);
    for (const s of [openrouter, agentmail, telnyx]) s.faults.clear();

    // Faults did happen, of every kind, and on both creates and deletes.
    const injected = [openrouter, agentmail, telnyx].flatMap((s) => s.faults.injected);
    expect(new Set(injected.map((f) => f.kind))).toEqual(new Set(['5xx', '429', 'timeout', 'lost']));
    expect(injected.some((f) => f.request.startsWith('DELETE'))).toBe(true);

    const left = await leftovers();
    expect(left).toEqual({ keys: [], inboxes: [], numbers: [], pooled: MAX_POOLED_NUMBERS });
    // Never two of anything: a lost create was adopted on retry, not repeated.
    expect(agentmail.inventory.duplicates()).toEqual([]);
    expect(telnyx.inventory.duplicates()).toEqual([]);
    expect(openrouter.maxLiveNamed()).toBe(1);
    // Nobody needed a human.
    const failed = await stack.database.db.select().from(instances).where(eq(instances.status, 'failed'));
    expect(failed).toEqual([]);
    const stillActive = await stack.database.db
      .select()
      .from(instanceResources)
      .where(eq(instanceResources.status, 'active'));
    expect(stillActive).toEqual([]);
  }, 600_000);
});

describe('a start that fails at each step', () => {
  const steps = [
    // The provider refuses the create (a validation error): the start fails at once and is compensated.
    { kind: 'llmKey', fail: () => openrouter.faults.failNext(/^POST \/api\/v1\/keys$/, 'reject') },
    { kind: 'inbox', fail: () => agentmail.faults.failNext(/^POST \/v0\/inboxes$/, 'reject') },
    // Every attempt of the phone step starts by looking up numbers already bought under the instance's name.
    { kind: 'phone', fail: () => telnyx.faults.failNext(/^GET \/v2\/phone_numbers$/, 'reject') },
    { kind: 'compute', fail: () => (stack.compute.createRejections = 1) },
  ];
  for (const step of steps) {
    it(`leaves nothing behind when the ${step.kind} step fails for good`, async () => {
      expect((await api('PUT', '/api/pool/target', { targetIdle: 0 })).status).toBe(200);
      await stack.waitFor('quiet pool', async () => (await liveCount()) === 0, 60_000);
      step.fail();
      const started = await api('POST', '/api/pool/replenish', { count: 1 });
      expect(started.status).toBe(202);
      const [id] = (started.body as { started: string[] }).started;
      expect(id).toBeDefined();
      await stack.waitFor(
        `${id} destroyed`,
        async () =>
          (await stack.database.db.select().from(instances).where(eq(instances.id, id!)))[0]?.status ===
          'destroyed',
        90_000,
      );
      const row = (await stack.database.db.select().from(instances).where(eq(instances.id, id!)))[0]!;
      expect(row.lastError).toMatch(/start failed/);
      const resources = await stack.database.db
        .select()
        .from(instanceResources)
        .where(eq(instanceResources.instanceId, id!));
      expect(resources.filter((r) => r.status === 'active')).toEqual([]);
      const name = resourceName(stack.poolName, id!);
      expect(openrouter.keysNamed(name)).toEqual([]);
      expect(agentmail.inventory.list().filter((i) => i.name === name)).toEqual([]);
      expect((await leftovers()).numbers).toEqual([]);
      // The steps before the failing one did run (and were compensated).
      const order = ['wallet', 'llmKey', 'inbox', 'phone', 'compute'];
      const before = order.slice(0, order.indexOf(step.kind));
      expect(
        resources
          .map((r) => r.kind)
          .filter((k) => before.includes(k))
          .sort(),
      ).toEqual([...before].sort());
      expect(resources.filter((r) => before.includes(r.kind)).every((r) => r.status === 'released')).toBe(
        true,
      );
    }, 240_000);
  }
});

describe('the sweeper', () => {
  it('releases planted orphans of this pool and nothing else', async () => {
    expect((await api('PUT', '/api/pool/target', { targetIdle: 1 })).status).toBe(200);
    await stack.waitFor('1 idle', async () => (await stack.counts()).idle === 1, 60_000);
    const [live] = await stack.database.db.select().from(instances).where(eq(instances.status, 'idle'));

    // Orphans: resources created for instances that never had (or no longer have) a workflow.
    const resources = stack.resources!.enabled;
    const orphan = randomUUID();
    const ctx = {
      instanceId: orphan,
      poolName: stack.poolName,
      name: resourceName(stack.poolName, orphan),
      idempotencyKey: `instance-${orphan}:plant`,
    };
    await resources.llmKey!.create(ctx);
    await resources.inbox!.create(ctx);
    await resources.phone!.create(ctx);
    await stack.compute.create({
      instanceId: orphan,
      poolName: stack.poolName,
      env: { INSTANCE_TOKEN: 'orphan-token-0123456789' },
    });
    // Ours: the orphan's read-model row exists (every instance writes one before creating anything).
    await stack.database.db
      .insert(instances)
      .values({ id: orphan, pool: stack.poolName, status: 'starting', provider: 'standin' });
    // Not ours: a resource named like this pool's that this deployment never recorded.
    const stranger = randomUUID();
    const strangerCtx = { ...ctx, instanceId: stranger, name: resourceName(stack.poolName, stranger) };
    await resources.inbox!.create(strangerCtx);
    // Another pool's resource with the same shape: not ours to touch.
    const foreign = { ...ctx, poolName: 'elsewhere', name: resourceName('elsewhere', orphan) };
    await resources.inbox!.create(foreign);

    expect((await api('POST', '/api/pool/reconcile')).status).toBe(202);
    await stack.waitFor(
      'orphans released',
      async () =>
        openrouter.keysNamed(ctx.name).length === 0 &&
        !agentmail.inventory.list().some((i) => i.name === ctx.name) &&
        !(await stack.compute.list()).includes(orphan),
      60_000,
    );
    await stack.waitFor('orphan number returned', async () => {
      const [row] = await stack.database.db
        .select()
        .from(phoneNumbers)
        .where(and(eq(phoneNumbers.instanceId, orphan), eq(phoneNumbers.status, 'assigned')));
      return row === undefined;
    });
    // The foreign and the stranger's inboxes and the live instance's resources are untouched.
    expect(agentmail.inventory.list().some((i) => i.name === foreign.name)).toBe(true);
    expect(agentmail.inventory.list().some((i) => i.name === strangerCtx.name)).toBe(true);
    expect(openrouter.keysNamed(resourceName(stack.poolName, live!.id))).toHaveLength(1);
    // Each release is audited right after it: wait for all three rather than race the last one.
    await stack.waitFor('the sweep audited', async () => {
      const reasons = (
        await stack.database.db
          .select()
          .from(instanceEvents)
          .where(and(eq(instanceEvents.instanceId, orphan), eq(instanceEvents.actor, 'reconcile')))
      ).map((e) => e.reason);
      return ['openrouter llmKey', 'agentmail inbox', 'telnyx phone'].every((what) =>
        reasons.some((r) => r.startsWith(`released orphaned ${what}`)),
      );
    });
    await resources.inbox!.destroy(foreign, null);
    await resources.inbox!.destroy(strangerCtx, null);
  }, 180_000);
});

describe('a claimed instance', () => {
  it('sends email and SMS from its own inbox and number through the pool, and operators raise its LLM cap', async () => {
    const claim = await api(
      'POST',
      '/api/pool/claim',
      // The claimant allows the two recipients the agent sends to below (others would be refused).
      { agentName: 'Courier', allowedRecipients: { email: ['friend@example.com'], sms: ['+14155550123'] } },
      { 'idempotency-key': newKey('c') },
    );
    expect(claim.status).toBe(200);
    const id = (claim.body as ClaimBody).instanceId;
    const rows = await stack.database.db
      .select()
      .from(instanceResources)
      .where(and(eq(instanceResources.instanceId, id), eq(instanceResources.status, 'active')));
    const inbox = rows.find((r) => r.kind === 'inbox')!;
    const phone = rows.find((r) => r.kind === 'phone')!;
    const llmKey = rows.find((r) => r.kind === 'llmKey')!;
    const secrets = new SecretStore(stack.database.db, secretKeyFromBase64(stack.secretsKey));
    const auth = { authorization: `Bearer ${id}:${await secrets.get(id, INSTANCE_TOKEN)}` };

    const email = await fetch(`${stack.apiUrl}/api/pool/self/email`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ to: 'friend@example.com', subject: 'Hello', text: 'From your agent.' }),
    });
    responses.push(await email.clone().text());
    expect(email.status).toBe(202);
    expect(agentmail.sent.at(-1)).toMatchObject({ inboxId: inbox.ref, to: ['friend@example.com'] });

    const sms = await fetch(`${stack.apiUrl}/api/pool/self/sms`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ to: '+14155550123', text: 'From your agent.' }),
    });
    responses.push(await sms.clone().text());
    expect(sms.status).toBe(202);
    const number = (phone.metadata as { facts: { phoneNumber: string } }).facts.phoneNumber;
    expect(telnyx.messages.at(-1)).toMatchObject({ from: number, to: '+14155550123' });

    const raised = await api('PUT', `/api/pool/instances/${id}/llm-limit`, { monthlyLimitUsd: 25 });
    expect(raised).toEqual({ status: 200, body: { instanceId: id, monthlyLimitUsd: 25 } });
    expect(openrouter.inventory.items.get(llmKey.ref)?.limit).toBe(25);
    expect((await api('PUT', `/api/pool/instances/${id}/llm-limit`, { monthlyLimitUsd: -1 })).status).toBe(
      400,
    );
    expect(
      (await api('PUT', `/api/pool/instances/${randomUUID()}/llm-limit`, { monthlyLimitUsd: 5 })).status,
    ).toBe(404);
  }, 120_000);
});

describe('secrets', () => {
  it('never appear in an API response', async () => {
    await stack.waitFor('an idle instance', async () => (await stack.counts()).idle >= 1, 60_000);
    const [live] = await stack.database.db.select().from(instances).where(eq(instances.status, 'idle'));
    const detail = await api('GET', `/api/pool/instances/${live!.id}`);
    expect(detail.status).toBe(200);
    const kinds = (detail.body as { resources: Array<{ kind: string; status: string }> }).resources
      .filter((r) => r.status === 'active')
      .map((r) => r.kind)
      .sort();
    expect(kinds).toEqual(['compute', 'inbox', 'llmKey', 'phone', 'wallet']);
    responses.push(JSON.stringify(await (await stack.api('GET', '/api/pool/agents')).json()));
    expect(issued.length).toBeGreaterThan(100);
    const leaks = issued.filter((secret) => responses.some((r) => r.includes(secret)));
    expect(leaks).toEqual([]);
  });
});
