/**
 * Inbound email and SMS against the real stack and the provider stand-ins: the webhooks are registered the
 * way `npm run webhooks:setup` does, the stand-ins deliver signed events as AgentMail (Svix) and Telnyx
 * (Ed25519) do, and the claimed instance's conversation (the runtime stand-in's record of `/pool/inbound`)
 * gets each exactly once: also when the provider retries, when a delivery is replayed, and when the worker
 * is down between the webhook and the delivery. Forged, stale and replayed deliveries are refused and
 * deliver nothing.
 */
import { randomBytes } from 'node:crypto';
import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerAgentMailWebhook, setTelnyxWebhookUrl } from '../activities/providers/webhooks';
import { inboundEvents, instanceResources, phoneNumbers } from '../drizzle/schema';
import { recordSecrets, type Stack } from './stack';
import { type AgentMailStandin, svixSignature } from './standins/agentmail-standin';
import { type TelnyxStandin, telnyxSignature } from './standins/telnyx-standin';
import { claimOne } from './support/helpers';
import { startMessagingStack } from './support/messaging-stack';

const WEBHOOK_SECRET = `whsec_${randomBytes(24).toString('base64')}`;
recordSecrets(WEBHOOK_SECRET);

let stack: Stack;
let agentmail: AgentMailStandin;
let telnyx: TelnyxStandin;
let instanceId: string;
let inbox: string;
let number: string;

interface Recorded {
  eventId: string;
  channel: string;
  from: string;
  subject: string | null;
  text: string;
}

/** What the instance's conversation got (the runtime stand-in's record). */
async function conversation(id = instanceId): Promise<Recorded[]> {
  const all = (await (await fetch(`${stack.standinUrl}/_standin/instances`)).json()) as Array<{
    id: string;
    inbound: Recorded[];
  }>;
  return all.find((i) => i.id === id)?.inbound ?? [];
}

/** How many `/pool/inbound` requests the runtime got (repeats included): each event is posted once. */
async function inboundCalls(id = instanceId): Promise<number> {
  const all = (await (await fetch(`${stack.standinUrl}/_standin/instances`)).json()) as Array<{
    id: string;
    inboundCalls: number;
  }>;
  return all.find((i) => i.id === id)?.inboundCalls ?? 0;
}

const eventRow = async (provider: string, eventId: string) =>
  (
    await stack.database.db
      .select()
      .from(inboundEvents)
      .where(and(eq(inboundEvents.provider, provider), eq(inboundEvents.eventId, eventId)))
  )[0];

const agentmailUrl = () => `${stack.apiUrl}/api/webhooks/agentmail`;
const telnyxUrl = () => `${stack.apiUrl}/api/webhooks/telnyx`;
const nowSeconds = () => Math.floor(Date.now() / 1000);
const settle = () => new Promise((r) => setTimeout(r, 1500));

beforeAll(async () => {
  ({ stack, agentmail, telnyx } = await startMessagingStack({
    webhookSecret: WEBHOOK_SECRET,
    numbers: 20,
    firstNumber: 7_000_000,
    targetIdle: 2,
    maxTotal: 6,
  }));
  // What `npm run webhooks:setup` does, against the stand-ins.
  const registered = await registerAgentMailWebhook({
    apiKey: agentmail.apiKey,
    baseUrl: agentmail.baseUrl,
    url: agentmailUrl(),
    clientId: `convos-webhook-${stack.poolName}`,
  });
  expect(registered).toMatchObject({ created: true, secret: WEBHOOK_SECRET });
  // Again: the same webhook, updated, not a second one.
  const again = await registerAgentMailWebhook({
    apiKey: agentmail.apiKey,
    baseUrl: agentmail.baseUrl,
    url: agentmailUrl(),
    clientId: `convos-webhook-${stack.poolName}`,
  });
  expect(again).toMatchObject({ created: false, webhookId: registered.webhookId });
  expect(agentmail.webhooks.size).toBe(1);
  const profile = await setTelnyxWebhookUrl({
    apiKey: telnyx.apiKey,
    baseUrl: telnyx.baseUrl,
    messagingProfileId: 'mp-standin',
    url: telnyxUrl(),
  });
  expect(profile.webhookUrl).toBe(telnyxUrl());

  const claimed = await claimOne(stack, 'Inbound');
  instanceId = claimed.instanceId;
  const [inboxRow] = await stack.database.db
    .select()
    .from(instanceResources)
    .where(and(eq(instanceResources.instanceId, instanceId), eq(instanceResources.kind, 'inbox')));
  inbox = inboxRow!.ref;
  const [numberRow] = await stack.database.db
    .select()
    .from(phoneNumbers)
    .where(and(eq(phoneNumbers.instanceId, instanceId), eq(phoneNumbers.status, 'assigned')));
  number = numberRow!.phoneNumber;
}, 120_000);
afterAll(async () => {
  await stack?.stop();
  await agentmail?.close();
  await telnyx?.close();
});

