/**
 * Test fixture: the AgentMail API as our adapter uses it, same wire format
 * (https://docs.agentmail.to/api-reference):
 *   POST   /v0/inboxes {username?, domain?, display_name?, client_id?} → 200 Inbox
 *          a client_id seen before returns that inbox (200) and creates nothing (AgentMail's idempotency)
 *   GET    /v0/inboxes?limit&page_token → 200 {count, limit, next_page_token?, inboxes}, newest first
 *   GET    /v0/inboxes/{inbox_id}        → 200 Inbox | 404
 *   DELETE /v0/inboxes/{inbox_id}        → 204 | 404
 *   POST   /v0/inboxes/{inbox_id}/messages/send {to, subject?, text?, html?, cc?, bcc?}
 *          → 200 {message_id, thread_id}; an `Idempotency-Key` seen before returns the first send
 *            (409 if the body differs)
 *   GET    /v0/inboxes/{inbox_id}/messages?limit&page_token&labels (repeated; all must match)
 *          → 200 {count, limit, next_page_token?, messages: MessageItem[]} newest first, without bodies
 *   GET    /v0/inboxes/{inbox_id}/messages/{message_id} → 200 Message (with text/html) | 404
 *   GET    /v0/inboxes/{inbox_id}/threads?limit&page_token&labels → 200 {count, limit, next_page_token?,
 *          threads: ThreadItem[]} latest activity first
 *   GET    /v0/inboxes/{inbox_id}/threads/{thread_id} → 200 Thread with its messages oldest first | 404
 *          (messages and threads of another inbox are not found under this one's path)
 *   POST   /v0/webhooks {url, event_types, inbox_ids?, client_id?} → 200 Webhook with its `secret` (whsec_…);
 *          a client_id seen before returns that webhook
 *   GET    /v0/webhooks → 200 {count, webhooks}; GET|PATCH|DELETE /v0/webhooks/{webhook_id}
 * Errors are `{name, message}` (`{name: 'ValidationError', errors}` for 400); a missing or wrong Bearer
 * key is 401. An address already taken is 403 `IsTakenError`.
 *
 * Inbound mail: `receive(inboxId, {from, subject, text, html?, threadId?, attachments?})` files the message in
 * the inbox (labels `received`, `unread`; a reply when `threadId` names one of its threads) and posts a
 * `message.received` event
 * (https://docs.agentmail.to/events) to every enabled webhook subscribed to it, signed as Svix signs
 * (https://docs.svix.com/receiving/verifying-payloads/how-manual): `svix-id` (the message id, the same on every
 * retry), `svix-timestamp` (Unix seconds, new on each attempt), `svix-signature` = `v1,` + base64 of
 * HMAC-SHA256 over `${id}.${timestamp}.${body}` keyed with the base64 part of the webhook's `whsec_` secret.
 * Signed here with node:crypto, independently of the `svix` package the API verifies with.
 */
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import {
  Inventory,
  type JsonRequest,
  type JsonResponse,
  type ProviderServer,
  startProviderServer,
} from './provider-http';

export interface StandinInbox {
  /** = inbox_id (the Inventory's id). */
  id: string;
  /** The Inventory's name: the client_id, else the address. */
  name: string;
  inbox_id: string;
  email: string;
  pod_id: string;
  display_name: string | null;
  client_id: string | null;
  created_at: string;
  updated_at: string;
  seq: number;
}

export interface SentMessage {
  messageId: string;
  threadId: string;
  inboxId: string;
  to: string[];
  subject: string | null;
  text: string | null;
}

/** A message an inbox holds, as `GET …/messages/{message_id}` answers it (AgentMail's `Message`). */
export interface StandinMessage {
  inbox_id: string;
  thread_id: string;
  message_id: string;
  labels: string[];
  timestamp: string;
  from: string;
  to: string[];
  cc?: string[];
  subject?: string;
  preview?: string;
  text?: string;
  html?: string;
  extracted_text?: string;
  attachments?: Array<{
    attachment_id: string;
    filename?: string;
    size: number;
    content_type?: string;
    content_disposition?: string;
  }>;
  in_reply_to?: string;
  size: number;
  updated_at: string;
  created_at: string;
  /** Order of arrival (the page cursor); not on the wire. */
  seq: number;
}

export interface InboundMail {
  from: string;
  fromName?: string;
  subject: string;
  text: string;
  html?: string;
  /** A reply in this thread of the inbox (else a new thread). */
  threadId?: string;
  attachments?: Array<{ filename: string; contentType: string; size: number; inline?: boolean }>;
}

