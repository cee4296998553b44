/**
 * AgentMail: one inbox per instance (https://docs.agentmail.to/api-reference), deleted on destroy; and
 * sending from and reading an instance's inbox with the org-wide key, for the pool's email proxy.
 *
 * Creation is idempotent on AgentMail's side: `client_id` is its idempotency key for creates (the same
 * client_id returns the existing inbox, 200, and creates nothing). We use the resource name as client_id,
 * so a retry after a lost response adopts the inbox, and the full name (hence the instance id) stays
 * readable by `list` even when the address's username had to be shortened.
 */
import { createHash } from 'node:crypto';
import type {
  InboxReader,
  MailListQuery,
  MailMessage,
  MailMessageSummary,
  MailPage,
  MailThread,
  MailThreadSummary,
} from '../../contracts/mail';
import {
  ProviderConflictError,
  ProviderRejectedError,
  ProviderUnavailableError,
} from '../../contracts/provider-errors';
import type { EmailSender } from '../../contracts/resources';
import {
  message,
  messageSummary,
  page,
  providerPageToken,
  type RawMessage,
  type RawPage,
  type RawThread,
  thread,
  threadSummary,
} from './agentmail-mail';
import { HttpClient, ignoreNotFound } from './http';
import {
  type CreatedResource,
  type HeldResource,
  instanceIdFromName,
  type ResourceContext,
  type ResourceProvider,
} from './types';

export const AGENTMAIL_BASE_URL = 'https://api.agentmail.to/v0';

export interface AgentMailInboxesOptions {
  /** The organization's API key (`am_…`). Never given to instances. */
  apiKey: string;
  /** A verified custom domain; AgentMail's default (`agentmail.to`) when absent. */
  domain?: string;
  baseUrl?: string;
  timeoutMs?: number;
  fetch?: typeof fetch;
  /** `limit` asked for per page of `GET /inboxes`. */
  pageSize?: number;
}

/** An inbox as AgentMail returns it. `inbox_id` is the address itself (`user@domain`). */
export interface AgentMailInbox {
  inbox_id: string;
  email?: string;
  pod_id?: string;
  display_name?: string | null;
  client_id?: string | null;
  created_at?: string;
  updated_at?: string;
}

interface ListInboxesResponse {
  count?: number;
  limit?: number | null;
  next_page_token?: string | null;
  inboxes?: AgentMailInbox[];
}

/** Local parts longer than this are not valid addresses (RFC 5321). */
const MAX_USERNAME = 64;
const MAX_PAGES = 10_000;

/**
 * The inbox's username (address local part) for a resource name: lowercase letters, digits, `.`, `_`, `-`.
 * A name that is already such a username is used as is; any other (too long, other characters) gets a
 * readable prefix plus a hash of the whole name, so different names never share a username.
 */
export function inboxUsername(name: string): string {
  const cleaned = name
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/[.-]{2,}/g, '-')
    .replace(/^[._-]+|[._-]+$/g, '');
  if (cleaned === name && cleaned.length > 0 && cleaned.length <= MAX_USERNAME) return cleaned;
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 10);
  const head = cleaned.slice(0, MAX_USERNAME - hash.length - 1).replace(/[._-]+$/, '');
  return head ? `${head}-${hash}` : hash;
}

/** The name we gave an inbox: its client_id, else its display name (without an `<address>` part). */
export function inboxResourceName(inbox: AgentMailInbox): string | null {
  if (inbox.client_id) return inbox.client_id;
  const display = inbox.display_name?.replace(/\s*<[^>]*>\s*$/, '').trim();
  return display || null;
}

export class AgentMailInboxes implements ResourceProvider, EmailSender, InboxReader {
  readonly kind = 'inbox' as const;
  readonly name = 'agentmail';
  private readonly http: HttpClient;
  private readonly pageSize: number;

  constructor(private readonly opts: AgentMailInboxesOptions) {
    if (!opts.apiKey) throw new Error('agentmail: an API key is required');
    this.pageSize = opts.pageSize ?? 100;
    this.http = new HttpClient({
      baseUrl: (opts.baseUrl ?? AGENTMAIL_BASE_URL).replace(/\/+$/, ''),
      provider: 'agentmail',
      headers: () => ({ authorization: `Bearer ${opts.apiKey}` }),
      timeoutMs: opts.timeoutMs,
      fetch: opts.fetch,
    });
  }

  async create(ctx: ResourceContext): Promise<CreatedResource> {
    // A config problem (the pool name), not worth a retry.
    if (ctx.name.includes('@'))
      throw new ProviderRejectedError(`agentmail: a client_id cannot contain "@"`, null);
    // client_id = the name: AgentMail answers a repeated client_id with the inbox it already created.
    const inbox = await this.http.request<AgentMailInbox>('POST', '/inboxes', {
      body: {
        username: inboxUsername(ctx.name),
        ...(this.opts.domain ? { domain: this.opts.domain } : {}),
        display_name: ctx.name,
        client_id: ctx.name,
      },
    });
    if (!inbox?.inbox_id)
      throw new ProviderUnavailableError('agentmail POST /inboxes: answer without inbox_id', null);
    return {
      ref: inbox.inbox_id,
      metadata: { email: inbox.email ?? inbox.inbox_id },
      env: { AGENTMAIL_INBOX_ID: inbox.inbox_id },
    };
  }

