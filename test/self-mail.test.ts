/**
 * An instance reads its own inbox through the pool, against the real stack and the AgentMail stand-in: the
 * start saga creates each instance's inbox at the stand-in (the real adapter), mail arrives there (and the
 * instance's own sends are filed there), and the claimed instance lists and reads it over HTTP with its
 * token. Only its own inbox: another instance's message or thread is 404; hostile ids and queries are 400
 * and reach nobody; provider faults are 503 with Retry-After (502 for a rejection); the hourly limit is a
 * 429 with Retry-After; every read is audited by ids and counts, never a subject, an address or a body.
 */
import http from 'node:http';
import { and, asc, eq, like } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentMailInboxes } from '../activities/providers/agentmail';
import { SecretStore, secretKeyFromBase64 } from '../activities/secret-store';
import type {
  MailMessage,
  MailMessageSummary,
  MailPage,
  MailThread,
  MailThreadSummary,
} from '../contracts/mail';
import { INSTANCE_TOKEN } from '../contracts/secrets';
import { instanceEvents, instanceResources, instances } from '../drizzle/schema';
import { recordSecrets, type Stack, startStack } from './stack';
import { type AgentMailStandin, startAgentMailStandin } from './standins/agentmail-standin';
import { type ClaimBody, type ErrorBody, json, newKey, shared } from './support/helpers';

const READS_PER_HOUR = 60;
const FRIEND = 'friend@example.com';

let stack: Stack;
let agentmail: AgentMailStandin;
let secrets: SecretStore;

beforeAll(async () => {
  agentmail = await startAgentMailStandin();
  recordSecrets(agentmail.apiKey);
  stack = await startStack(
    shared({
      targetIdle: 3,
      maxTotal: 10,
      env: { SELF_MAIL_READS_PER_HOUR: String(READS_PER_HOUR) },
      resourcesFor: () => ({
        enabled: {
          inbox: new AgentMailInboxes({
            apiKey: agentmail.apiKey,
            baseUrl: agentmail.baseUrl,
            timeoutMs: 1500,
          }),
        },
        disabled: [],
      }),
    }),
  );
  secrets = new SecretStore(stack.database.db, secretKeyFromBase64(stack.secretsKey));
  await stack.waitFor('3 idle', async () => (await stack.counts()).idle === 3);
});
afterAll(async () => {
  await stack?.stop();
  await agentmail?.close();
});

interface Claimed {
  id: string;
  inbox: string;
  creds: string;
}

async function claim(name: string): Promise<Claimed> {
  await stack.waitFor('an idle instance', async () => (await stack.counts()).idle > 0);
  const res = await stack.api(
    'POST',
    '/api/pool/claim',
    { agentName: name, allowedRecipients: { email: [FRIEND] } },
    { 'idempotency-key': newKey(name) },
  );
  expect(res.status).toBe(200);
  const { instanceId: id } = await json<ClaimBody>(res);
  await stack.waitFor(`${name} claimed`, async () => {
    const [row] = await stack.database.db.select().from(instances).where(eq(instances.id, id));
    return row?.status === 'claimed';
  });
  const [resource] = await stack.database.db
    .select()
    .from(instanceResources)
    .where(and(eq(instanceResources.instanceId, id), eq(instanceResources.kind, 'inbox')));
  expect(resource?.status).toBe('active');
  return { id, inbox: resource?.ref as string, creds: `${id}:${await secrets.get(id, INSTANCE_TOKEN)}` };
}

const get = (creds: string | null, path: string) =>
  fetch(`${stack.apiUrl}/api/pool/self/mail/${path}`, {
    headers: creds ? { authorization: `Bearer ${creds}` } : {},
  });

