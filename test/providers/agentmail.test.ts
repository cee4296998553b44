import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AgentMailInboxes, inboxUsername } from '../../activities/providers/agentmail';
import { type ResourceContext, resourceName } from '../../activities/providers/types';
import {
  type ProviderError,
  ProviderNotFoundError,
  ProviderRateLimitedError,
  ProviderRejectedError,
  ProviderUnavailableError,
} from '../../contracts/provider-errors';
import { type AgentMailStandin, startAgentMailStandin } from '../standins/agentmail-standin';

const TIMEOUT_MS = 1500;

const ctx = (pool: string, instanceId: string): ResourceContext => ({
  instanceId,
  poolName: pool,
  name: resourceName(pool, instanceId),
  idempotencyKey: `instance-${instanceId}:create-inbox`,
});

/** Mimics the activity's retry policy: rejections are final, 429 waits Retry-After, the rest retries. */
async function retrying<T>(fn: () => Promise<T>, seen: unknown[] = [], attempts = 10): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (err) {
      seen.push(err);
      if (err instanceof ProviderRejectedError || i >= attempts) throw err;
      await new Promise((r) =>
        setTimeout(r, err instanceof ProviderRateLimitedError ? err.retryAfterMs : 20),
      );
    }
  }
}

function expectNoSecrets(errors: unknown[], secrets: string[]) {
  for (const err of errors) {
    const text = [String(err), (err as Error).stack ?? '', (err as ProviderError).detail ?? ''].join('\n');
    for (const secret of secrets) expect(text).not.toContain(secret);
  }
}

let standin: AgentMailStandin;
let inboxes: AgentMailInboxes;
beforeEach(async () => {
  standin = await startAgentMailStandin({ verifiedDomains: ['mail.example.com'] });
  inboxes = new AgentMailInboxes({ apiKey: standin.apiKey, baseUrl: standin.baseUrl, timeoutMs: TIMEOUT_MS });
});
afterEach(() => standin.close());

describe('inboxUsername', () => {
  it('keeps a valid name and shortens or cleans others with a hash that keeps them apart', () => {
    const uuid = '0b9d6c2e-4f1a-4c39-9d7e-2a6f0c1b8e55';
    expect(inboxUsername(`convos-default-${uuid}`)).toBe(`convos-default-${uuid}`);
    const long = inboxUsername(`convos-a-very-long-pool-name-for-testing-${uuid}`);
    expect(long.length).toBeLessThanOrEqual(64);
    expect(long).toMatch(/^convos-a-very-long-pool-name-for-testing-[a-z0-9-]+-[0-9a-f]{10}$/);
    expect(inboxUsername(`convos-a-very-long-pool-name-for-testing-${uuid.replace(/5$/, '6')}`)).not.toBe(
      long,
    );
    expect(inboxUsername('convos-Pool-X')).toMatch(/^convos-pool-x-[0-9a-f]{10}$/);
    expect(inboxUsername('convos-Pool-X')).not.toBe(inboxUsername('convos-pool-x'));
  });
});