export interface StandinWebhook {
  webhook_id: string;
  url: string;
  event_types: string[];
  inbox_ids: string[] | null;
  client_id: string | null;
  secret: string;
  enabled: boolean;
  created_at: string;
  updated_at: string;
}

/** One signed delivery the stand-in made (or can make again). */
export interface SignedDelivery {
  url: string;
  body: string;
  headers: Record<string, string>;
  /** The answer of our endpoint (0: unreachable). */
  status: number;
}

/** Svix's signature header value for `body` (one `v1,<base64>`). */
export function svixSignature(secret: string, id: string, timestamp: number, body: string): string {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  return `v1,${createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64')}`;
}

export interface AgentMailStandin extends ProviderServer {
  /** What the adapter's `baseUrl` option takes (`<url>/v0`). */
  baseUrl: string;
  apiKey: string;
  inventory: Inventory<StandinInbox>;
  /** Every message sent, in order. */
  sent: SentMessage[];
  webhooks: Map<string, StandinWebhook>;
  /** What each inbox holds (received and sent), by inbox id, in order of arrival. */
  mail: Map<string, StandinMessage[]>;
  /**
   * An email arrives at `inboxId`: filed in the inbox, and a `message.received` event posted, signed, to every
   * matching webhook. Answers the event, the message and each delivery (so a test can send one again, or tampered).
   */
  receive(
    inboxId: string,
    mail: InboundMail,
  ): Promise<{
    eventId: string;
    svixId: string;
    body: string;
    message: StandinMessage;
    deliveries: SignedDelivery[];
  }>;
  /** Posts `body` to `url` with Svix headers (`timestamp` default now; `secret` default the webhook's). */
  deliver(
    url: string,
    body: string,
    opts: { svixId: string; secret: string; timestamp?: number; headers?: Record<string, string> },
  ): Promise<SignedDelivery>;
}

