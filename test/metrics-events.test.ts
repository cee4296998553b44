/**
 * The API's `/metrics` while things happen, on the real stack (test/stack.ts) with the AgentMail and Telnyx
 * stand-ins: a claim that waits on an empty pool shows in `convos_claims_waiting` (1 during, 0 after) and its
 * end is counted in `convos_claim_duration_seconds{outcome,warm}`: a 503 `no_idle` when the wait runs out, a
 * cold `bound` when the pool is raised meanwhile. A verified webhook delivered twice (the provider's retry of
 * the same event, re-signed later) is counted once `accepted` and once `duplicate`; the captured delivery
 * sent again once `replayed`.
 */
import { randomBytes } from 'node:crypto';
import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerAgentMailWebhook, setTelnyxWebhookUrl } from '../activities/providers/webhooks';
import { instanceResources, phoneNumbers } from '../drizzle/schema';
import { type Exposition, parseExposition, sampleValue } from '../scripts/prometheus-text';
import { recordSecrets, type Stack } from './stack';
import type { AgentMailStandin } from './standins/agentmail-standin';
import type { TelnyxStandin } from './standins/telnyx-standin';
import { newKey } from './support/helpers';
import { startMessagingStack } from './support/messaging-stack';

const WEBHOOK_SECRET = `whsec_${randomBytes(24).toString('base64')}`;
recordSecrets(WEBHOOK_SECRET);

let stack: Stack;
let agentmail: AgentMailStandin;
let telnyx: TelnyxStandin;
/** The instance the cold claim bound: it owns an inbox and a number, the webhooks' addressee. */
let claimed: { instanceId: string } | null = null;

async function scrape(): Promise<Exposition> {
  const res = await fetch(`${stack.apiUrl}/metrics`);
  const text = await res.text();
  expect(res.status, text.slice(0, 300)).toBe(200);
  return parseExposition(text);
}

const claim = (maxWaitMs: number) =>
  stack.api(
    'POST',
    '/api/pool/claim',
    { agentName: 'Waiting', maxWaitMs },
    { 'idempotency-key': newKey('wait') },
  );

const waitingGauge = async () => sampleValue(await scrape(), 'convos_claims_waiting');
const claims = (e: Exposition, outcome: string, warm: string) =>
  sampleValue(e, 'convos_claim_duration_seconds_count', { outcome, warm });
const deliveries = (e: Exposition, provider: string, outcome: string) =>
  sampleValue(e, 'convos_webhook_deliveries_total', { provider, outcome });
const nowSeconds = () => Math.floor(Date.now() / 1000);

beforeAll(async () => {
  // An empty pool: every claim waits until the target is raised.
  ({ stack, agentmail, telnyx } = await startMessagingStack({
    webhookSecret: WEBHOOK_SECRET,
    numbers: 10,
    firstNumber: 8_000_000,
    targetIdle: 0,
    maxTotal: 4,
  }));
  await registerAgentMailWebhook({
    apiKey: agentmail.apiKey,
    baseUrl: agentmail.baseUrl,
    url: `${stack.apiUrl}/api/webhooks/agentmail`,
    clientId: `convos-webhook-${stack.poolName}`,
  });
  await setTelnyxWebhookUrl({
    apiKey: telnyx.apiKey,
    baseUrl: telnyx.baseUrl,
    messagingProfileId: 'mp-standin',
    url: `${stack.apiUrl}/api/webhooks/telnyx`,
  });
}, 120_000);

afterAll(async () => {
  await stack?.stop();
  await agentmail?.close();
  await telnyx?.close();
});

describe('a claim waiting on an empty pool', () => {
  it('is 1 in convos_claims_waiting while it waits, 0 after; its 503 is counted as no_idle', async () => {
    const before = await scrape();
    expect(sampleValue(before, 'convos_claims_waiting')).toBe(0);
    const started = Date.now();
    const answer = claim(6000);
    await stack.waitFor('the claim to wait', async () => (await waitingGauge()) === 1, 5000);
    const during = await scrape();
    expect(sampleValue(during, 'convos_claims_waiting')).toBe(1);
    expect(sampleValue(during, 'convos_claims_in_flight')).toBe(1);

    const res = await answer;
    const body = (await res.json()) as { code: string };
    expect(res.status, JSON.stringify(body)).toBe(503);
    expect(body.code).toBe('NO_IDLE_INSTANCE');
    expect(res.headers.get('retry-after')).toBe('5');
    expect(Date.now() - started).toBeGreaterThanOrEqual(6000);

    const after = await scrape();
    expect(sampleValue(after, 'convos_claims_waiting')).toBe(0);
    expect(sampleValue(after, 'convos_claims_in_flight')).toBe(0);
    expect(claims(after, 'no_idle', 'none')).toBe(claims(before, 'no_idle', 'none') + 1);
    // It waited at least 6 s: in the 10 s bucket, not the 5 s one.
    const bucket = (e: Exposition, le: string) =>
      sampleValue(e, 'convos_claim_duration_seconds_bucket', { outcome: 'no_idle', warm: 'none', le });
    expect(bucket(after, '5')).toBe(bucket(before, '5'));
    expect(bucket(after, '10')).toBe(bucket(before, '10') + 1);
    expect(bucket(after, '+Inf')).toBe(bucket(before, '+Inf') + 1);
  }, 30_000);

  it('is served cold once the pool is raised: waiting 1, then 0, counted as bound warm=false', async () => {
    const before = await scrape();
    const answer = claim(60_000);
    await stack.waitFor('the claim to wait', async () => (await waitingGauge()) === 1, 3000);
    // Still waiting a moment later: nothing is idle yet.
    await new Promise((r) => setTimeout(r, 1000));
    expect(await waitingGauge()).toBe(1);

    await stack.declare({ targetIdle: 1 });
    const res = await answer;
    const body = (await res.json()) as { instanceId: string; warm: boolean };
    expect(res.status, JSON.stringify(body)).toBe(200);
    expect(body.warm).toBe(false);
    claimed = body;

    const after = await scrape();
    expect(sampleValue(after, 'convos_claims_waiting')).toBe(0);
    expect(sampleValue(after, 'convos_claims_in_flight')).toBe(0);
    expect(claims(after, 'bound', 'false')).toBe(claims(before, 'bound', 'false') + 1);
    expect(claims(after, 'bound', 'true')).toBe(claims(before, 'bound', 'true'));
  }, 90_000);
});

