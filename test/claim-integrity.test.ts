/**
 * Claims that survive everything and keep their bearer links secret: the same Idempotency-Key never binds a
 * second instance, also after the instance continued as new and the ledger lost its outcome; invite and join
 * URLs stay out of workflow histories and list responses, and only the claim response and the operator's
 * instance detail carry them.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { claims, instances } from '../drizzle/schema';
import { createInvite, generateInviteTag } from '../runtime/src/invite/index';
import { getStateQuery, healthChangedSignal } from '../workflows/messages';
import { type Stack, startStack } from './stack';
import { type ClaimBody, json, newKey, shared } from './support/helpers';

let stack: Stack;
beforeAll(async () => {
  // XMTP "dev": claims answer invite links and may join by one. Short histories: instances continue as new
  // after a few signals.
  stack = await startStack(
    shared({ targetIdle: 2, maxTotal: 8, xmtpEnv: 'dev', timings: { maxHistoryEvents: 40 } }),
  );
  await stack.waitFor('2 idle', async () => (await stack.counts()).idle === 2);
});
afterAll(() => stack?.stop());

const claim = (body: Record<string, unknown>, key: string) =>
  stack.api('POST', '/api/pool/claim', body, { 'idempotency-key': key });

/** Every event of every run of the instance's workflow, as bytes. */
async function allHistories(instanceId: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const run of stack.temporal.workflow.list({ query: `WorkflowId = 'instance-${instanceId}'` })) {
    const history = await stack.temporal.workflow.getHandle(run.workflowId, run.runId).fetchHistory();
    parts.push(Buffer.from(JSON.stringify(history)));
  }
  return Buffer.concat(parts);
}

describe('bearer links', () => {
  it('invite and join URLs reach the claim response and the instance detail only', async () => {
    const created = await claim({ agentName: 'Creator' }, newKey('invite'));
    expect(created.status).toBe(200);
    const body = await json<ClaimBody>(created);
    expect(body.inviteUrl).toMatch(/^https:\/\/dev\.convos\.org\/v2\?i=/);

    const joinUrl = createInvite({
      conversationId: randomUUID(),
      creatorInboxId: randomBytes(32).toString('hex'),
      walletPrivateKey: randomBytes(32),
      tag: generateInviteTag(),
      env: 'dev',
      name: 'Somebody else’s group',
    }).url;
    await stack.waitFor('an idle instance', async () => (await stack.counts()).idle > 0);
    const joined = await claim({ agentName: 'Joiner', joinUrl }, newKey('join'));
    expect(joined.status).toBe(200);
    const joinedBody = await json<ClaimBody>(joined);
    expect(joinedBody.joined).toBe(true);

    const list = await (await stack.api('GET', '/api/pool/agents')).text();
    expect(list).toContain(body.instanceId);
    expect(list).not.toContain(body.inviteUrl!);
    expect(list).not.toContain('inviteUrl');

    const detail = await json<{ inviteUrl: string | null }>(
      await stack.api('GET', `/api/pool/instances/${body.instanceId}`),
    );
    expect(detail.inviteUrl).toBe(body.inviteUrl);

    for (const [instanceId, link] of [
      [body.instanceId, body.inviteUrl!],
      [joinedBody.instanceId, joinUrl],
    ] as const) {
      const histories = await allHistories(instanceId);
      expect(histories.length).toBeGreaterThan(1000);
      expect(histories.includes(link)).toBe(false);
      // The slug alone would be the credential too.
      expect(histories.includes(link.slice(-40))).toBe(false);
    }
    // Nor does the claims ledger keep them.
    const ledger = JSON.stringify(await stack.database.db.select().from(claims));
    expect(ledger).not.toContain(body.inviteUrl!);
    expect(ledger).not.toContain(joinUrl);
  });
});