const USERNAME = /^[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?$/;
const DEFAULT_LIMIT = 10;

const fail = (status: number, name: string, message: string): JsonResponse => ({
  status,
  body: { name, message },
});
const invalid = (path: string, message: string): JsonResponse => ({
  status: 400,
  body: { name: 'ValidationError', errors: [{ path: [path], message }] },
});

function view(i: StandinInbox) {
  return {
    pod_id: i.pod_id,
    inbox_id: i.inbox_id,
    email: i.email,
    display_name: i.display_name,
    client_id: i.client_id,
    updated_at: i.updated_at,
    created_at: i.created_at,
  };
}

function addresses(v: unknown): string[] | null {
  if (v === undefined || v === null) return [];
  if (typeof v === 'string') return [v];
  if (Array.isArray(v) && v.every((a) => typeof a === 'string')) return v as string[];
  return null;
}

const encodeToken = (seq: number) => Buffer.from(`seq:${seq}`).toString('base64url');
function decodeToken(token: string): number | null {
  const m = /^seq:(\d+)$/.exec(Buffer.from(token, 'base64url').toString('utf8'));
  return m ? Number(m[1]) : null;
}

export async function startAgentMailStandin(
  options: {
    apiKey?: string;
    defaultDomain?: string;
    verifiedDomains?: string[];
    /** The secret every created webhook gets (default: a new random `whsec_…` each, as AgentMail does). */
    webhookSecret?: string;
  } = {},
): Promise<AgentMailStandin> {
  const apiKey = options.apiKey ?? `am_${randomBytes(24).toString('hex')}`;
  const defaultDomain = options.defaultDomain ?? 'agentmail.to';
  const domains = new Set([defaultDomain, ...(options.verifiedDomains ?? [])]);
  const podId = randomUUID();
  const inventory = new Inventory<StandinInbox>();
  const sent: SentMessage[] = [];
  const sends = new Map<string, { body: string; response: JsonResponse }>();
  const webhooks = new Map<string, StandinWebhook>();
  const mail = new Map<string, StandinMessage[]>();
  let seq = 0;
  let messageSeq = 0;

  const file = (message: Omit<StandinMessage, 'seq'>): StandinMessage => {
    const stored = { ...message, seq: ++messageSeq };
    const held = mail.get(message.inbox_id) ?? [];
    held.push(stored);
    mail.set(message.inbox_id, held);
    return stored;
  };

  const EVENT_TYPES = new Set(['message.received', 'message.sent', 'message.delivered', 'message.bounced']);
  const webhookView = (w: StandinWebhook) => ({ ...w });
  const webhookRoute = (req: JsonRequest, parts: string[]): JsonResponse => {
    const b = (req.body ?? {}) as Record<string, unknown>;
    const checkTypes = (v: unknown) =>
      Array.isArray(v) && v.length > 0 && v.every((t) => typeof t === 'string' && EVENT_TYPES.has(t));
    if (parts.length === 3) {
      if (req.method === 'GET') {
        const all = [...webhooks.values()].map(webhookView);
        return { status: 200, body: { count: all.length, webhooks: all } };
      }
      if (req.method !== 'POST') return fail(405, 'MethodNotAllowedError', 'Method not allowed');
      if (typeof b.url !== 'string' || !/^https?:\/\//.test(b.url)) return invalid('url', 'Expected a URL');
      if (!checkTypes(b.event_types)) return invalid('event_types', 'Expected a list of event types');
      const clientId = typeof b.client_id === 'string' ? b.client_id : null;
      const existing = clientId ? [...webhooks.values()].find((w) => w.client_id === clientId) : undefined;
      if (existing) return { status: 200, body: webhookView(existing) };
      const now = new Date().toISOString();
      const hook: StandinWebhook = {
        webhook_id: `wh_${randomBytes(8).toString('hex')}`,
        url: b.url,
        event_types: b.event_types as string[],
        inbox_ids: Array.isArray(b.inbox_ids) ? (b.inbox_ids as string[]) : null,
        client_id: clientId,
        secret: options.webhookSecret ?? `whsec_${randomBytes(24).toString('base64')}`,
        enabled: true,
        created_at: now,
        updated_at: now,
      };
      webhooks.set(hook.webhook_id, hook);
      return { status: 200, body: webhookView(hook) };
    }
    const hook = webhooks.get(parts[3] ?? '');
    if (!hook || parts.length !== 4) return fail(404, 'NotFoundError', 'Webhook not found');
    if (req.method === 'GET') return { status: 200, body: webhookView(hook) };
    if (req.method === 'DELETE') {
      webhooks.delete(hook.webhook_id);
      return { status: 204 };
    }
    if (req.method === 'PATCH') {
      if (b.url !== undefined) {
        if (typeof b.url !== 'string' || !/^https?:\/\//.test(b.url)) return invalid('url', 'Expected a URL');
        hook.url = b.url;
      }
      if (b.event_types !== undefined) {
        if (!checkTypes(b.event_types)) return invalid('event_types', 'Expected a list of event types');
        hook.event_types = b.event_types as string[];
      }
      hook.updated_at = new Date().toISOString();
      return { status: 200, body: webhookView(hook) };
    }
    return fail(405, 'MethodNotAllowedError', 'Method not allowed');
  };

  const deliver: AgentMailStandin['deliver'] = async (url, body, opts) => {
    const timestamp = opts.timestamp ?? Math.floor(Date.now() / 1000);
    const headers = {
      'content-type': 'application/json',
      'svix-id': opts.svixId,
      'svix-timestamp': String(timestamp),
      'svix-signature': svixSignature(opts.secret, opts.svixId, timestamp, body),
      ...opts.headers,
    };
    let status = 0;
    try {
      const res = await fetch(url, { method: 'POST', headers, body, signal: AbortSignal.timeout(15_000) });
      status = res.status;
      await res.body?.cancel();
    } catch {
      status = 0;
    }
    return { url, body, headers, status };
  };

  const receive: AgentMailStandin['receive'] = async (inboxId, inbound) => {
    const inbox = inventory.items.get(inboxId);
    if (!inbox) throw new Error(`agentmail stand-in: no inbox ${inboxId}`);
    const eventId = `evt_${randomBytes(10).toString('hex')}`;
    const svixId = `msg_${randomBytes(12).toString('hex')}`;
    const messageId = `<${randomUUID()}@example.com>`;
    const held = mail.get(inbox.inbox_id) ?? [];
    const earlier = inbound.threadId ? held.filter((m) => m.thread_id === inbound.threadId) : [];
    if (inbound.threadId && earlier.length === 0)
      throw new Error(`agentmail stand-in: no thread ${inbound.threadId} in ${inboxId}`);
    const threadId = inbound.threadId ?? randomUUID();
    const now = new Date().toISOString();
    const message = file({
      inbox_id: inbox.inbox_id,
      thread_id: threadId,
      message_id: messageId,
      labels: ['received', 'unread'],
      timestamp: now,
      from: inbound.fromName ? `${inbound.fromName} <${inbound.from}>` : inbound.from,
      to: [inbox.email],
      subject: inbound.subject,
      preview: inbound.text.slice(0, 100),
      text: inbound.text,
      ...(inbound.html ? { html: inbound.html } : {}),
      extracted_text: inbound.text,
      ...(inbound.attachments
        ? {
            attachments: inbound.attachments.map((a) => ({
              attachment_id: `att_${randomBytes(8).toString('hex')}`,
              filename: a.filename,
              size: a.size,
              content_type: a.contentType,
              content_disposition: a.inline ? 'inline' : 'attachment',
            })),
          }
        : {}),
      ...(earlier.length ? { in_reply_to: (earlier.at(-1) as StandinMessage).message_id } : {}),
      size: inbound.text.length,
      created_at: now,
      updated_at: now,
    });
    const body = JSON.stringify({
      type: 'event',
      event_type: 'message.received',
      event_id: eventId,
      message: {
        inbox_id: inbox.inbox_id,
        thread_id: threadId,
        message_id: messageId,
        labels: ['received', 'unread'],
        timestamp: now,
        from: [{ name: inbound.fromName ?? '', email: inbound.from }],
        to: [{ name: inbox.display_name ?? '', email: inbox.email }],
        subject: inbound.subject,
        preview: inbound.text.slice(0, 100),
        text: inbound.text,
        size: inbound.text.length,
        created_at: now,
        updated_at: now,
      },
      thread: {
        inbox_id: inbox.inbox_id,
        thread_id: threadId,
        message_count: earlier.length + 1,
        subject: inbound.subject,
      },
    });
    const deliveries: SignedDelivery[] = [];
    for (const hook of webhooks.values()) {
      if (!hook.enabled || !hook.event_types.includes('message.received')) continue;
      if (hook.inbox_ids && !hook.inbox_ids.includes(inbox.inbox_id)) continue;
      deliveries.push(await deliver(hook.url, body, { svixId, secret: hook.secret }));
    }
    return { eventId, svixId, body, message, deliveries };
  };

  const createInbox = (req: JsonRequest): JsonResponse => {
    const b = (req.body ?? {}) as Record<string, unknown>;
    for (const field of ['username', 'domain', 'display_name', 'client_id']) {
      if (b[field] !== undefined && b[field] !== null && typeof b[field] !== 'string') {
        return invalid(field, 'Expected string');
      }
    }
    const clientId = (b.client_id as string | null | undefined) ?? null;
    if (clientId?.includes('@')) return invalid('client_id', 'client_id cannot contain "@"');
    if (clientId) {
      const existing = inventory.list().find((i) => i.client_id === clientId);
      if (existing) return { status: 200, body: view(existing) };
    }
    const domain = (b.domain as string | undefined) ?? defaultDomain;
    if (!domains.has(domain)) return invalid('domain', `Domain ${domain} is not verified`);
    const username = (b.username as string | undefined) ?? `agent-${randomBytes(5).toString('hex')}`;
    if (!USERNAME.test(username)) return invalid('username', 'Invalid username');
    const email = `${username}@${domain}`;
    if (inventory.items.has(email)) return fail(403, 'IsTakenError', `Inbox ${email} already exists`);
    const now = new Date().toISOString();
    const inbox = inventory.add({
      id: email,
      name: clientId ?? email,
      inbox_id: email,
      email,
      pod_id: podId,
      display_name: (b.display_name as string | undefined) ?? null,
      client_id: clientId,
      created_at: now,
      updated_at: now,
      seq: ++seq,
    });
    return { status: 200, body: view(inbox) };
  };

  const listInboxes = (req: JsonRequest): JsonResponse => {
    const limitParam = req.query.get('limit');
    const limit = limitParam === null ? DEFAULT_LIMIT : Number(limitParam);
    if (!Number.isInteger(limit) || limit < 1) return invalid('limit', 'Expected a positive integer');
    const tokenParam = req.query.get('page_token');
    const before = tokenParam === null ? Number.POSITIVE_INFINITY : decodeToken(tokenParam);
    if (before === null) return invalid('page_token', 'Invalid page token');
    // A cursor (the last inbox seen), so deleting between pages skips nothing.
    const rest = inventory
      .list()
      .filter((i) => i.seq < before)
      .sort((a, b) => b.seq - a.seq);
    const page = rest.slice(0, limit);
    const last = page.at(-1);
    return {
      status: 200,
      body: {
        count: page.length,
        limit,
        ...(rest.length > limit && last ? { next_page_token: encodeToken(last.seq) } : {}),
        inboxes: page.map(view),
      },
    };
  };

  const sendMessage = (req: JsonRequest, inbox: StandinInbox): JsonResponse => {
    const b = (req.body ?? {}) as Record<string, unknown>;
    const to = addresses(b.to);
    const cc = addresses(b.cc);
    const bcc = addresses(b.bcc);
    if (!to || !cc || !bcc) return invalid('to', 'Expected an address or a list of addresses');
    if (to.length + cc.length + bcc.length === 0) return invalid('to', 'At least one recipient is required');
    const key = req.headers['idempotency-key'];
    const fingerprint = JSON.stringify([
      inbox.inbox_id,
      to,
      cc,
      bcc,
      b.subject ?? null,
      b.text ?? null,
      b.html ?? null,
    ]);
    if (typeof key === 'string') {
      const seen = sends.get(key);
      if (seen && seen.body !== fingerprint) {
        return fail(409, 'ConflictError', 'Idempotency-Key was already used with a different message');
      }
      if (seen) return seen.response;
    }
    const message: SentMessage = {
      messageId: `<${randomUUID()}@${inbox.email.split('@')[1]}>`,
      threadId: randomUUID(),
      inboxId: inbox.inbox_id,
      to,
      subject: typeof b.subject === 'string' ? b.subject : null,
      text: typeof b.text === 'string' ? b.text : null,
    };
    sent.push(message);
    const now = new Date().toISOString();
    file({
      inbox_id: inbox.inbox_id,
      thread_id: message.threadId,
      message_id: message.messageId,
      labels: ['sent'],
      timestamp: now,
      from: inbox.display_name ? `${inbox.display_name} <${inbox.email}>` : inbox.email,
      to,
      ...(cc.length ? { cc } : {}),
      ...(message.subject !== null ? { subject: message.subject } : {}),
      ...(message.text !== null ? { preview: message.text.slice(0, 100), text: message.text } : {}),
      ...(typeof b.html === 'string' ? { html: b.html } : {}),
      size: (message.text ?? '').length,
      created_at: now,
      updated_at: now,
    });
    const response: JsonResponse = {
      status: 200,
      body: { message_id: message.messageId, thread_id: message.threadId },
    };
    if (typeof key === 'string') sends.set(key, { body: fingerprint, response });
    return response;
  };

  /** A page of `items` (newest first by seq) after the request's cursor, filtered by every `labels` value. */
  const pageOf = <T extends { seq: number }>(
    req: JsonRequest,
    all: T[],
    labelsOf: (item: T) => string[],
  ): { page: T[]; limit: number; next?: string } | JsonResponse => {
    const limitParam = req.query.get('limit');
    const limit = limitParam === null ? DEFAULT_LIMIT : Number(limitParam);
    if (!Number.isInteger(limit) || limit < 1) return invalid('limit', 'Expected a positive integer');
    const tokenParam = req.query.get('page_token');
    const before = tokenParam === null ? Number.POSITIVE_INFINITY : decodeToken(tokenParam);
    if (before === null) return invalid('page_token', 'Invalid page token');
    const wanted = req.query.getAll('labels');
    const rest = all
      .filter((i) => i.seq < before && wanted.every((l) => labelsOf(i).includes(l)))
      .sort((a, b) => b.seq - a.seq);
    const page = rest.slice(0, limit);
    const last = page.at(-1);
    return { page, limit, ...(rest.length > limit && last ? { next: encodeToken(last.seq) } : {}) };
  };

  const wire = ({ seq: _seq, ...m }: StandinMessage) => m;
  const item = ({ text: _t, html: _h, extracted_text: _e, ...m }: ReturnType<typeof wire>) => m;

  const threadsOf = (inboxId: string) => {
    const byThread = new Map<string, StandinMessage[]>();
    for (const m of mail.get(inboxId) ?? []) {
      const list = byThread.get(m.thread_id) ?? [];
      list.push(m);
      byThread.set(m.thread_id, list);
    }
    return [...byThread.values()].map((messages) => {
      const first = messages[0] as StandinMessage;
      const last = messages.at(-1) as StandinMessage;
      return {
        seq: last.seq,
        messages,
        item: {
          inbox_id: inboxId,
          thread_id: first.thread_id,
          labels: [...new Set(messages.flatMap((m) => m.labels))],
          timestamp: last.timestamp,
          senders: [...new Set(messages.map((m) => m.from))],
          recipients: [...new Set(messages.flatMap((m) => m.to))],
          ...(first.subject !== undefined ? { subject: first.subject } : {}),
          ...(last.preview !== undefined ? { preview: last.preview } : {}),
          attachments: messages.flatMap((m) => m.attachments ?? []),
          last_message_id: last.message_id,
          message_count: messages.length,
          size: messages.reduce((n, m) => n + m.size, 0),
          updated_at: last.updated_at,
          created_at: first.created_at,
        },
      };
    });
  };

  const mailRoute = (req: JsonRequest, inbox: StandinInbox, parts: string[]): JsonResponse => {
    if (req.method !== 'GET') return fail(405, 'MethodNotAllowedError', 'Method not allowed');
    const held = mail.get(inbox.inbox_id) ?? [];
    if (parts[4] === 'messages' && parts.length === 5) {
      const r = pageOf(req, held, (m) => m.labels);
      if ('status' in r) return r;
      return {
        status: 200,
        body: {
          count: r.page.length,
          limit: r.limit,
          ...(r.next ? { next_page_token: r.next } : {}),
          messages: r.page.map((m) => item(wire(m))),
        },
      };
    }
    if (parts[4] === 'messages' && parts.length === 6) {
      const found = held.find((m) => m.message_id === parts[5]);
      if (!found) return fail(404, 'NotFoundError', 'Message not found');
      return { status: 200, body: wire(found) };
    }
    const threads = threadsOf(inbox.inbox_id);
    if (parts[4] === 'threads' && parts.length === 5) {
      const r = pageOf(req, threads, (t) => t.item.labels);
      if ('status' in r) return r;
      return {
        status: 200,
        body: {
          count: r.page.length,
          limit: r.limit,
          ...(r.next ? { next_page_token: r.next } : {}),
          threads: r.page.map((t) => t.item),
        },
      };
    }
    if (parts[4] === 'threads' && parts.length === 6) {
      const found = threads.find((t) => t.item.thread_id === parts[5]);
      if (!found) return fail(404, 'NotFoundError', 'Thread not found');
      return { status: 200, body: { ...found.item, messages: found.messages.map(wire) } };
    }
    return fail(404, 'NotFoundError', 'Route not found');
  };

  const handler = (req: JsonRequest): JsonResponse => {
    const auth = req.headers.authorization;
    if (!auth) return fail(401, 'UnauthorizedError', 'Missing Authorization header');
    if (auth !== `Bearer ${apiKey}`) return fail(401, 'UnauthorizedError', 'Unauthorized');

    const parts = req.path.replace(/\/+$/, '').split('/').map(decodeURIComponent);
    // ['', 'v0', 'inboxes', inbox_id?, 'messages'?, 'send'?]
    if (parts[1] === 'v0' && parts[2] === 'webhooks') return webhookRoute(req, parts);
    if (parts[1] !== 'v0' || parts[2] !== 'inboxes') return fail(404, 'NotFoundError', 'Route not found');
    if (parts.length === 3) {
      if (req.method === 'POST') return createInbox(req);
      if (req.method === 'GET') return listInboxes(req);
      return fail(405, 'MethodNotAllowedError', 'Method not allowed');
    }
    const inbox = inventory.items.get(parts[3] ?? '');
    if (!inbox) return fail(404, 'NotFoundError', 'Inbox not found');
    if (parts.length === 4) {
      if (req.method === 'GET') return { status: 200, body: view(inbox) };
      if (req.method === 'DELETE') {
        inventory.remove(inbox.id);
        return { status: 204 };
      }
      return fail(405, 'MethodNotAllowedError', 'Method not allowed');
    }
    if (parts.length === 6 && parts[4] === 'messages' && parts[5] === 'send' && req.method === 'POST') {
      return sendMessage(req, inbox);
    }
    if (parts.length <= 6 && (parts[4] === 'messages' || parts[4] === 'threads'))
      return mailRoute(req, inbox, parts);
    return fail(404, 'NotFoundError', 'Route not found');
  };

  const server = await startProviderServer(handler);
  return {
    ...server,
    baseUrl: `${server.url}/v0`,
    apiKey,
    inventory,
    sent,
    webhooks,
    mail,
    receive,
    deliver,
  };
}