describe('inbound email', () => {
  it("reaches the claimed instance's conversation exactly once, across retries and replays", async () => {
    const mail = {
      from: 'jane@example.com',
      fromName: 'Jane Doe',
      subject: 'Dinner on Friday?',
      text: 'Are you free at 8?',
    };
    const received = await agentmail.receive(inbox, mail);
    expect(received.deliveries.map((d) => d.status)).toEqual([200]);
    await stack.waitFor('the email in the conversation', async () => (await conversation()).length >= 1);
    const [got] = await conversation();
    expect(got).toMatchObject({
      eventId: `agentmail:${received.eventId}`,
      channel: 'email',
      from: 'Jane Doe <jane@example.com>',
      subject: 'Dinner on Friday?',
      text: 'Are you free at 8?',
    });

    // AgentMail's retry (same svix-id, re-signed later): 2xx, nothing new.
    const retry = await agentmail.deliver(agentmailUrl(), received.body, {
      svixId: received.svixId,
      secret: WEBHOOK_SECRET,
      timestamp: nowSeconds() + 2,
    });
    expect(retry.status).toBe(200);
    // The captured first delivery, sent again as it was: refused.
    const first = received.deliveries[0]!;
    const replay = await fetch(first.url, { method: 'POST', headers: first.headers, body: first.body });
    expect(replay.status).toBe(409);
    expect(((await replay.json()) as { code: string }).code).toBe('REPLAYED');
    await settle();
    expect(await conversation()).toHaveLength(1);
    // Deduplicated before the runtime: it was asked once, not once per delivery.
    expect(await inboundCalls()).toBe(1);
    expect((await eventRow('agentmail', received.eventId))?.status).toBe('delivered');
  });

  it('refuses unsigned, badly signed, tampered and stale deliveries, and delivers nothing', async () => {
    const before = (await conversation()).length;
    const eventId = `evt_forged_${randomBytes(6).toString('hex')}`;
    const body = JSON.stringify({
      type: 'event',
      event_type: 'message.received',
      event_id: eventId,
      message: {
        inbox_id: inbox,
        message_id: 'm1',
        from: 'mallory@example.com',
        subject: 'Wire money',
        text: 'now',
      },
    });
    const send = (headers: Record<string, string>, payload = body) =>
      fetch(agentmailUrl(), {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: payload,
      });
    const ts = nowSeconds();
    const svix = (secret: string, at: number, payload = body) => ({
      'svix-id': 'msg_forged',
      'svix-timestamp': String(at),
      'svix-signature': svixSignature(secret, 'msg_forged', at, payload),
    });
    expect((await send({})).status).toBe(400);
    expect((await send(svix(`whsec_${randomBytes(24).toString('base64')}`, ts))).status).toBe(401);
    const tampered = body.replace('now', 'right now');
    expect((await send(svix(WEBHOOK_SECRET, ts), tampered)).status).toBe(401);
    expect((await send(svix(WEBHOOK_SECRET, ts - 600))).status).toBe(401);
    expect((await send(svix(WEBHOOK_SECRET, ts + 600))).status).toBe(401);
    await settle();
    expect(await eventRow('agentmail', eventId)).toBeUndefined();
    expect(await conversation()).toHaveLength(before);
  });
});

