/**
 * Joins that are tracked, on the real stack with the runtime stand-in: a claim that joins a conversation
 * (`joinUrl`) whose creator has not let the agent in yet is `pending_acceptance` — in the claim's answer, the
 * API, the read model, the `InstanceStatus` search attribute and the audit trail — until the runtime reports
 * the acceptance (`POST /api/pool/self/conversation`, with the instance's token): then `claimed` with the
 * conversation id. A join never accepted is destroyed after INSTANCE_JOIN_ACCEPT_TIMEOUT_MS, and the claim's
 * caller reads why in the instance's detail.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { asc, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SecretStore, secretKeyFromBase64 } from '../activities/secret-store';
import { INSTANCE_TOKEN } from '../contracts/secrets';
import { instanceEvents, instances } from '../drizzle/schema';
import { createInvite, generateInviteTag } from '../runtime/src/invite/index';
import { type Stack, startStack } from './stack';
import { type ClaimBody, type ErrorBody, json, newKey, shared } from './support/helpers';

const TIMEOUT_MS = 6_000;
let stack: Stack;
beforeAll(async () => {
  stack = await startStack(
    shared({
      targetIdle: 2,
      maxTotal: 8,
      xmtpEnv: 'dev',
      timings: { joinAcceptTimeoutMs: TIMEOUT_MS },
      // The conversation's creator is away: every join answers waiting_for_acceptance.
      faults: { joinWaitsForAcceptance: true },
    }),
  );
  await stack.waitFor('2 idle', async () => (await stack.counts()).idle === 2);
});
afterAll(() => stack?.stop());

const joinUrl = () =>
  createInvite({
    conversationId: randomUUID(),
    creatorInboxId: randomBytes(32).toString('hex'),
    walletPrivateKey: randomBytes(32),
    tag: generateInviteTag(),
    env: 'dev',
    name: 'Somebody’s group',
  }).url;

async function claimJoin(name: string): Promise<ClaimBody> {
  await stack.waitFor('an idle instance', async () => (await stack.counts()).idle > 0);
  const res = await stack.api(
    'POST',
    '/api/pool/claim',
    { agentName: name, joinUrl: joinUrl() },
    { 'idempotency-key': newKey(name) },
  );
  expect(res.status).toBe(200);
  return json<ClaimBody>(res);
}

const row = async (id: string) =>
  (await stack.database.db.select().from(instances).where(eq(instances.id, id)))[0];
const detail = async (id: string) =>
  json<{ status: string; conversationId: string | null; lastError: string | null }>(
    await stack.api('GET', `/api/pool/instances/${id}`),
  );
const eventsOf = (id: string) =>
  stack.database.db
    .select()
    .from(instanceEvents)
    .where(eq(instanceEvents.instanceId, id))
    .orderBy(asc(instanceEvents.id));
const inSearch = async (id: string, status: string) => {
  for await (const w of stack.temporal.workflow.list({
    query: `WorkflowId = 'instance-${id}' AND InstanceStatus = '${status}'`,
  }))
    if (w) return true;
  return false;
};

function report(credentials: string | null, body: unknown) {
  return fetch(`${stack.apiUrl}/api/pool/self/conversation`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(credentials ? { authorization: `Bearer ${credentials}` } : {}),
    },
    body: JSON.stringify(body),
  });
}

describe('a join waiting for acceptance', () => {
  it('is pending_acceptance everywhere, then claimed with the conversation id once the runtime reports it', async () => {
    const claimed = await claimJoin('Patient');
    expect(claimed).toMatchObject({ status: 'waiting_for_acceptance', joined: false, conversationId: null });
    const id = claimed.instanceId;
    await stack.waitFor(
      'pending_acceptance in the read model',
      async () => (await row(id))?.status === 'pending_acceptance',
    );
    expect((await detail(id)).status).toBe('pending_acceptance');
    expect(
      (await json<Record<string, unknown[]>>(await stack.api('GET', '/api/pool/agents'))).pending_acceptance,
    ).toContainEqual(expect.objectContaining({ id, status: 'pending_acceptance' }));
    expect((await stack.counts()).pending_acceptance).toBeGreaterThanOrEqual(1);
    await stack.waitFor('the search attribute', () => inSearch(id, 'pending_acceptance'));
    expect(await eventsOf(id)).toContainEqual(
      expect.objectContaining({
        fromStatus: 'claiming',
        toStatus: 'pending_acceptance',
        reason: 'provisioned: waiting for the conversation to accept the join',
      }),
    );

    // Hostile or wrong reports change nothing.
    const secrets = new SecretStore(stack.database.db, secretKeyFromBase64(stack.secretsKey));
    const credentials = `${id}:${(await secrets.get(id, INSTANCE_TOKEN))!}`;
    const good = { requestId: 'x', conversationId: 'abcdef0123456789abcdef0123456789' };
    expect((await report(null, good)).status).toBe(401);
    expect((await report(`${id}:not-the-token`, good)).status).toBe(403);
    for (const bad of [
      {},
      { ...good, conversationId: 'not hex!' },
      { ...good, extra: 1 },
      { ...good, requestId: '' },
    ]) {
      const res = await report(credentials, bad);
      expect(res.status, JSON.stringify(bad)).toBe(400);
      expect((await json<ErrorBody>(res)).code).toBeTruthy();
    }
    // Another claim's report is ignored by the workflow.
    expect((await report(credentials, good)).status).toBe(202);
    await new Promise((r) => setTimeout(r, 500));
    expect((await row(id))?.status).toBe('pending_acceptance');

    // The creator lets the agent in; the runtime (stand-in) reports it with its own token.
    const accepted = await stack.compute.acceptJoin(id, stack.apiUrl);
    expect(accepted.poolStatus).toBe(202);
    await stack.waitFor('claimed', async () => (await row(id))?.status === 'claimed');
    expect(await row(id)).toMatchObject({ conversationId: accepted.conversationId, joined: 1 });
    expect(await detail(id)).toMatchObject({ status: 'claimed', conversationId: accepted.conversationId });
    await stack.waitFor('the search attribute', () => inSearch(id, 'claimed'));
    expect(await eventsOf(id)).toContainEqual(
      expect.objectContaining({
        fromStatus: 'pending_acceptance',
        toStatus: 'claimed',
        actor: 'instance',
        reason: 'the conversation accepted the join',
      }),
    );
    // A repeat of the report (the runtime retried) is taken as such; it is still claimed past the timeout.
    const repeat = { requestId: 'ignored', conversationId: accepted.conversationId };
    expect((await report(credentials, repeat)).status).toBe(202);
    await new Promise((r) => setTimeout(r, TIMEOUT_MS + 500));
    expect((await row(id))?.status).toBe('claimed');
  });

  it('never accepted: destroyed after the timeout, and the claim’s caller reads why', async () => {
    const claimed = await claimJoin('Forgotten');
    const id = claimed.instanceId;
    await stack.waitFor('pending_acceptance', async () => (await row(id))?.status === 'pending_acceptance');
    await stack.waitFor(
      'destroyed',
      async () => (await row(id))?.status === 'destroyed',
      TIMEOUT_MS + 20_000,
    );
    const why = `the join was not accepted within ${TIMEOUT_MS} ms`;
    expect(await detail(id)).toMatchObject({ status: 'destroyed', lastError: why });
    expect(await eventsOf(id)).toContainEqual(
      expect.objectContaining({ fromStatus: 'pending_acceptance', toStatus: 'destroying', reason: why }),
    );
    expect((await stack.compute.inventory()).some((i) => i.id === id)).toBe(false);
    // A report that comes too late is refused.
    const late = await report(`${id}:whatever`, { requestId: 'k', conversationId: 'abcdef0123456789' });
    expect([403, 409]).toContain(late.status);
  });
});
