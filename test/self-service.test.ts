/**
 * The instance self-service proxy against the real stack: a claimed instance sends email and SMS through
 * the pool (recording fakes stand in for AgentMail/Telnyx), always from its own inbox/number and only to
 * recipients its claimant allowed (in the claim, or later through the recipients route); other tokens,
 * unclaimed instances, instances without an inbox/number, a body choosing the sender, a recipient nobody
 * allowed, the hourly limits (per instance and across the pool) and provider failures are all refused
 * with the documented status and code.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import proto from '@temporalio/proto';
import { and, asc, eq, inArray, like } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SecretStore, secretKeyFromBase64 } from '../activities/secret-store';
import { buildApp } from '../api/app';
import { fingerprintOf } from '../api/claims';
import { ProviderRateLimitedError, ProviderRejectedError } from '../contracts/provider-errors';
import type { EmailSender, ResourceMetadata, SmsSender } from '../contracts/resources';
import { INSTANCE_TOKEN } from '../contracts/secrets';
import { instanceWorkflowId } from '../contracts/workflow-ids';
import { claims, instanceEvents, instanceRecipients, instanceResources, instances } from '../drizzle/schema';
import { artifactsDir, recordSecrets, type Stack, startStack } from './stack';
import { type ClaimBody, type ErrorBody, json, newKey, shared } from './support/helpers';

/** Records every send; `failNext` makes the next send throw (like an adapter whose provider failed). */
class RecordingSenders implements EmailSender, SmsSender {
  emails: Array<{ inboxId: string; to: string; subject: string; text: string }> = [];
  sms: Array<{ from: string; to: string; text: string }> = [];
  failNext: Error | null = null;

  private fail() {
    const err = this.failNext;
    this.failNext = null;
    if (err) throw err;
  }
  async sendEmail(inboxId: string, message: { to: string; subject: string; text: string }) {
    this.fail();
    this.emails.push({ inboxId, ...message });
    return { messageId: `em-${this.emails.length}` };
  }
  async sendSms(from: string, message: { to: string; text: string }) {
    this.fail();
    this.sms.push({ from, ...message });
    return { messageId: `sms-${this.sms.length}` };
  }
}

const SECRET = 'am_live_9f8e7d6c5b4a-provider-secret';
recordSecrets(SECRET);

let stack: Stack;
let secrets: SecretStore;
const fake = new RecordingSenders();

beforeAll(async () => {
  stack = await startStack(shared({ targetIdle: 3, maxTotal: 30, senders: { email: fake, sms: fake } }));
  secrets = new SecretStore(stack.database.db, secretKeyFromBase64(stack.secretsKey));
  await stack.waitFor('3 idle', async () => (await stack.counts()).idle === 3);
});
afterAll(() => stack?.stop());

const rowStatus = async (id: string) =>
  (await stack.database.db.select().from(instances).where(eq(instances.id, id)))[0]?.status;

const email = { to: 'alice@example.com', subject: 'Hello', text: 'The secret recipe is in the attic.' };
const sms = { to: '+15557654321', text: 'Meet at noon by the fountain.' };

/**
 * Claims one instance once one is idle, allowing `allowedRecipients` (by default the recipients of `email`
 * and `sms`; null: none), and waits until the read model says claimed (the proxy checks the read model).
 */
async function claim(
  name: string,
  allowedRecipients: { email?: string[]; sms?: string[] } | null = { email: [email.to], sms: [sms.to] },
): Promise<ClaimBody> {
  await stack.waitFor('an idle instance', async () => (await stack.counts()).idle > 0);
  const res = await stack.api(
    'POST',
    '/api/pool/claim',
    { agentName: name, ...(allowedRecipients ? { allowedRecipients } : {}) },
    { 'idempotency-key': newKey(name) },
  );
  expect(res.status).toBe(200);
  const body = await json<ClaimBody>(res);
  await stack.waitFor(`${name} claimed`, async () => (await rowStatus(body.instanceId)) === 'claimed');
  return body;
}

/** The rows the start saga writes for an inbox and a number (activities/resources.ts), written directly. */
async function giveInbox(instanceId: string, inboxId = `${instanceId}@agentmail.example`) {
  const metadata: ResourceMetadata = { facts: { email: inboxId }, env: { AGENTMAIL_INBOX_ID: inboxId } };
  await stack.database.db
    .insert(instanceResources)
    .values({ instanceId, kind: 'inbox', provider: 'agentmail', ref: inboxId, metadata });
  return inboxId;
}
async function givePhone(instanceId: string, phoneNumber: string) {
  const metadata: ResourceMetadata = { facts: { phoneNumber }, env: { TELNYX_PHONE_NUMBER: phoneNumber } };
  await stack.database.db
    .insert(instanceResources)
    .values({ instanceId, kind: 'phone', provider: 'telnyx', ref: `pn-${instanceId}`, metadata });
  return phoneNumber;
}