  async destroy(ctx: ResourceContext, ref: string | null): Promise<void> {
    if (ref) return this.deleteInbox(ref);
    // Creation never confirmed: find it by the client_id we gave it.
    for (const inbox of await this.listInboxes()) {
      if (inboxResourceName(inbox) === ctx.name) await this.deleteInbox(inbox.inbox_id);
    }
  }

  async list(poolName: string): Promise<HeldResource[]> {
    const held: HeldResource[] = [];
    for (const inbox of await this.listInboxes()) {
      const name = inboxResourceName(inbox);
      const instanceId = name ? instanceIdFromName(poolName, name) : null;
      if (name && instanceId) held.push({ ref: inbox.inbox_id, name, instanceId });
    }
    return held;
  }

  /**
   * Sends from one inbox. With `idempotencyKey` (AgentMail's `Idempotency-Key` header, kept 24 h) a retry
   * returns the first send instead of mailing twice; without it a retried send may be delivered twice.
   */
  async sendEmail(
    inboxId: string,
    message: { to: string; subject: string; text: string },
    options: { idempotencyKey?: string } = {},
  ): Promise<{ messageId: string }> {
    const res = await this.http
      .request<{ message_id?: string; thread_id?: string }>(
        'POST',
        `/inboxes/${encodeURIComponent(inboxId)}/messages/send`,
        {
          body: { to: message.to, subject: message.subject, text: message.text },
          headers: options.idempotencyKey ? { 'idempotency-key': options.idempotencyKey } : undefined,
        },
      )
      .catch((err: unknown) => {
        // 409 here = the idempotency key was used for a different message: a caller bug, not worth a retry.
        if (err instanceof ProviderConflictError)
          throw new ProviderRejectedError(err.message, 409, err.detail);
        throw err;
      });
    if (!res?.message_id)
      throw new ProviderUnavailableError('agentmail send: answer without message_id', null);
    return { messageId: res.message_id };
  }

  /** `GET /inboxes/{inbox_id}/messages`: one page, newest first, without bodies. */
  async listMessages(inboxId: string, query: MailListQuery): Promise<MailPage<MailMessageSummary>> {
    const res = await this.http.request<RawPage>('GET', `${this.inboxPath(inboxId)}/messages`, {
      query: listQuery(query),
    });
    return page(
      res,
      (res?.messages ?? []).map((m) => messageSummary(inboxId, m)),
    );
  }

  /** `GET /inboxes/{inbox_id}/messages/{message_id}`: one message with its text. */
  async getMessage(inboxId: string, messageId: string): Promise<MailMessage> {
    const res = await this.http.request<RawMessage>(
      'GET',
      `${this.inboxPath(inboxId)}/messages/${encodeURIComponent(messageId)}`,
    );
    return message(inboxId, res);
  }

  /** `GET /inboxes/{inbox_id}/threads`: one page, latest activity first. */
  async listThreads(inboxId: string, query: MailListQuery): Promise<MailPage<MailThreadSummary>> {
    const res = await this.http.request<RawPage>('GET', `${this.inboxPath(inboxId)}/threads`, {
      query: listQuery(query),
    });
    return page(
      res,
      (res?.threads ?? []).map((t) => threadSummary(inboxId, t)),
    );
  }

  /** `GET /inboxes/{inbox_id}/threads/{thread_id}`: the thread with its messages. */
  async getThread(inboxId: string, threadId: string): Promise<MailThread> {
    const res = await this.http.request<RawThread>(
      'GET',
      `${this.inboxPath(inboxId)}/threads/${encodeURIComponent(threadId)}`,
    );
    return thread(inboxId, res);
  }

  private inboxPath(inboxId: string): string {
    return `/inboxes/${encodeURIComponent(inboxId)}`;
  }

  private deleteInbox(inboxId: string): Promise<void> {
    return ignoreNotFound(() => this.http.request('DELETE', `/inboxes/${encodeURIComponent(inboxId)}`));
  }

  private async listInboxes(): Promise<AgentMailInbox[]> {
    const all: AgentMailInbox[] = [];
    let pageToken: string | undefined;
    for (let page = 0; page < MAX_PAGES; page++) {
      const res = await this.http.request<ListInboxesResponse>('GET', '/inboxes', {
        query: { limit: this.pageSize, page_token: pageToken },
      });
      for (const inbox of res?.inboxes ?? []) if (inbox?.inbox_id) all.push(inbox);
      pageToken = res?.next_page_token ?? undefined;
      if (!pageToken) break;
    }
    return all;
  }
}

/**
 * The query of a list: `limit`, `page_token` (AgentMail's own, decoded from ours) and one label. One label
 * only: AgentMail's SDKs send a list of labels differently (Python repeats the parameter, Go joins with
 * commas, Node sends JSON); the first two agree on `labels=<one>`.
 */
function listQuery(query: MailListQuery): Record<string, string | number | undefined> {
  return {
    limit: query.limit,
    page_token: query.pageToken === undefined ? undefined : providerPageToken(query.pageToken),
    labels: query.label,
  };
}