describe('webhook deliveries', () => {
  /** The claimed instance's inbox and number, from the read model. */
  const addresses = async () => {
    const db = stack.database.db;
    const id = claimed!.instanceId;
    const [inbox] = await db
      .select()
      .from(instanceResources)
      .where(and(eq(instanceResources.instanceId, id), eq(instanceResources.kind, 'inbox')));
    const [number] = await db
      .select()
      .from(phoneNumbers)
      .where(and(eq(phoneNumbers.instanceId, id), eq(phoneNumbers.status, 'assigned')));
    return { inbox: inbox!.ref, number: number!.phoneNumber };
  };

  it('an AgentMail event delivered twice is one accepted and one duplicate; the captured one again is replayed', async () => {
    expect(claimed, 'the cold claim above bound an instance').toBeTruthy();
    const { inbox } = await addresses();
    const before = await scrape();
    const received = await agentmail.receive(inbox, {
      from: 'jane@example.com',
      subject: 'Hi',
      text: 'Hello',
    });
    expect(received.deliveries.map((d) => d.status)).toEqual([200]);
    const retry = await agentmail.deliver(`${stack.apiUrl}/api/webhooks/agentmail`, received.body, {
      svixId: received.svixId,
      secret: WEBHOOK_SECRET,
      timestamp: nowSeconds() + 2,
    });
    expect(retry.status).toBe(200);
    const first = received.deliveries[0]!;
    const replay = await fetch(first.url, { method: 'POST', headers: first.headers, body: first.body });
    expect(replay.status).toBe(409);

    const after = await scrape();
    expect(deliveries(after, 'agentmail', 'accepted')).toBe(deliveries(before, 'agentmail', 'accepted') + 1);
    expect(deliveries(after, 'agentmail', 'duplicate')).toBe(
      deliveries(before, 'agentmail', 'duplicate') + 1,
    );
    expect(deliveries(after, 'agentmail', 'replayed')).toBe(deliveries(before, 'agentmail', 'replayed') + 1);
  });

  it('a Telnyx event delivered twice is one accepted and one duplicate', async () => {
    expect(claimed, 'the cold claim above bound an instance').toBeTruthy();
    const { number } = await addresses();
    const before = await scrape();
    const { delivery } = await telnyx.receiveSms(number, { from: '+15551230000', text: 'On my way' });
    expect(delivery?.status).toBe(200);
    const retry = await telnyx.deliver(`${stack.apiUrl}/api/webhooks/telnyx`, delivery!.body, {
      timestamp: nowSeconds() + 2,
    });
    expect(retry.status).toBe(200);

    const after = await scrape();
    expect(deliveries(after, 'telnyx', 'accepted')).toBe(deliveries(before, 'telnyx', 'accepted') + 1);
    expect(deliveries(after, 'telnyx', 'duplicate')).toBe(deliveries(before, 'telnyx', 'duplicate') + 1);
    // The agentmail series did not move: counted per provider.
    expect(deliveries(after, 'agentmail', 'accepted')).toBe(deliveries(before, 'agentmail', 'accepted'));
  });

  it('an email to an inbox no claimed instance owns is counted as ignored, not accepted', async () => {
    const { inbox } = await addresses();
    let other: string | undefined;
    await stack.waitFor('an inbox of the idle replacement', async () => {
      other = [...agentmail.inventory.items.keys()].find((id) => id !== inbox);
      return other !== undefined;
    });
    const before = await scrape();
    const received = await agentmail.receive(other!, { from: 'x@example.com', subject: 'Hi', text: 'Hello' });
    expect(received.deliveries.map((d) => d.status)).toEqual([200]);
    const after = await scrape();
    expect(deliveries(after, 'agentmail', 'ignored')).toBe(deliveries(before, 'agentmail', 'ignored') + 1);
    expect(deliveries(after, 'agentmail', 'accepted')).toBe(deliveries(before, 'agentmail', 'accepted'));
  });
});
