/**
 * The instance self-service proxy against the real stack: a claimed instance sends email and SMS through
 * the pool (recording fakes stand in for AgentMail/Telnyx), always from its own inbox/number; other
 * tokens, unclaimed instances, instances without an inbox/number, a body choosing the sender, the hourly
 * limit and provider failures are all refused with the documented status and code.
 */
import { and, asc, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INSTANCE_TOKEN } from '../activities';
import { ProviderRateLimitedError, ProviderRejectedError } from '../activities/providers/http';
import type { EmailSender, SmsSender } from '../activities/providers/types';
import type { ResourceMetadata } from '../activities/resources';
import { SecretStore, secretKeyFromBase64 } from '../activities/secret-store';
import { buildApp } from '../api/app';
import { instanceEvents, instanceResources, instances } from '../drizzle/schema';
import { recordSecrets, type Stack, startStack } from './stack';
import { type ClaimBody, claimOne, type ErrorBody, json, shared } from './support/helpers';

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
  stack = await startStack(shared({ targetIdle: 3, maxTotal: 20, senders: { email: fake, sms: fake } }));
  secrets = new SecretStore(stack.database.db, secretKeyFromBase64(stack.secretsKey));
  await stack.waitFor('3 idle', async () => (await stack.counts()).idle === 3);
});
afterAll(() => stack?.stop());

const rowStatus = async (id: string) =>
  (await stack.database.db.select().from(instances).where(eq(instances.id, id)))[0]?.status;

/** Claims one instance and waits until the read model says claimed (the proxy checks the read model). */
async function claim(name: string): Promise<ClaimBody> {
  const body = await claimOne(stack, name);
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

const email = { to: 'alice@example.com', subject: 'Hello', text: 'The secret recipe is in the attic.' };
const sms = { to: '+15557654321', text: 'Meet at noon by the fountain.' };

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