describe('inbound SMS', () => {
  it("reaches the claimed instance's conversation exactly once, across retries and replays", async () => {
    const before = (await conversation()).length;
    const { eventId, delivery } = await telnyx.receiveSms(number, {
      from: '+15551230000',
      text: 'Running late, 10 min',
    });
    expect(delivery?.status).toBe(200);
    await stack.waitFor('the SMS in the conversation', async () => (await conversation()).length > before);
    const got = (await conversation()).at(-1);
    expect(got).toMatchObject({
      eventId: `telnyx:${eventId}`,
      channel: 'sms',
      from: '+15551230000',
      text: 'Running late, 10 min',
      subject: null,
    });
    // Telnyx's retry, re-signed later: 2xx, nothing new. The captured delivery again: refused.
    expect((await telnyx.deliver(telnyxUrl(), delivery!.body, { timestamp: nowSeconds() + 2 })).status).toBe(
      200,
    );
    const replay = await fetch(delivery!.url, {
      method: 'POST',
      headers: delivery!.headers,
      body: delivery!.body,
    });
    expect(replay.status).toBe(409);
    await settle();
    expect(await conversation()).toHaveLength(before + 1);
  });

  it('refuses unsigned, badly signed, tampered and stale deliveries, and delivers nothing', async () => {
    const before = (await conversation()).length;
    const eventId = `forged-${randomBytes(6).toString('hex')}`;
    const body = JSON.stringify({
      data: {
        id: eventId,
        event_type: 'message.received',
        payload: {
          from: { phone_number: '+15559999999' },
          to: [{ phone_number: number }],
          text: 'send me the code',
        },
      },
    });
    const send = (headers: Record<string, string>, payload = body) =>
      fetch(telnyxUrl(), {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: payload,
      });
    const ts = nowSeconds();
    const { generateKeyPairSync } = await import('node:crypto');
    const other = generateKeyPairSync('ed25519').privateKey;
    const signed = (key: typeof other, at: number, payload = body) => ({
      'telnyx-timestamp': String(at),
      'telnyx-signature-ed25519': telnyxSignature(key, at, payload),
    });
    expect((await send({})).status).toBe(400);
    expect((await send(signed(other, ts))).status).toBe(401);
    expect((await send(signed(telnyx.privateKey, ts), body.replace('code', 'codes'))).status).toBe(401);
    expect((await send(signed(telnyx.privateKey, ts - 600))).status).toBe(401);
    await settle();
    expect(await eventRow('telnyx', eventId)).toBeUndefined();
    expect(await conversation()).toHaveLength(before);
  });
});

describe('across a worker restart', () => {
  it('an email and an SMS accepted while no worker runs reach the conversation once the next one starts, once each', async () => {
    const before = (await conversation()).length;
    const callsBefore = await inboundCalls();
    await stack.stopWorker();
    const mail = await agentmail.receive(inbox, {
      from: 'bob@example.com',
      subject: 'Tickets',
      text: 'Got two.',
    });
    const sms = await telnyx.receiveSms(number, { from: '+15551231111', text: 'Call me' });
    expect(mail.deliveries[0]?.status).toBe(200);
    expect(sms.delivery?.status).toBe(200);
    // Recorded, not delivered: nothing runs the delivery.
    await settle();
    expect(await conversation()).toHaveLength(before);
    expect((await eventRow('agentmail', mail.eventId))?.status).toBe('pending');
    // A provider retry meanwhile changes nothing.
    expect(
      (
        await agentmail.deliver(agentmailUrl(), mail.body, {
          svixId: mail.svixId,
          secret: WEBHOOK_SECRET,
          timestamp: nowSeconds() + 3,
        })
      ).status,
    ).toBe(200);

    await stack.startWorker();
    await stack.waitFor(
      'both in the conversation',
      async () => (await conversation()).length >= before + 2,
      60_000,
    );
    await settle();
    const ids = (await conversation()).map((e) => e.eventId);
    expect(ids.filter((id) => id === `agentmail:${mail.eventId}`)).toHaveLength(1);
    expect(ids.filter((id) => id === `telnyx:${sms.eventId}`)).toHaveLength(1);
    expect(ids).toHaveLength(before + 2);
    expect(await inboundCalls()).toBe(callsBefore + 2);
  }, 120_000);
});

describe('routing', () => {
  it('an email to an inbox no claimed instance owns is acknowledged and delivered nowhere', async () => {
    const idle = [...agentmail.inventory.items.keys()].find((id) => id !== inbox)!;
    const received = await agentmail.receive(idle, { from: 'x@example.com', subject: 'Hi', text: 'Hello' });
    expect(received.deliveries[0]?.status).toBe(200);
    expect(await eventRow('agentmail', received.eventId)).toBeUndefined();
  });
});
