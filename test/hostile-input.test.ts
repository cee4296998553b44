/**
 * Issue 9's findings, each as it was reported: input a hostile visitor sends never wedges an instance, never
 * burns the pool, and leaves the read model and the workflows in agreement.
 */
import { eq, like } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { claims, instanceEvents, instances } from '../drizzle/schema';
import { claimUpdate, getStateQuery } from '../workflows/messages';
import type { ClaimRequest } from '../workflows/types';
import { type Stack, startStack } from './stack';
import { type ClaimBody, type ErrorBody, json, newKey, shared } from './support/helpers';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack(shared({ targetIdle: 2, maxTotal: 6 }));
  await stack.waitFor('2 idle', async () => (await stack.counts()).idle === 2);
});
afterAll(() => stack?.stop());

const idleIds = async () =>
  (await json<{ idle: Array<{ id: string }> }>(await stack.api('GET', '/api/pool/agents'))).idle
    .map((i) => i.id)
    .sort();

/** Every idle instance of the read model is idle in its workflow too, and unprovisioned at the runtime. */
async function expectIdleAgreement(ids: string[]) {
  const inventory = await stack.compute.inventory();
  for (const id of ids) {
    const state = await stack.temporal.workflow.getHandle(`instance-${id}`).query(getStateQuery);
    expect(state.status).toBe('idle');
    expect(state.claim).toBeNull();
    expect(inventory.find((i) => i.id === id)?.provisioned).toBeNull();
  }
}

/** Sends a raw JSON text (so lone surrogates and other escapes reach the server as written). */
const rawClaim = (text: string, key = newKey('hostile')) =>
  fetch(`${stack.apiUrl}/api/pool/claim`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${stack.apiKey}`,
      'content-type': 'application/json',
      'idempotency-key': key,
    },
    body: text,
  });

describe('hostile claims are refused at the edge and change nothing', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['U+0000 in the agent name', '{"agentName":"A\\u0000B"}', /agentName .*U\+0000/],
    ['a two-line agent name', '{"agentName":"Line one\\nLine two"}', /agentName must be one line/],
    ['BEL in the agent name', '{"agentName":"Ding\\u0007"}', /agentName/],
    ['ESC in the instructions', '{"instructions":"\\u001b[31mred"}', /instructions .*U\+001B/],
    ['a bidi override in the agent name', '{"agentName":"evil\\u202Egnp.exe"}', /agentName/],
    ['a lone surrogate in the agent name', '{"agentName":"half \\ud800"}', /agentName .*lone surrogate/],
    ['a lone surrogate in the instructions', '{"instructions":"\\udc00"}', /instructions/],
    [
      'instructions over the runtime limit',
      JSON.stringify({ instructions: 'x'.repeat(20_001) }),
      /instructions must NOT have more than 20000 characters/,
    ],
    ['U+0000 in the template slug', '{"templateSlug":"meeting\\u0000"}', /templateSlug/],
    ['a join URL with a space', '{"joinUrl":"https://dev.convos.org/v2?i=a b"}', /joinUrl/],
  ];
  for (const [name, body, message] of cases) {
    it(name, async () => {
      const before = await idleIds();
      const key = newKey('hostile');
      const res = await rawClaim(body, key);
      expect(res.status).toBe(400);
      const err = await json<ErrorBody>(res);
      expect(err.code).toBe('BAD_REQUEST');
      expect(err.error).toMatch(message);
      expect(await stack.database.db.select().from(claims).where(eq(claims.key, key))).toEqual([]);
      expect(await idleIds()).toEqual(before);
      await expectIdleAgreement(before);
    });
  }

  it('U+0000 in a path parameter, a query parameter or a header is a 400 naming it', async () => {
    const template = await fetch(`${stack.apiUrl}/api/pool/templates/%00`);
    expect(template.status).toBe(400);
    expect((await json<ErrorBody>(template)).error).toMatch(/^path\.slug contains a control character/);

    const query = await fetch(`${stack.apiUrl}/api/pool/counts?x=%00`);
    expect(query.status).toBe(400);
    expect((await json<ErrorBody>(query)).error).toMatch(/^query\.x contains a control character/);

    const instance = await stack.api('GET', '/api/pool/instances/a%07b');
    expect(instance.status).toBe(400);

    // C1 controls pass Node's HTTP parser (as Latin-1 bytes): the guard still refuses them.
    const header = await stack.api(
      'POST',
      '/api/pool/claim',
      {},
      { 'idempotency-key': newKey('h'), 'x-client-id': Buffer.from('abc\x85', 'latin1').toString('latin1') },
    );
    expect(header.status).toBe(400);
    expect((await json<ErrorBody>(header)).error).toMatch(/x-client-id/);
  });

  it('a claim Update sent straight to a workflow with input the runtime would refuse is refused there too', async () => {
    const [id] = await idleIds();
    const request: ClaimRequest = {
      claimKey: newKey('direct'),
      agentName: 'Two\nlines',
      instructions: 'hi',
      templateSlug: null,
      hasJoinUrl: false,
    };
    await expect(
      stack.temporal.workflow.getHandle(`instance-${id}`).executeUpdate(claimUpdate, {
        updateId: request.claimKey,
        args: [request],
      }),
    ).rejects.toMatchObject({ cause: { type: 'ClaimRefused' } });
    await expectIdleAgreement([id!]);
  });
});

describe('a refusal by the runtime is not a taint', () => {
  it('puts the instance back to idle untouched and answers 400 at once, without trying another instance', async () => {
    const before = await idleIds();
    expect(before).toHaveLength(2);
    // Every idle runtime refuses provisioning the way the real one refuses a request it cannot take.
    for (const id of before) await stack.compute.setFaults(id, { refuseProvision: true });

    const started = Date.now();
    const key = newKey('refused');
    const res = await stack.api(
      'POST',
      '/api/pool/claim',
      { agentName: 'Refused' },
      { 'idempotency-key': key },
    );
    expect(res.status).toBe(400);
    expect(await json<ErrorBody>(res)).toMatchObject({ code: 'CLAIM_REFUSED' });
    expect(Date.now() - started).toBeLessThan(5_000);

    // Exactly one instance was asked (its audit trail says so); both are still idle, in the read model and
    // in their workflows.
    await stack.waitFor('the refusal in the audit trail', async () => {
      const events = await stack.database.db
        .select()
        .from(instanceEvents)
        .where(like(instanceEvents.reason, `claim ${key} refused%`));
      return events.length === 1;
    });
    expect(await idleIds()).toEqual(before);
    await expectIdleAgreement(before);
    const rows = await stack.database.db
      .select()
      .from(instances)
      .where(like(instances.claimKey, 'refused-%'));
    expect(rows).toEqual([]);

    // The refused claim's reservation is gone: the next claim (faults cleared) gets an instance at once.
    for (const id of before) await stack.compute.setFaults(id, {});
    const next = await stack.api(
      'POST',
      '/api/pool/claim',
      { agentName: 'Fine' },
      { 'idempotency-key': newKey('ok') },
    );
    expect(next.status).toBe(200);
    expect(before).toContain((await json<ClaimBody>(next)).instanceId);
  });
});