const credentialsOf = async (id: string) => `${id}:${await secrets.get(id, INSTANCE_TOKEN)}`;

function self(path: 'email' | 'sms', credentials: string | null, body: unknown) {
  return fetch(`${stack.apiUrl}/api/pool/self/${path}`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(credentials ? { authorization: `Bearer ${credentials}` } : {}),
    },
    body: JSON.stringify(body),
  });
}

/** An instance's audit events in the order they were written. */
const eventsOf = (id: string) =>
  stack.database.db
    .select()
    .from(instanceEvents)
    .where(eq(instanceEvents.instanceId, id))
    .orderBy(asc(instanceEvents.id));

describe("sending on an instance's behalf", () => {
  it("sends email and SMS from the instance's own inbox and number, and audits without the content", async () => {
    const a = await claim('Sender');
    const b = await claim('Neighbour');
    const inboxA = await giveInbox(a.instanceId);
    const phoneA = await givePhone(a.instanceId, '+15550001111');
    await giveInbox(b.instanceId);
    await givePhone(b.instanceId, '+15550002222');
    const creds = await credentialsOf(a.instanceId);

    const mailRes = await self('email', creds, email);
    expect(mailRes.status).toBe(202);
    const mailBody = await json<{ ok: boolean; messageId: string }>(mailRes);
    expect(mailBody).toEqual({ ok: true, messageId: `em-${fake.emails.length}` });
    expect(fake.emails.at(-1)).toEqual({ inboxId: inboxA, ...email });

    const smsRes = await self('sms', creds, sms);
    expect(smsRes.status).toBe(202);
    expect(await json(smsRes)).toEqual({ ok: true, messageId: `sms-${fake.sms.length}` });
    expect(fake.sms.at(-1)).toEqual({ from: phoneA, ...sms });

    // The audit trail: who and where to (domain / masked number) and the provider's id, never the content.
    const events = (await eventsOf(a.instanceId)).filter((e) => e.eventKey.startsWith('self-'));
    expect(events.map((e) => ({ actor: e.actor, reason: e.reason, details: e.details }))).toEqual([
      {
        actor: 'instance',
        reason: 'sent email to example.com',
        details: { channel: 'email', messageId: mailBody.messageId },
      },
      {
        actor: 'instance',
        reason: 'sent SMS to +15•••••••21',
        details: { channel: 'sms', messageId: `sms-${fake.sms.length}` },
      },
    ]);
    const trail = JSON.stringify(await eventsOf(a.instanceId));
    for (const leaked of [email.to, email.text, email.subject, sms.to, sms.text])
      expect(trail).not.toContain(leaked);

    // The operator's view shows it too.
    const detail = await json<{ events: Array<{ actor: string; reason: string }> }>(
      await stack.api('GET', `/api/pool/instances/${a.instanceId}`),
    );
    expect(detail.events.map((e) => e.reason)).toContain('sent email to example.com');
  });

  it("accepts only the instance's own token pair: 401 without, 403 for any other", async () => {
    const a = await claim('Owner');
    const b = await claim('Other');
    await giveInbox(a.instanceId);
    await giveInbox(b.instanceId);
    const tokenA = await secrets.get(a.instanceId, INSTANCE_TOKEN);
    const before = fake.emails.length;

    const cases: Array<[string | null, number]> = [
      [null, 401],
      [`${b.instanceId}:${tokenA}`, 403],
      [`${a.instanceId}:wrong`, 403],
      [stack.apiKey, 403],
      [`no-such-instance:${tokenA}`, 403],
    ];
    for (const [credentials, status] of cases) {
      const res = await self('email', credentials, email);
      expect(res.status, String(credentials)).toBe(status);
      expect((await json<ErrorBody>(res)).code).toBe(status === 401 ? 'UNAUTHORIZED' : 'FORBIDDEN');
    }
    // Authentication comes before the body: a bad body with bad credentials is still a 403.
    expect((await self('sms', `${b.instanceId}:${tokenA}`, { nonsense: true })).status).toBe(403);
    expect(fake.emails.length).toBe(before);
  });

  it('refuses an instance that is not claimed (409)', async () => {
    await stack.waitFor('an idle instance', async () => (await stack.counts()).idle > 0);
    const [idle] = await stack.database.db
      .select()
      .from(instances)
      .where(and(eq(instances.pool, stack.poolName), eq(instances.status, 'idle')));
    expect(idle).toBeDefined();
    const id = (idle as { id: string }).id;
    await giveInbox(id);
    const res = await self('email', await credentialsOf(id), email);
    // Leave it bare again: a later test may claim this very instance.
    await stack.database.db.delete(instanceResources).where(eq(instanceResources.instanceId, id));
    expect(res.status).toBe(409);
    const body = await json<ErrorBody>(res);
    expect(body.code).toBe('NOT_CLAIMED');
    expect(body.error).toMatch(/instance is idle; only a claimed instance may send email/);
  });

  it('refuses an instance without an inbox or number, or with a released one (409 *_NOT_ENABLED)', async () => {
    const a = await claim('Bare');
    const creds = await credentialsOf(a.instanceId);
    const noInbox = await self('email', creds, email);
    expect(noInbox.status).toBe(409);
    expect(await json(noInbox)).toMatchObject({
      code: 'EMAIL_NOT_ENABLED',
      error: 'this instance has no inbox, so email is not enabled for it',
    });
    const noPhone = await self('sms', creds, sms);
    expect(noPhone.status).toBe(409);
    expect((await json<ErrorBody>(noPhone)).code).toBe('SMS_NOT_ENABLED');

    await giveInbox(a.instanceId);
    await stack.database.db
      .update(instanceResources)
      .set({ status: 'released', releasedAt: new Date() })
      .where(eq(instanceResources.instanceId, a.instanceId));
    expect((await json<ErrorBody>(await self('email', creds, email))).code).toBe('EMAIL_NOT_ENABLED');
  });

  it('refuses when the pool has no sender configured (409 *_NOT_ENABLED)', async () => {
    const a = await claim('Unserved');
    await giveInbox(a.instanceId);
    await givePhone(a.instanceId, '+15550003333');
    // A second API on the same stack, without senders (a pool without AgentMail/Telnyx keys).
    const bare = await buildApp({
      db: stack.database.db,
      temporal: stack.temporal,
      secrets,
      config: stack.config,
      apiKey: stack.apiKey,
    });
    try {
      const headers = { authorization: `Bearer ${await credentialsOf(a.instanceId)}` };
      const mail = await bare.inject({
        method: 'POST',
        url: '/api/pool/self/email',
        headers,
        payload: email,
      });
      expect(mail.statusCode).toBe(409);
      expect(mail.json()).toEqual({ code: 'EMAIL_NOT_ENABLED', error: 'email is not enabled on this pool' });
      const text = await bare.inject({ method: 'POST', url: '/api/pool/self/sms', headers, payload: sms });
      expect(text.statusCode).toBe(409);
      expect(text.json().code).toBe('SMS_NOT_ENABLED');
    } finally {
      await bare.close();
    }
  });

  it('never lets the body choose the sender, and validates every field (400)', async () => {
    const a = await claim('Strict');
    await giveInbox(a.instanceId);
    await givePhone(a.instanceId, '+15550004444');
    const creds = await credentialsOf(a.instanceId);
    const before = { emails: fake.emails.length, sms: fake.sms.length };
    const bad: Array<['email' | 'sms', unknown]> = [
      ['email', { ...email, from: 'ceo@bigbank.example' }],
      ['email', { ...email, inboxId: 'someone-else@agentmail.example' }],
      ['sms', { ...sms, from: '+15550002222' }],
      ['email', { ...email, to: 'a@example.com, b@example.com' }],
      ['email', { ...email, to: 'Alice <alice@example.com>' }],
      ['email', { ...email, to: 'not-an-address' }],
      ['email', { ...email, subject: 's'.repeat(201) }],
      ['email', { ...email, subject: '' }],
      ['email', { ...email, text: 't'.repeat(10_001) }],
      ['email', { to: email.to, subject: email.subject }],
      ['sms', { ...sms, to: '5557654321' }],
      ['sms', { ...sms, to: ['+15557654321', '+15557654322'] }],
      ['sms', { ...sms, text: 'x'.repeat(1_601) }],
      ['sms', { ...sms, text: '' }],
    ];
    for (const [path, body] of bad) {
      const res = await self(path, creds, body);
      expect(res.status, JSON.stringify(body).slice(0, 80)).toBe(400);
      expect((await json<ErrorBody>(res)).code).toBe('BAD_REQUEST');
    }
    // The limits themselves are accepted.
    expect(
      (await self('email', creds, { ...email, subject: 's'.repeat(200), text: 't'.repeat(10_000) })).status,
    ).toBe(202);
    expect((await self('sms', creds, { ...sms, text: 'x'.repeat(1_600) })).status).toBe(202);
    expect(fake.emails.length - before.emails).toBe(1);
    expect(fake.sms.length - before.sms).toBe(1);
  });

  it('caps each instance at SELF_EMAIL_PER_HOUR, also under concurrency (429 + Retry-After)', async () => {
    expect(stack.config.api.selfEmailPerHour).toBe(20);
    const a = await claim('Chatty');
    const b = await claim('Quiet');
    await giveInbox(a.instanceId);
    await givePhone(a.instanceId, '+15550005555');
    await giveInbox(b.instanceId);
    const creds = await credentialsOf(a.instanceId);

    // 25 at once: exactly 20 go out, whatever the interleaving.
    const results = await Promise.all(Array.from({ length: 25 }, () => self('email', creds, email)));
    const statuses = results.map((r) => r.status).sort();
    expect(statuses.filter((s) => s === 202)).toHaveLength(20);
    expect(statuses.filter((s) => s === 429)).toHaveLength(5);
    const limited = results.find((r) => r.status === 429) as Response;
    const retryAfter = Number(limited.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(3500);
    expect(retryAfter).toBeLessThanOrEqual(3600);
    expect(await json(limited)).toMatchObject({
      code: 'RATE_LIMITED',
      error: expect.stringContaining('at most 20 email per hour'),
    });
    expect(fake.emails.filter((m) => m.inboxId.startsWith(a.instanceId))).toHaveLength(20);

    // Per instance and per channel: SMS from the same instance and email from another still go out.
    expect((await self('sms', creds, sms)).status).toBe(202);
    expect((await self('email', await credentialsOf(b.instanceId), email)).status).toBe(202);

    // Slots free up as the hour rolls: age the oldest send by an hour and one more is allowed.
    const [oldest] = (await eventsOf(a.instanceId))
      .filter((e) => e.eventKey.startsWith('self-email-'))
      .sort((x, y) => x.at.getTime() - y.at.getTime());
    await stack.database.db
      .update(instanceEvents)
      .set({ at: new Date(Date.now() - 3601_000) })
      .where(eq(instanceEvents.id, (oldest as { id: number }).id));
    expect((await self('email', creds, email)).status).toBe(202);
    expect((await self('email', creds, email)).status).toBe(429);
  });

  it('answers a provider failure with 502 PROVIDER_FAILED and no secret; the attempt is audited', async () => {
    const a = await claim('Unlucky');
    await giveInbox(a.instanceId);
    await givePhone(a.instanceId, '+15550006666');
    const creds = await credentialsOf(a.instanceId);

    fake.failNext = new Error(`POST /inboxes failed: 500 (Authorization: Bearer ${SECRET})`);
    const failed = await self('email', creds, email);
    expect(failed.status).toBe(502);
    const text = await failed.text();
    expect(text).not.toContain(SECRET);
    expect(JSON.parse(text)).toEqual({
      code: 'PROVIDER_FAILED',
      error: 'the email provider is unavailable; retry later',
    });

    fake.failNext = new ProviderRejectedError(`telnyx POST /messages: 422 ${SECRET}`, 422, SECRET);
    const rejected = await self('sms', creds, sms);
    expect(rejected.status).toBe(502);
    const rejectedText = await rejected.text();
    expect(rejectedText).not.toContain(SECRET);
    expect(JSON.parse(rejectedText).error).toBe('the SMS provider rejected the message');

    fake.failNext = new ProviderRateLimitedError('agentmail: 429', 30_000);
    const throttled = await self('email', creds, email);
    expect(throttled.status).toBe(502);
    expect(throttled.headers.get('retry-after')).toBe('30');

    // Failed attempts are on the trail (and count against the hourly limit); nothing secret is.
    const events = (await eventsOf(a.instanceId)).filter((e) => e.eventKey.startsWith('self-'));
    expect(events.map((e) => e.reason).sort()).toEqual([
      'SMS to +15•••••••21 failed (provider rejected)',
      'email to example.com failed (provider rate-limited)',
      'email to example.com failed (provider unavailable)',
    ]);
    expect(JSON.stringify(events)).not.toContain(SECRET);

    // The next send works again.
    expect((await self('email', creds, email)).status).toBe(202);
  });
});

/** The recipients route of an instance (API key). */
const recipients = (id: string, method: 'GET' | 'PUT' = 'GET', body?: unknown) =>
  stack.api(method, `/api/pool/instances/${id}/recipients`, body);

/** Every run of the instance's workflow, as the binary protobuf the post-run secret scan reads. */
async function historyBytes(instanceId: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const run of stack.temporal.workflow.list({
    query: `WorkflowId = '${instanceWorkflowId(instanceId)}'`,
  })) {
    const history = await stack.temporal.workflow.getHandle(run.workflowId, run.runId).fetchHistory();
    parts.push(Buffer.from(proto.temporal.api.history.v1.History.encode(history).finish()));
  }
  return Buffer.concat(parts);
}