describe('AgentMailInboxes', () => {
  it('creates an inbox named after the instance, with its address as ref and env, and no secret', async () => {
    const c = ctx('p1', 'i-1');
    const created = await inboxes.create(c);

    expect(created).toEqual({
      ref: `${c.name}@agentmail.to`,
      metadata: { email: `${c.name}@agentmail.to` },
      env: { AGENTMAIL_INBOX_ID: `${c.name}@agentmail.to` },
    });
    expect(standin.inventory.items.get(created.ref)).toMatchObject({
      client_id: c.name,
      display_name: c.name,
    });
    expect(JSON.stringify(created)).not.toContain(standin.apiKey);
  });

  it('uses a verified custom domain when configured', async () => {
    const custom = new AgentMailInboxes({
      apiKey: standin.apiKey,
      domain: 'mail.example.com',
      baseUrl: standin.baseUrl,
      timeoutMs: TIMEOUT_MS,
    });
    const created = await custom.create(ctx('p1', 'custom'));
    expect(created.ref).toBe(`${resourceName('p1', 'custom')}@mail.example.com`);
    const unverified = new AgentMailInboxes({
      apiKey: standin.apiKey,
      domain: 'nope.example',
      baseUrl: standin.baseUrl,
    });
    await expect(unverified.create(ctx('p1', 'x'))).rejects.toBeInstanceOf(ProviderRejectedError);
  });

  it('a retry after a lost create response adopts the inbox (client_id): never a second one', async () => {
    const c = ctx('p1', 'i-lost');
    standin.faults.failNext(/^POST \/v0\/inboxes$/, 'lost', 2);
    const seen: unknown[] = [];
    const created = await retrying(() => inboxes.create(c), seen);

    expect(seen).toHaveLength(2);
    for (const err of seen) expect(err).toBeInstanceOf(ProviderUnavailableError);
    expect(standin.inventory.creations.get(c.name)).toBe(1);
    expect(standin.inventory.duplicates()).toEqual([]);
    expect(standin.inventory.list().map((i) => i.inbox_id)).toEqual([created.ref]);
    // And a plain second create (an activity retry after the answer did arrive) is the same inbox.
    expect(await inboxes.create(c)).toEqual(created);
    expect(standin.inventory.creations.get(c.name)).toBe(1);
  });

  it('lists a pool across pages and recovers the full instance id even from a shortened address', async () => {
    const longPool = 'a-rather-long-pool-name-that-will-not-fit';
    const uuids = Array.from({ length: 5 }, (_, i) => `0b9d6c2e-4f1a-4c39-9d7e-2a6f0c1b8e5${i}`);
    const paged = new AgentMailInboxes({
      apiKey: standin.apiKey,
      baseUrl: standin.baseUrl,
      timeoutMs: TIMEOUT_MS,
      pageSize: 2,
    });
    for (const id of uuids) await paged.create(ctx(longPool, id));
    await paged.create(ctx('other', 'x'));
    await paged.create(ctx(`${longPool}x`, 'cousin'));
    // An inbox someone made by hand (no client_id).
    await fetch(`${standin.baseUrl}/inboxes`, {
      method: 'POST',
      headers: { authorization: `Bearer ${standin.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'support' }),
    });
    standin.requests.length = 0;

    const held = await paged.list(longPool);
    expect(held.map((h) => h.instanceId).sort()).toEqual([...uuids].sort());
    for (const h of held) {
      expect(h.name).toBe(resourceName(longPool, h.instanceId ?? ''));
      expect(h.ref.split('@')[0]?.length).toBeLessThanOrEqual(64);
      expect(h.ref).not.toContain(h.instanceId); // the address was shortened; the id came from client_id
    }
    // 8 inboxes at 2 a page.
    expect(standin.requests.filter((r) => r === 'GET /v0/inboxes')).toHaveLength(4);
    expect(await paged.list('nobody')).toEqual([]);
  });

  it('destroys by ref, by name, and treats an inbox already gone as done', async () => {
    const a = ctx('p1', 'a');
    const b = ctx('p1', 'b');
    const createdA = await inboxes.create(a);
    await inboxes.create(b);

    await inboxes.destroy(a, createdA.ref);
    expect(standin.inventory.items.has(createdA.ref)).toBe(false);
    await inboxes.destroy(a, createdA.ref);

    await inboxes.destroy(b, null);
    await inboxes.destroy(b, null);
    expect(standin.inventory.list()).toHaveLength(0);
    expect(standin.requests).toContain(`DELETE /v0/inboxes/${encodeURIComponent(createdA.ref)}`);
  });

  it('rides out 5xx, 429 (waiting Retry-After) and timeouts with retries', async () => {
    const c = ctx('p1', 'faulty');
    standin.faults.failNext(/^POST \/v0\/inboxes$/, '5xx');
    standin.faults.failNext(/^POST \/v0\/inboxes$/, '429');
    standin.faults.failNext(/^POST \/v0\/inboxes$/, 'timeout');
    const seen: unknown[] = [];
    const started = Date.now();
    const created = await retrying(() => inboxes.create(c), seen);

    expect(seen.map((e) => (e as Error).name)).toEqual([
      'ProviderUnavailableError',
      'ProviderRateLimitedError',
      'ProviderUnavailableError',
    ]);
    expect((seen[1] as ProviderRateLimitedError).retryAfterMs).toBe(1000);
    expect((seen[2] as Error).message).toContain('timed out');
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000 + TIMEOUT_MS - 100);
    expect(standin.inventory.list().map((i) => i.inbox_id)).toEqual([created.ref]);

    standin.faults.failNext(/^DELETE \/v0\/inboxes\//, 'lost');
    standin.faults.failNext(/^DELETE \/v0\/inboxes\//, '5xx');
    await retrying(() => inboxes.destroy(c, created.ref));
    standin.faults.failNext(/^GET \/v0\/inboxes$/, '429');
    await retrying(() => inboxes.destroy(c, null));
    expect(standin.inventory.list()).toHaveLength(0);
  });

  it('sends from an inbox; an idempotency key makes a retried send deliver once', async () => {
    const created = await inboxes.create(ctx('p1', 'mailer'));
    const first = await inboxes.sendEmail(created.ref, { to: 'a@example.com', subject: 'Hi', text: 'Hello' });
    expect(standin.sent).toEqual([
      expect.objectContaining({
        messageId: first.messageId,
        inboxId: created.ref,
        to: ['a@example.com'],
        subject: 'Hi',
        text: 'Hello',
      }),
    ]);

    standin.faults.failNext(/\/messages\/send$/, 'lost');
    const message = { to: 'b@example.com', subject: 'Once', text: 'only once' };
    const again = await retrying(() =>
      inboxes.sendEmail(created.ref, message, { idempotencyKey: 'claim-1:welcome' }),
    );
    expect(standin.sent.filter((m) => m.subject === 'Once')).toEqual([
      expect.objectContaining({ messageId: again.messageId }),
    ]);
    await expect(
      inboxes.sendEmail(created.ref, { ...message, text: 'changed' }, { idempotencyKey: 'claim-1:welcome' }),
    ).rejects.toBeInstanceOf(ProviderRejectedError); // 409 is not retryable as such: a caller bug

    await expect(
      inboxes.sendEmail('nobody@agentmail.to', { to: 'a@example.com', subject: 's', text: 't' }),
    ).rejects.toBeInstanceOf(ProviderNotFoundError);
  });

  it('a wrong API key is a non-retryable rejection that never shows the key', async () => {
    const wrongKey = `am_${'0'.repeat(48)}`;
    const bad = new AgentMailInboxes({ apiKey: wrongKey, baseUrl: standin.baseUrl, timeoutMs: TIMEOUT_MS });
    const seen: unknown[] = [];
    await expect(retrying(() => bad.create(ctx('p1', 'x')), seen)).rejects.toBeInstanceOf(
      ProviderRejectedError,
    );
    expect(seen).toHaveLength(1);
    expect((seen[0] as ProviderRejectedError).status).toBe(401);
    for (const call of [
      () => bad.list('p1'),
      () => bad.destroy(ctx('p1', 'x'), 'x@agentmail.to'),
      () => bad.sendEmail('x@agentmail.to', { to: 'a@example.com', subject: 's', text: 't' }),
    ]) {
      await expect(call()).rejects.toBeInstanceOf(ProviderRejectedError);
      seen.push(await call().catch((e) => e));
    }
    expectNoSecrets(seen, [wrongKey, standin.apiKey]);
    expect(standin.inventory.list()).toHaveLength(0);
  });

  it('under random faults: one inbox per instance, never created twice, then none; no key in errors', async () => {
    standin.faults.set({ rate: 0.25, seed: 3, kinds: ['5xx', '429', 'timeout', 'lost'] });
    const seen: unknown[] = [];
    const instances = Array.from({ length: 8 }, (_, i) => ctx('chaos', `c-${i}`));
    const refs = await Promise.all(
      instances.map(async (c) => (await retrying(() => inboxes.create(c), seen, 30)).ref),
    );
    standin.faults.clear();
    expect(
      standin.inventory
        .list()
        .map((i) => i.inbox_id)
        .sort(),
    ).toEqual([...refs].sort());
    expect(standin.inventory.duplicates()).toEqual([]);

    standin.faults.set({ rate: 0.25, seed: 5, kinds: ['5xx', '429', 'timeout', 'lost'] });
    // Half by ref, half by name (as a compensation for an unconfirmed create would).
    await Promise.all(
      instances.map((c, i) => retrying(() => inboxes.destroy(c, i % 2 ? (refs[i] ?? null) : null), seen, 30)),
    );
    standin.faults.clear();
    expect(standin.inventory.list()).toHaveLength(0);
    expect(standin.faults.injected.length).toBeGreaterThan(0);
    expectNoSecrets(seen, [standin.apiKey]);
  });
});

describe('AgentMailInboxes reading an inbox', () => {
  it("lists an inbox's messages newest first, without bodies, page by page and by label", async () => {
    const inbox = (await inboxes.create(ctx('p1', 'reader'))).ref;
    const other = (await inboxes.create(ctx('p1', 'neighbour'))).ref;
    const first = await standin.receive(inbox, {
      from: 'ann@example.com',
      fromName: 'Ann',
      subject: 'Invoice',
      text: 'See attached.',
      attachments: [{ filename: 'invoice.pdf', contentType: 'application/pdf', size: 48_213 }],
    });
    await standin.receive(other, { from: 'eve@example.com', subject: 'Not yours', text: 'hidden' });
    const sent = await inboxes.sendEmail(inbox, { to: 'bob@example.com', subject: 'Hi', text: 'Hello' });
    const reply = await standin.receive(inbox, {
      from: 'ann@example.com',
      subject: 'Re: Invoice',
      text: 'Also this.',
      threadId: first.message.thread_id,
    });

    const all = await inboxes.listMessages(inbox, { limit: 10 });
    expect(all.nextPageToken).toBeNull();
    expect(all.items.map((m) => m.messageId)).toEqual([
      reply.message.message_id,
      sent.messageId,
      first.message.message_id,
    ]);
    expect(all.items[2]).toEqual({
      messageId: first.message.message_id,
      threadId: first.message.thread_id,
      from: 'Ann <ann@example.com>',
      to: [inbox],
      cc: [],
      subject: 'Invoice',
      preview: 'See attached.',
      labels: ['received', 'unread'],
      timestamp: first.message.timestamp,
      attachments: [
        {
          attachmentId: expect.stringMatching(/^att_/),
          filename: 'invoice.pdf',
          contentType: 'application/pdf',
          size: 48_213,
          inline: false,
        },
      ],
    });
    expect(JSON.stringify(all)).not.toContain('hidden');
    expect(all.items[0]).not.toHaveProperty('text');

    // One at a time: our token (the provider's, encoded) leads through every message exactly once.
    const seen: string[] = [];
    let pageToken: string | undefined;
    do {
      const page = await inboxes.listMessages(inbox, { limit: 1, ...(pageToken ? { pageToken } : {}) });
      expect(page.items).toHaveLength(1);
      if (page.nextPageToken) expect(page.nextPageToken).toMatch(/^[A-Za-z0-9_-]+$/);
      seen.push(...page.items.map((m) => m.messageId));
      pageToken = page.nextPageToken ?? undefined;
    } while (pageToken);
    expect(seen).toEqual(all.items.map((m) => m.messageId));

    const unread = await inboxes.listMessages(inbox, { limit: 10, label: 'unread' });
    expect(unread.items.map((m) => m.messageId)).toEqual([
      reply.message.message_id,
      first.message.message_id,
    ]);
    expect(standin.requests).toContain(`GET /v0/inboxes/${encodeURIComponent(inbox)}/messages`);
  });

  it('reads a message and a thread of its inbox only; the text falls back to the HTML and is cut', async () => {
    const inbox = (await inboxes.create(ctx('p1', 'reader'))).ref;
    const other = (await inboxes.create(ctx('p1', 'neighbour'))).ref;
    const html = await standin.receive(inbox, {
      from: 'ann@example.com',
      subject: 'Newsletter',
      text: '',
      html: '<html><head><style>p{}</style></head><body><p>Hello &amp; welcome</p><script>x()</script>Bye&#33;</body></html>',
    });
    const long = await standin.receive(inbox, {
      from: 'ann@example.com',
      subject: 'Long',
      text: 'x'.repeat(25_000),
    });
    const theirs = await standin.receive(other, {
      from: 'eve@example.com',
      subject: 'Theirs',
      text: 'secret',
    });

    const read = await inboxes.getMessage(inbox, html.message.message_id);
    expect(read).toMatchObject({ subject: 'Newsletter', text: 'Hello & welcome\nBye!', truncated: false });
    const cut = await inboxes.getMessage(inbox, long.message.message_id);
    expect(cut.text).toHaveLength(20_000);
    expect(cut.truncated).toBe(true);
    await expect(inboxes.getMessage(inbox, theirs.message.message_id)).rejects.toBeInstanceOf(
      ProviderNotFoundError,
    );
    await expect(inboxes.getThread(inbox, theirs.message.thread_id)).rejects.toBeInstanceOf(
      ProviderNotFoundError,
    );

    // A thread longer than 25 messages: its latest 25, oldest first, each cut shorter.
    let last = long;
    for (let i = 0; i < 26; i++) {
      last = await standin.receive(inbox, {
        from: 'ann@example.com',
        subject: 'Re: Long',
        text: `reply ${i} ${'y'.repeat(5_000)}`,
        threadId: long.message.thread_id,
      });
    }
    const t = await inboxes.getThread(inbox, long.message.thread_id);
    expect(t).toMatchObject({ threadId: long.message.thread_id, messageCount: 27, truncated: true });
    expect(t.messages).toHaveLength(25);
    expect(t.messages.at(-1)?.messageId).toBe(last.message.message_id);
    expect(t.messages[0]?.text?.startsWith('reply 1 ')).toBe(true);
    expect(t.messages.every((m) => (m.text?.length ?? 0) <= 4_000 && m.truncated)).toBe(true);

    const threads = await inboxes.listThreads(inbox, { limit: 10 });
    expect(threads.items.map((x) => x.threadId)).toEqual([long.message.thread_id, html.message.thread_id]);
    expect(threads.items[0]).toMatchObject({ messageCount: 27, lastMessageId: last.message.message_id });
  });

  it('refuses an answer about another inbox than the one asked for, whatever the provider says', async () => {
    const inbox = (await inboxes.create(ctx('p1', 'reader'))).ref;
    const other = (await inboxes.create(ctx('p1', 'neighbour'))).ref;
    const theirs = await standin.receive(other, {
      from: 'eve@example.com',
      subject: 'Theirs',
      text: 'secret',
    });
    // A provider that answered under the wrong path: our adapter checks the inbox_id it got back.
    const misrouting: typeof fetch = (input, init) =>
      fetch(String(input).replace(encodeURIComponent(inbox), encodeURIComponent(other)), init);
    const confused = new AgentMailInboxes({
      apiKey: standin.apiKey,
      baseUrl: standin.baseUrl,
      fetch: misrouting,
    });
    await expect(confused.getMessage(inbox, theirs.message.message_id)).rejects.toBeInstanceOf(
      ProviderNotFoundError,
    );
    await expect(confused.getThread(inbox, theirs.message.thread_id)).rejects.toBeInstanceOf(
      ProviderNotFoundError,
    );
    await expect(confused.listMessages(inbox, { limit: 5 })).rejects.toBeInstanceOf(ProviderNotFoundError);
  });

  it('classifies read faults like every call: 5xx and timeouts unavailable, 429 with its wait', async () => {
    const inbox = (await inboxes.create(ctx('p1', 'reader'))).ref;
    standin.faults.failNext(/GET .*\/messages$/, '5xx');
    await expect(inboxes.listMessages(inbox, { limit: 5 })).rejects.toBeInstanceOf(ProviderUnavailableError);
    standin.faults.failNext(/GET .*\/threads$/, '429');
    const limited = await inboxes.listThreads(inbox, { limit: 5 }).catch((e: unknown) => e);
    expect(limited).toBeInstanceOf(ProviderRateLimitedError);
    expect((limited as ProviderRateLimitedError).retryAfterMs).toBe(1000);
    standin.faults.failNext(/GET .*\/messages$/, 'timeout');
    await expect(inboxes.listMessages(inbox, { limit: 5 })).rejects.toBeInstanceOf(ProviderUnavailableError);
    await expect(inboxes.listMessages(inbox, { limit: 5 })).resolves.toEqual({
      items: [],
      nextPageToken: null,
    });
  });
});