/** A GET sent as written: no client-side URL normalization (fetch would resolve `..` and `%2E%2E` itself). */
function rawGet(creds: string, path: string): Promise<{ status: number; body: string }> {
  const url = new URL(stack.apiUrl);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: url.hostname,
        port: url.port,
        method: 'GET',
        path: `/api/pool/self/mail/${path}`,
        headers: { authorization: `Bearer ${creds}` },
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          body += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

async function ok<T>(creds: string, path: string): Promise<T> {
  const res = await get(creds, path);
  expect(res.status, path).toBe(200);
  return json<T>(res);
}

const readEvents = (id: string) =>
  stack.database.db
    .select()
    .from(instanceEvents)
    .where(and(eq(instanceEvents.instanceId, id), like(instanceEvents.eventKey, 'self-mail-read-%')))
    .orderBy(asc(instanceEvents.id));

let a: Claimed;
let b: Claimed;
let invoice: Awaited<ReturnType<AgentMailStandin['receive']>>;
let reply: Awaited<ReturnType<AgentMailStandin['receive']>>;
let theirs: Awaited<ReturnType<AgentMailStandin['receive']>>;
let sentId: string;

const SUBJECT = 'Quarterly invoice for the attic';
const BODY = 'The secret recipe is in the attic, under the third board.';

describe('an instance reads its own inbox through the pool', () => {
  beforeAll(async () => {
    a = await claim('Reader');
    b = await claim('Neighbour');
    invoice = await agentmail.receive(a.inbox, {
      from: 'ann@example.com',
      fromName: 'Ann Example',
      subject: SUBJECT,
      text: BODY,
      attachments: [
        { filename: 'invoice.pdf', contentType: 'application/pdf', size: 48_213 },
        { filename: 'logo.png', contentType: 'image/png', size: 2_048, inline: true },
      ],
    });
    // The instance's own send goes through the pool and is filed in its inbox as sent.
    const send = await fetch(`${stack.apiUrl}/api/pool/self/email`, {
      method: 'POST',
      headers: { authorization: `Bearer ${a.creds}`, 'content-type': 'application/json' },
      body: JSON.stringify({ to: FRIEND, subject: 'Hello', text: 'Hi from the agent' }),
    });
    expect(send.status).toBe(202);
    sentId = (await json<{ messageId: string }>(send)).messageId;
    reply = await agentmail.receive(a.inbox, {
      from: 'ann@example.com',
      subject: `Re: ${SUBJECT}`,
      text: 'One more thing.',
      threadId: invoice.message.thread_id,
    });
    theirs = await agentmail.receive(b.inbox, {
      from: 'eve@example.com',
      subject: 'For the neighbour only',
      text: 'not for the reader',
    });
  });

  it('lists its messages newest first with attachment metadata and no bodies, page by page and unread only', async () => {
    const page = await ok<MailPage<MailMessageSummary>>(a.creds, 'messages');
    expect(page.nextPageToken).toBeNull();
    expect(page.items.map((m) => m.messageId)).toEqual([
      reply.message.message_id,
      sentId,
      invoice.message.message_id,
    ]);
    expect(page.items[2]).toMatchObject({
      threadId: invoice.message.thread_id,
      from: 'Ann Example <ann@example.com>',
      to: [a.inbox],
      subject: SUBJECT,
      labels: ['received', 'unread'],
      attachments: [
        { filename: 'invoice.pdf', contentType: 'application/pdf', size: 48_213, inline: false },
        { filename: 'logo.png', contentType: 'image/png', size: 2_048, inline: true },
      ],
    });
    expect(page.items[2]).not.toHaveProperty('text');
    expect(page.items[1]).toMatchObject({ labels: ['sent'], to: [FRIEND], subject: 'Hello' });
    expect(JSON.stringify(page)).not.toContain('neighbour');

    const seen: string[] = [];
    let token: string | null = null;
    do {
      const p: MailPage<MailMessageSummary> = await ok(
        a.creds,
        `messages?limit=2${token ? `&pageToken=${token}` : ''}`,
      );
      seen.push(...p.items.map((m) => m.messageId));
      token = p.nextPageToken;
    } while (token);
    expect(seen).toEqual(page.items.map((m) => m.messageId));

    const unread = await ok<MailPage<MailMessageSummary>>(a.creds, 'messages?label=unread');
    expect(unread.items.map((m) => m.messageId)).toEqual([
      reply.message.message_id,
      invoice.message.message_id,
    ]);
  });

  it('reads one message with its text, and one thread oldest first', async () => {
    const message = await ok<MailMessage>(
      a.creds,
      `messages/${encodeURIComponent(invoice.message.message_id)}`,
    );
    expect(message).toMatchObject({
      messageId: invoice.message.message_id,
      subject: SUBJECT,
      text: BODY,
      truncated: false,
      inReplyTo: null,
    });
    expect(message.attachments.map((x) => x.filename)).toEqual(['invoice.pdf', 'logo.png']);

    const threads = await ok<MailPage<MailThreadSummary>>(a.creds, 'threads');
    expect(threads.items.map((t) => t.threadId)).toContain(invoice.message.thread_id);
    expect(threads.items.find((t) => t.threadId === invoice.message.thread_id)).toMatchObject({
      messageCount: 2,
      lastMessageId: reply.message.message_id,
    });

    const thread = await ok<MailThread>(a.creds, `threads/${invoice.message.thread_id}`);
    expect(thread.messages.map((m) => m.messageId)).toEqual([
      invoice.message.message_id,
      reply.message.message_id,
    ]);
    expect(thread.messages[1]).toMatchObject({
      text: 'One more thing.',
      inReplyTo: invoice.message.message_id,
    });
    expect(thread.truncated).toBe(false);
  });

  it("never another instance's inbox: its message and thread ids are 404, its mail never listed", async () => {
    for (const path of [
      `messages/${encodeURIComponent(theirs.message.message_id)}`,
      `threads/${theirs.message.thread_id}`,
      'messages/%3Cnobody%40example.com%3E',
      'threads/00000000-0000-4000-8000-000000000000',
    ]) {
      const res = await get(a.creds, path);
      expect(res.status, path).toBe(404);
      expect((await json<ErrorBody>(res)).code).toBe('NOT_FOUND');
    }
    // Under its own token, B reads its own.
    const own = await ok<MailMessage>(b.creds, `messages/${encodeURIComponent(theirs.message.message_id)}`);
    expect(own.text).toBe('not for the reader');
    // Every read went to AgentMail under the reader's own inbox path, never the neighbour's.
    const aReads = (await readEvents(a.id)).length;
    expect(aReads).toBeGreaterThan(0);
  });

  it('hostile ids and queries are 400, reach neither AgentMail nor the audit trail', async () => {
    // Only mail reads count: the pool refilling behind the earlier claims creates and lists inboxes meanwhile.
    const mailReads = () =>
      agentmail.requests.filter((r) => /^GET \/v0\/inboxes\/[^/]+\/(messages|threads)/.test(r)).length;
    const before = mailReads();
    const events = (await readEvents(a.id)).length;
    for (const path of [
      'messages/..',
      'messages/.',
      'messages/%2E%2E',
      'threads/%2e%2e',
      'messages/a%2Fb',
      'threads/..%2F..%2Finboxes',
      'messages/a%5Cb',
      'messages/a%20b',
      'messages/a%00b',
      'messages/a%0D%0Ab',
      'messages/a%25b',
      `messages/${'x'.repeat(256)}`,
      `messages/${'%3C'.repeat(256)}`,
      'messages?limit=0',
      'messages?limit=51',
      'messages?limit=abc',
      'messages?limit=1&limit=2',
      'messages?pageToken=a%2Fb',
      'messages?pageToken=',
      'messages?label=un%20read',
      `messages?inbox=${encodeURIComponent(b.inbox)}`,
      'threads?inboxId=x',
      'messages/abc?inbox=x',
    ]) {
      const res = await rawGet(a.creds, path);
      expect(res.status, path).toBe(400);
      expect((JSON.parse(res.body) as ErrorBody).code, path).toBe('BAD_REQUEST');
    }
    expect(mailReads()).toBe(before);
    expect((await readEvents(a.id)).length).toBe(events);
  });

  it('needs its own token pair (401/403), and a claimed instance (409)', async () => {
    expect((await get(null, 'messages')).status).toBe(401);
    expect((await get(`${a.id}:wrong`, 'messages')).status).toBe(403);
    expect((await get(`${b.id}:${a.creds.split(':')[1]}`, 'messages')).status).toBe(403);
    expect((await get(stack.apiKey, 'messages')).status).toBe(403);

    await stack.waitFor('an idle instance', async () => (await stack.counts()).idle > 0);
    const [idle] = await stack.database.db
      .select()
      .from(instances)
      .where(and(eq(instances.pool, stack.poolName), eq(instances.status, 'idle')));
    const id = (idle as { id: string }).id;
    const res = await get(`${id}:${await secrets.get(id, INSTANCE_TOKEN)}`, 'messages');
    expect(res.status).toBe(409);
    expect(await json(res)).toMatchObject({
      code: 'NOT_CLAIMED',
      error: expect.stringContaining('only a claimed instance may read its inbox'),
    });
  });

  it('provider faults: 503 with Retry-After (its own on a 429), 502 for a rejection; each attempt audited', async () => {
    const cases: Array<[Parameters<AgentMailStandin['faults']['failNext']>[1], number, string | null]> = [
      ['5xx', 503, '5'],
      ['429', 503, '1'],
      ['lost', 503, '5'],
      ['timeout', 503, '5'],
      ['reject', 502, null],
    ];
    for (const [fault, status, retryAfter] of cases) {
      agentmail.faults.failNext(/^GET \/v0\/inboxes\/[^/]+\/messages$/, fault);
      const res = await get(a.creds, 'messages');
      expect(res.status, fault).toBe(status);
      expect(res.headers.get('retry-after'), fault).toBe(retryAfter);
      const body = await json<ErrorBody>(res);
      expect(body.code).toBe(status === 503 ? 'PROVIDER_UNAVAILABLE' : 'PROVIDER_FAILED');
      expect(JSON.stringify(body)).not.toContain(agentmail.apiKey);
    }
    agentmail.faults.failNext(/^GET \/v0\/inboxes\/[^/]+\/threads\/[^/]+$/, '5xx');
    const thread = await get(a.creds, `threads/${invoice.message.thread_id}`);
    expect(thread.status).toBe(503);
    expect(thread.headers.get('retry-after')).toBe('5');
    // A page token the provider does not know is the client's mistake.
    const stale = await get(a.creds, `messages?pageToken=${Buffer.from('garbage').toString('base64url')}`);
    expect(stale.status).toBe(400);
    expect((await json<ErrorBody>(stale)).code).toBe('BAD_PAGE_TOKEN');

    const failed = (await readEvents(a.id)).slice(-7);
    expect(failed.map((e) => (e.details as { failure?: string }).failure)).toEqual([
      'PROVIDER_UNAVAILABLE',
      'PROVIDER_UNAVAILABLE',
      'PROVIDER_UNAVAILABLE',
      'PROVIDER_UNAVAILABLE',
      'PROVIDER_FAILED',
      'PROVIDER_UNAVAILABLE',
      'BAD_PAGE_TOKEN',
    ]);
  });

  it('audits every read by what was read (ids, counts), never a subject, an address or a body', async () => {
    const events = await readEvents(a.id);
    const byKind = (kind: string) => events.filter((e) => (e.details as { read: string }).read === kind);
    expect(byKind('message')[0]).toMatchObject({
      actor: 'instance',
      reason: 'read one message of its inbox',
      details: {
        channel: 'email',
        read: 'message',
        messageId: invoice.message.message_id,
        threadId: invoice.message.thread_id,
        chars: BODY.length,
        truncated: false,
        attachments: 2,
      },
    });
    expect(byKind('messages')[0]).toMatchObject({
      reason: 'read the list of messages of its inbox (3)',
      details: { channel: 'email', read: 'messages', count: 3 },
    });
    expect(byKind('thread')[0]).toMatchObject({
      details: { read: 'thread', threadId: invoice.message.thread_id, count: 2 },
    });
    const trail = JSON.stringify(events);
    for (const secret of [
      SUBJECT,
      BODY,
      'One more thing',
      'ann@example.com',
      'Ann Example',
      'invoice.pdf',
      FRIEND,
    ]) {
      expect(trail).not.toContain(secret);
    }
    // The operator's view of the instance shows the reads with those reasons.
    const detail = await json<{ events: Array<{ reason: string }> }>(
      await stack.api('GET', `/api/pool/instances/${a.id}`),
    );
    expect(detail.events.map((e) => e.reason)).toContain('read one message of its inbox');
  });

  it(`caps each instance at SELF_MAIL_READS_PER_HOUR (${READS_PER_HOUR}), also under concurrency: 429 + Retry-After`, async () => {
    const c = await claim('Greedy');
    const answers = await Promise.all(
      Array.from({ length: READS_PER_HOUR + 10 }, () => get(c.creds, 'threads?limit=5')),
    );
    const statuses = answers.map((r) => r.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(READS_PER_HOUR);
    expect(statuses.filter((s) => s === 429)).toHaveLength(10);
    const limited = answers.find((r) => r.status === 429) as Response;
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(3000);
    expect(await json(limited)).toMatchObject({ code: 'RATE_LIMITED' });
    expect(await readEvents(c.id)).toHaveLength(READS_PER_HOUR);
    // Another instance's allowance is its own.
    expect((await get(b.creds, 'threads')).status).toBe(200);
  });
});