describe('allowed recipients', () => {
  it('sends only to recipients the claimant allowed; anyone else is 403 RECIPIENT_NOT_ALLOWED, nothing sent, the refusal audited (masked)', async () => {
    // Distinctive addresses, also recorded for the post-run scan of every history and log of the run.
    const friend = 'Friend.Of.Guarded@Example.org';
    const friendPhone = '+15550001234';
    const stranger = 'mallory-the-stranger@evil.example';
    const strangerPhone = '+15559876543';
    recordSecrets(friend, friend.toLowerCase(), stranger);
    const a = await claim('Guarded', { email: [friend], sms: [friendPhone] });
    await giveInbox(a.instanceId);
    await givePhone(a.instanceId, '+15550007001');
    const creds = await credentialsOf(a.instanceId);

    // Stored lowercased, once per address.
    const listed = await recipients(a.instanceId);
    expect(listed.status).toBe(200);
    expect(await json(listed)).toEqual({
      instanceId: a.instanceId,
      email: [friend.toLowerCase()],
      sms: [friendPhone],
    });

    // The allowed ones go out (an email address in any case).
    expect((await self('email', creds, { ...email, to: 'FRIEND.of.guarded@example.ORG' })).status).toBe(202);
    expect((await self('sms', creds, { ...sms, to: friendPhone })).status).toBe(202);
    const before = { emails: fake.emails.length, sms: fake.sms.length };

    const refusedMail = await self('email', creds, { ...email, to: stranger });
    expect(refusedMail.status).toBe(403);
    expect(await json(refusedMail)).toEqual({
      code: 'RECIPIENT_NOT_ALLOWED',
      error: 'this address is not one you may email; ask the person who set you up to allow this address',
    });
    const refusedSms = await self('sms', creds, { ...sms, to: strangerPhone });
    expect(refusedSms.status).toBe(403);
    expect(await json(refusedSms)).toMatchObject({
      code: 'RECIPIENT_NOT_ALLOWED',
      error: expect.stringContaining('ask the person who set you up to allow this number'),
    });
    // The default recipients of the other tests are not allowed here either.
    expect((await self('email', creds, email)).status).toBe(403);
    expect(fake.emails.length).toBe(before.emails);
    expect(fake.sms.length).toBe(before.sms);

    // The trail says a send was refused, with the recipient masked like any send.
    const events = (await eventsOf(a.instanceId)).filter((e) => e.eventKey.startsWith('self-'));
    expect(events.map((e) => e.reason)).toEqual([
      'sent email to example.org',
      'sent SMS to +15•••••••34',
      'refused to send email to evil.example: not an allowed recipient',
      'refused to send SMS to +15•••••••43: not an allowed recipient',
      'refused to send email to example.com: not an allowed recipient',
    ]);
    const trail = JSON.stringify(await eventsOf(a.instanceId));
    for (const address of [friend, friend.toLowerCase(), friendPhone, stranger, strangerPhone, email.to])
      expect(trail).not.toContain(address);

    // Never in Temporal: the claim's workflow history holds the agent's name but no address.
    const history = await historyBytes(a.instanceId);
    expect(history.includes('Guarded')).toBe(true);
    for (const address of [friend, friend.toLowerCase(), friendPhone])
      expect(history.includes(address)).toBe(false);
    // Nor in the API's log (so far: the post-run scan reads the whole of it).
    const log = fs.readFileSync(path.join(artifactsDir, 'logs', `api-${stack.poolName}.log`), 'utf8');
    for (const address of [friend.toLowerCase(), stranger, strangerPhone]) expect(log).not.toContain(address);
  });

  it('allows recipients added later through PUT /api/pool/instances/:id/recipients, and refuses them once removed', async () => {
    const a = await claim('Late', null);
    await giveInbox(a.instanceId);
    await givePhone(a.instanceId, '+15550007002');
    const creds = await credentialsOf(a.instanceId);
    const bob = { ...email, to: 'bob@example.net' };
    const bobSms = { ...sms, to: '+15550007777' };

    // A claim that allows nobody: every send is refused.
    expect(await json(await recipients(a.instanceId))).toEqual({
      instanceId: a.instanceId,
      email: [],
      sms: [],
    });
    expect((await json<ErrorBody>(await self('email', creds, bob))).code).toBe('RECIPIENT_NOT_ALLOWED');
    expect((await json<ErrorBody>(await self('sms', creds, bobSms))).code).toBe('RECIPIENT_NOT_ALLOWED');

    const set = await recipients(a.instanceId, 'PUT', {
      email: ['Bob@Example.NET', 'bob@example.net'],
      sms: [bobSms.to],
    });
    expect(set.status).toBe(200);
    const expected = { instanceId: a.instanceId, email: ['bob@example.net'], sms: [bobSms.to] };
    expect(await json(set)).toEqual(expected);
    expect(await json(await recipients(a.instanceId))).toEqual(expected);

    const before = { emails: fake.emails.length, sms: fake.sms.length };
    expect((await self('email', creds, bob)).status).toBe(202);
    expect((await self('sms', creds, bobSms)).status).toBe(202);
    expect(fake.emails.slice(before.emails)).toEqual([{ inboxId: expect.any(String), ...bob }]);
    expect(fake.sms.slice(before.sms)).toEqual([{ from: '+15550007002', ...bobSms }]);

    // PUT replaces the whole list: a channel left out allows nobody.
    expect(await json(await recipients(a.instanceId, 'PUT', { sms: [bobSms.to] }))).toEqual({
      ...expected,
      email: [],
    });
    expect((await self('email', creds, bob)).status).toBe(403);
    expect((await self('sms', creds, bobSms)).status).toBe(202);
    expect(fake.emails.length).toBe(before.emails + 1);

    // Audited by counts, never by address.
    const changes = (await eventsOf(a.instanceId)).filter((e) => e.eventKey.startsWith('recipients-'));
    expect(changes.map((e) => ({ actor: e.actor, reason: e.reason }))).toEqual([
      { actor: 'operator', reason: 'allowed recipients set: 1 email, 1 SMS' },
      { actor: 'operator', reason: 'allowed recipients set: 0 email, 1 SMS' },
    ]);
    expect(JSON.stringify(changes)).not.toContain('bob@');

    // Published with the other routes.
    const doc = await json<{ paths: Record<string, Record<string, unknown>> }>(
      await fetch(`${stack.apiUrl}/api/openapi.json`),
    );
    expect(Object.keys(doc.paths['/api/pool/instances/{id}/recipients'] ?? {}).sort()).toEqual([
      'get',
      'put',
    ]);

    // Refused: bad lists (400 naming the field), no API key, an unknown or unclaimed instance.
    const bad: Array<[unknown, RegExp]> = [
      [{ email: ['not-an-address'] }, /email\.0 must be one email address/],
      [{ email: ['Bob <bob@example.net>'] }, /email\.0 must be one email address/],
      [{ sms: ['5550007777'] }, /sms\.0 must be one phone number in E\.164 form/],
      [{ sms: Array.from({ length: 21 }, (_, i) => `+1555000${String(i).padStart(4, '0')}`) }, /sms/],
      [{ fax: ['+15550007777'] }, /additional properties/],
      [{ email: 'bob@example.net' }, /email/],
    ];
    for (const [body, message] of bad) {
      const res = await recipients(a.instanceId, 'PUT', body);
      expect(res.status, JSON.stringify(body).slice(0, 60)).toBe(400);
      expect((await json<ErrorBody>(res)).error).toMatch(message);
    }
    expect(await json(await recipients(a.instanceId))).toEqual({ ...expected, email: [] });
    const anonymous = await fetch(`${stack.apiUrl}/api/pool/instances/${a.instanceId}/recipients`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${creds}` },
      body: JSON.stringify({ email: ['eve@example.com'] }),
    });
    expect(anonymous.status).toBe(401);
    expect((await recipients('no-such-instance', 'PUT', { email: [] })).status).toBe(404);
    expect((await recipients('no-such-instance')).status).toBe(404);
    await stack.waitFor('an idle instance', async () => (await stack.counts()).idle > 0);
    const [idle] = await stack.database.db
      .select()
      .from(instances)
      .where(and(eq(instances.pool, stack.poolName), eq(instances.status, 'idle')));
    const unclaimed = await recipients((idle as { id: string }).id, 'PUT', { email: ['eve@example.com'] });
    expect(unclaimed.status).toBe(409);
    expect((await json<ErrorBody>(unclaimed)).code).toBe('NOT_CLAIMED');
    expect(
      await stack.database.db
        .select()
        .from(instanceRecipients)
        .where(eq(instanceRecipients.instanceId, (idle as { id: string }).id)),
    ).toEqual([]);
  });

  it('caps the whole pool at SELF_EMAIL_POOL_PER_HOUR / SELF_SMS_POOL_PER_HOUR across instances, also under concurrency (429 + Retry-After)', async () => {
    expect(stack.config.api.selfEmailPoolPerHour).toBe(200);
    expect(stack.config.api.selfSmsPoolPerHour).toBe(200);
    const a = await claim('PoolA');
    const b = await claim('PoolB');
    await giveInbox(a.instanceId);
    await givePhone(a.instanceId, '+15550007003');
    await giveInbox(b.instanceId);
    await givePhone(b.instanceId, '+15550007004');
    const headersA = { authorization: `Bearer ${await credentialsOf(a.instanceId)}` };
    const headersB = { authorization: `Bearer ${await credentialsOf(b.instanceId)}` };

    // An empty window: the earlier tests' sends of this pool are aged past the hour.
    const ours = stack.database.db
      .select({ id: instances.id })
      .from(instances)
      .where(eq(instances.pool, stack.poolName));
    await stack.database.db
      .update(instanceEvents)
      .set({ at: new Date(Date.now() - 3601_000) })
      .where(and(inArray(instanceEvents.instanceId, ours), like(instanceEvents.eventKey, 'self-%')));

    // A second API on the same stack with small pool caps (the per-instance limit stays 20).
    const capped = await buildApp({
      db: stack.database.db,
      temporal: stack.temporal,
      secrets,
      config: {
        ...stack.config,
        api: { ...stack.config.api, selfEmailPoolPerHour: 12, selfSmsPoolPerHour: 1 },
      },
      apiKey: stack.apiKey,
      senders: { email: fake, sms: fake },
    });
    try {
      const post = (
        path: 'email' | 'sms',
        headers: Record<string, string>,
        payload: Record<string, string>,
      ) => capped.inject({ method: 'POST', url: `/api/pool/self/${path}`, headers, payload });
      const before = fake.emails.length;
      // A refusal does not take a slot of the pool (nothing reached a provider).
      expect((await post('email', headersA, { ...email, to: 'nobody@example.com' })).statusCode).toBe(403);

      // 15 from each instance at once: exactly 12 go out between them, whatever the interleaving.
      const results = await Promise.all(
        Array.from({ length: 30 }, (_, i) => post('email', i % 2 ? headersB : headersA, email)),
      );
      const statuses = results.map((r) => r.statusCode);
      expect(statuses.filter((s) => s === 202)).toHaveLength(12);
      expect(statuses.filter((s) => s === 429)).toHaveLength(18);
      const limited = results.find((r) => r.statusCode === 429)!;
      const retryAfter = Number(limited.headers['retry-after']);
      expect(retryAfter).toBeGreaterThan(3500);
      expect(retryAfter).toBeLessThanOrEqual(3600);
      expect(limited.json()).toMatchObject({
        code: 'POOL_RATE_LIMITED',
        error: expect.stringContaining('at most 12 email per hour between them'),
      });
      expect(fake.emails.length - before).toBe(12);
      // Either instance is refused now, each under its own limit of 20.
      expect((await post('email', headersA, email)).statusCode).toBe(429);
      expect((await post('email', headersB, email)).statusCode).toBe(429);
      expect(fake.emails.length - before).toBe(12);

      // Per channel: one SMS goes out, the other instance's is over the pool's cap.
      const smsBefore = fake.sms.length;
      expect((await post('sms', headersA, sms)).statusCode).toBe(202);
      const over = await post('sms', headersB, sms);
      expect(over.statusCode).toBe(429);
      expect(over.json().code).toBe('POOL_RATE_LIMITED');
      expect(fake.sms.length - smsBefore).toBe(1);
    } finally {
      await capped.close();
    }
    // The stack's own API has the default cap of 200: the same pool still sends.
    expect((await self('email', await credentialsOf(b.instanceId), email)).status).toBe(202);
  });

  it("validates a claim's allowedRecipients: 400 naming the field, nothing claimed", async () => {
    const claimedBefore = (await stack.counts()).claimed;
    const many = (n: number, of: (i: number) => string) => Array.from({ length: n }, (_, i) => of(i));
    const bad: Array<[unknown, RegExp]> = [
      [{ email: ['not-an-address'] }, /allowedRecipients\.email\.0 must be one email address/],
      [
        { email: [email.to, 'Alice <alice@example.com>'] },
        /allowedRecipients\.email\.1 must be one email address/,
      ],
      [{ email: ['a@example.com, b@example.com'] }, /allowedRecipients\.email\.0 must be one email address/],
      [{ sms: ['5557654321'] }, /allowedRecipients\.sms\.0 must be one phone number in E\.164 form/],
      [
        { email: many(21, (i) => `friend${i}@example.com`) },
        /allowedRecipients\/email must NOT have more than 20 items/,
      ],
      [
        { sms: many(21, (i) => `+1555700${String(i).padStart(4, '0')}`) },
        /allowedRecipients\/sms must NOT have more than 20 items/,
      ],
      [{ fax: ['+15557654321'] }, /allowedRecipients must NOT have additional properties/],
      [{ email: email.to }, /allowedRecipients\/email must be array/],
      [[email.to], /allowedRecipients must be object/],
    ];
    for (const [allowedRecipients, message] of bad) {
      const key = newKey('bad-recipients');
      const res = await stack.api(
        'POST',
        '/api/pool/claim',
        { agentName: 'Nobody', allowedRecipients },
        {
          'idempotency-key': key,
        },
      );
      expect(res.status, JSON.stringify(allowedRecipients).slice(0, 60)).toBe(400);
      const body = await json<ErrorBody>(res);
      expect(body.code).toBe('BAD_REQUEST');
      expect(body.error).toMatch(message);
      // Refused before the ledger: the key was never recorded, no instance was bound.
      expect(await stack.database.db.select().from(claims).where(eq(claims.key, key))).toEqual([]);
    }
    expect((await stack.counts()).claimed).toBe(claimedBefore);
  });

  it("stores a claim's allowedRecipients once, lowercased, and makes them part of its idempotency fingerprint", async () => {
    await stack.waitFor('an idle instance', async () => (await stack.counts()).idle > 0);
    const key = newKey('repeat');
    // The limits themselves are accepted: 20 of each.
    const emails = Array.from({ length: 20 }, (_, i) => `Friend${i}@Example.com`);
    const numbers = Array.from({ length: 20 }, (_, i) => `+1555800${String(i).padStart(4, '0')}`);
    const body = { agentName: 'Repeat', allowedRecipients: { email: emails, sms: numbers } };
    const first = await stack.api('POST', '/api/pool/claim', body, { 'idempotency-key': key });
    expect(first.status).toBe(200);
    const { instanceId } = await json<ClaimBody>(first);
    const stored = { email: emails.map((e) => e.toLowerCase()).sort(), sms: [...numbers].sort() };
    expect(await json(await recipients(instanceId))).toEqual({ instanceId, ...stored });

    // A retry (in another order and case: the same list) is the same claim and writes nothing twice.
    const again = await stack.api(
      'POST',
      '/api/pool/claim',
      {
        ...body,
        allowedRecipients: { sms: [...numbers].reverse(), email: emails.map((e) => e.toUpperCase()) },
      },
      { 'idempotency-key': key },
    );
    expect(again.status).toBe(200);
    expect((await json<ClaimBody>(again)).instanceId).toBe(instanceId);
    const rows = await stack.database.db
      .select()
      .from(instanceRecipients)
      .where(eq(instanceRecipients.instanceId, instanceId));
    expect(rows).toHaveLength(40);

    // Changed by an operator since, the list is not rewritten by a repeat of the claim.
    await stack.waitFor('Repeat claimed', async () => (await rowStatus(instanceId)) === 'claimed');
    expect((await recipients(instanceId, 'PUT', { email: ['only@example.com'] })).status).toBe(200);
    expect((await stack.api('POST', '/api/pool/claim', body, { 'idempotency-key': key })).status).toBe(200);
    expect(await json(await recipients(instanceId))).toEqual({
      instanceId,
      email: ['only@example.com'],
      sms: [],
    });

    // Other recipients under the same key are another request.
    const other = await stack.api(
      'POST',
      '/api/pool/claim',
      { ...body, allowedRecipients: { email: ['someone-else@example.com'] } },
      { 'idempotency-key': key },
    );
    expect(other.status).toBe(409);
    expect((await json<ErrorBody>(other)).code).toBe('IDEMPOTENCY_KEY_REUSED');
    const without = await stack.api(
      'POST',
      '/api/pool/claim',
      { agentName: 'Repeat' },
      { 'idempotency-key': key },
    );
    expect((await json<ErrorBody>(without)).code).toBe('IDEMPOTENCY_KEY_REUSED');

    // A claim without the field keeps the fingerprint it had before the field existed.
    const plain = { agentName: 'A', instructions: 'B', templateSlug: null, joinUrl: null };
    expect(fingerprintOf(plain)).toBe(
      createHash('sha256')
        .update(JSON.stringify(['A', 'B', null, null]))
        .digest('hex'),
    );
    expect(fingerprintOf({ ...plain, allowedRecipients: { email: [], sms: [] } })).not.toBe(
      fingerprintOf(plain),
    );

    // The recipients are personal data: they go with the instance.
    expect((await stack.api('DELETE', `/api/pool/instances/${instanceId}`)).status).toBe(202);
    await stack.waitFor('Repeat destroyed', async () => (await rowStatus(instanceId)) === 'destroyed');
    const left = await stack.database.db
      .select()
      .from(instanceRecipients)
      .where(eq(instanceRecipients.instanceId, instanceId));
    expect(left).toEqual([]);
  });
});