describe('idempotency that survives continue-as-new and a lost ledger outcome', () => {
  it('a repeat of the claim an instance holds is answered by that instance, never bound elsewhere', async () => {
    await stack.waitFor('2 idle', async () => (await stack.counts()).idle === 2);
    const key = newKey('survivor');
    const first = await claim({ agentName: 'Survivor' }, key);
    expect(first.status).toBe(200);
    const body = await json<ClaimBody>(first);
    const handle = stack.temporal.workflow.getHandle(`instance-${body.instanceId}`);
    const runBefore = (await handle.describe()).runId;

    // The instance continues as new (its Update ids are forgotten with the old run): a few reports of a healthy
    // runtime, which change nothing, make its history long…
    for (let i = 0; i < 8; i++) {
      await handle
        .signal(healthChangedSignal, { seq: 0, healthy: true, failures: 0, gone: false, error: '' })
        .catch(() => {}); // the run may have continued as new already
    }
    await stack.waitFor(
      'continue-as-new',
      async () =>
        (await stack.temporal.workflow.getHandle(`instance-${body.instanceId}`).describe()).runId !==
        runBefore,
      60_000,
    );
    // …and the replica that made the claim died after the Update returned, before it recorded the outcome.
    await stack.database.db
      .update(claims)
      .set({ status: 'pending', result: null, leaseOwner: 'api-gone', leaseUntil: new Date(0) })
      .where(eq(claims.key, key));
    await stack.waitFor('2 idle', async () => (await stack.counts()).idle === 2);

    const again = await claim({ agentName: 'Survivor' }, key);
    expect(again.status).toBe(200);
    expect(await json<ClaimBody>(again)).toEqual(body);

    const bound = (await stack.compute.inventory()).filter((i) => i.provisioned?.requestId === key);
    expect(bound.map((i) => i.id)).toEqual([body.instanceId]);
    const rows = await stack.database.db.select().from(instances).where(eq(instances.claimKey, key));
    expect(rows.map((r) => r.id)).toEqual([body.instanceId]);
    expect(
      (await stack.temporal.workflow.getHandle(`instance-${body.instanceId}`).query(getStateQuery)).status,
    ).toBe('claimed');
    expect((await stack.counts()).idle).toBe(2);
  });
});

describe('leases', () => {
  it('a holder that lost its lease cannot record the outcome; the claim stays on the same instance', async () => {
    await stack.waitFor('2 idle', async () => (await stack.counts()).idle === 2);
    const idle = (await json<{ idle: Array<{ id: string }> }>(await stack.api('GET', '/api/pool/agents')))
      .idle;
    for (const { id } of idle) await stack.compute.setFaults(id, { provisionDelayMs: 1_500 });
    const key = newKey('fenced');
    const pending = claim({ agentName: 'Fenced' }, key);
    // While the holder waits for the runtime, another replica takes the claim over (its lease ran out).
    await stack.waitFor('the claim sent to an instance', async () => {
      const [row] = await stack.database.db.select().from(claims).where(eq(claims.key, key));
      return Boolean(row?.instanceId);
    });
    await stack.database.db
      .update(claims)
      .set({ leaseOwner: 'api-other', leaseUntil: new Date(Date.now() + 60_000) })
      .where(eq(claims.key, key));
    const first = await json<ClaimBody>(await pending);
    const [row] = await stack.database.db.select().from(claims).where(eq(claims.key, key));
    expect(row).toMatchObject({ status: 'pending', leaseOwner: 'api-other', instanceId: first.instanceId });

    // The taker's lease runs out too; a retry finds the recorded instance and gets the same answer.
    await stack.database.db
      .update(claims)
      .set({ leaseUntil: new Date(0) })
      .where(eq(claims.key, key));
    const again = await claim({ agentName: 'Fenced' }, key);
    expect(await json<ClaimBody>(again)).toEqual(first);
    const bound = (await stack.compute.inventory()).filter((i) => i.provisioned?.requestId === key);
    expect(bound.map((i) => i.id)).toEqual([first.instanceId]);
    for (const { id } of idle) await stack.compute.setFaults(id, {});
  });
});
