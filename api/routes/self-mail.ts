/**
 * An instance reads its own inbox through the pool (the AgentMail key is org-wide, so the instance never
 * holds it): lists of messages and threads, one message, one thread, attachments as metadata only. Always
 * the inbox of the instance the token authenticated (looked up here, never taken from the request); the ids
 * it passes are checked as safe path segments and go to the provider only under that inbox's own path, and
 * an answer about another inbox is "not found". Only while claimed, at most SELF_MAIL_READS_PER_HOUR reads
 * per instance per rolling hour, each one an audit event that says what was read (ids and counts, never a
 * subject, address or body). Registered inside `selfRoutes`, whose hook authenticates the instance token.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { type Static, Type } from '@sinclair/typebox';
import { and, asc, eq, gt, like, sql } from 'drizzle-orm';
import {
  type InboxReader,
  MAIL_ID_PATTERN,
  MAIL_LABEL_PATTERN,
  MAIL_LIMIT_PATTERN,
  MAIL_PAGE_DEFAULT,
  MAIL_PAGE_TOKEN_PATTERN,
  type MailMessage,
  type MailMessageSummary,
  type MailThread,
  type MailThreadSummary,
} from '../../contracts/mail';
import {
  ProviderError,
  ProviderNotFoundError,
  ProviderRateLimitedError,
  ProviderRejectedError,
} from '../../contracts/provider-errors';
import { instanceEvents } from '../../drizzle/schema';
import type { ApiContext } from '../context';
import { ApiError } from '../errors';
import { errorResponses, Nullable } from '../schemas';
import { notEnabled, ownAddress, requireClaimed } from '../self-instance';

const HOUR_MS = 3600_000;
/** What a client waits before retrying a provider that is down (a 429 of the provider says its own). */
const PROVIDER_RETRY_S = 5;
const EVENT_PREFIX = 'self-mail-read-';

const MailAttachment = Type.Object(
  {
    attachmentId: Type.String(),
    filename: Nullable(Type.String()),
    contentType: Nullable(Type.String()),
    size: Type.Integer({ minimum: 0, description: 'bytes' }),
    inline: Type.Boolean(),
  },
  { description: 'metadata only: the pool never downloads an attachment' },
);
const messageSummaryFields = {
  messageId: Type.String(),
  threadId: Type.String(),
  from: Type.String(),
  to: Type.Array(Type.String()),
  cc: Type.Array(Type.String()),
  subject: Nullable(Type.String()),
  preview: Nullable(Type.String()),
  labels: Type.Array(Type.String()),
  timestamp: Type.String({ description: 'ISO 8601' }),
  attachments: Type.Array(MailAttachment),
};
const MailMessageSummarySchema = Type.Object(messageSummaryFields);
const MailMessageSchema = Type.Object({
  ...messageSummaryFields,
  text: Nullable(Type.String({ description: 'plain text, at most 20 000 characters (4 000 in a thread)' })),
  truncated: Type.Boolean({ description: 'the text was cut' }),
  inReplyTo: Nullable(Type.String()),
});
const threadSummaryFields = {
  threadId: Type.String(),
  subject: Nullable(Type.String()),
  preview: Nullable(Type.String()),
  senders: Type.Array(Type.String()),
  recipients: Type.Array(Type.String()),
  labels: Type.Array(Type.String()),
  messageCount: Type.Integer({ minimum: 0 }),
  lastMessageId: Nullable(Type.String()),
  timestamp: Type.String({ description: 'ISO 8601, of its latest message' }),
  attachments: Type.Array(MailAttachment),
};
const MailThreadSummarySchema = Type.Object(threadSummaryFields);
const MailThreadSchema = Type.Object({
  ...threadSummaryFields,
  messages: Type.Array(MailMessageSchema, { description: 'oldest first; at most the latest 25' }),
  truncated: Type.Boolean({ description: 'older messages were left out' }),
});
const pageOf = <T extends ReturnType<typeof Type.Object>>(item: T) =>
  Type.Object({
    items: Type.Array(item),
    nextPageToken: Nullable(Type.String({ description: 'pass back as pageToken for the next page' })),
  });

// The schemas are the contract's shapes (contracts/mail.ts), checked both ways at compile time.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : never) : never;
const shapesMatch: [
  Same<Static<typeof MailMessageSummarySchema>, MailMessageSummary>,
  Same<Static<typeof MailMessageSchema>, MailMessage>,
  Same<Static<typeof MailThreadSummarySchema>, MailThreadSummary>,
  Same<Static<typeof MailThreadSchema>, MailThread>,
] = [true, true, true, true];
void shapesMatch;

const ListQuery = Type.Object(
  {
    limit: Type.Optional(
      Type.String({ pattern: MAIL_LIMIT_PATTERN, description: `1–50, default ${MAIL_PAGE_DEFAULT}` }),
    ),
    pageToken: Type.Optional(Type.String({ pattern: MAIL_PAGE_TOKEN_PATTERN })),
    label: Type.Optional(
      Type.String({ pattern: MAIL_LABEL_PATTERN, description: 'only these, e.g. `unread` or `received`' }),
    ),
  },
  { additionalProperties: false },
);
const MailId = Type.String({ pattern: MAIL_ID_PATTERN });
const NoQuery = Type.Object({}, { additionalProperties: false });

type ReadKind = 'messages' | 'message' | 'threads' | 'thread';
const WHAT: Record<ReadKind, string> = {
  messages: 'the list of messages',
  message: 'one message',
  threads: 'the list of threads',
  thread: 'one thread',
};

export const selfMailRoutes: FastifyPluginAsyncTypebox<ApiContext> = async (app, ctx) => {
  const { db, config } = ctx;

  /**
   * Takes one of the instance's hourly reads by writing its audit event up front, under a lock per instance
   * (concurrent reads, from any API replica, cannot take the last slot twice); the trail is the ledger, as for
   * sends. A read that fails keeps its slot: a provider that fails is not hammered.
   */
  async function reserveRead(instanceId: string, kind: ReadKind, ids: Record<string, string>) {
    const limit = config.api.selfMailReadsPerHour;
    return db.transaction(async (tx) => {
      await tx.execute(sql`select pg_advisory_xact_lock(hashtext(${`${EVENT_PREFIX}${instanceId}`}))`);
      const since = new Date(Date.now() - HOUR_MS);
      const recent = await tx
        .select({ at: instanceEvents.at })
        .from(instanceEvents)
        .where(
          and(
            eq(instanceEvents.instanceId, instanceId),
            gt(instanceEvents.at, since),
            like(instanceEvents.eventKey, `${EVENT_PREFIX}%`),
          ),
        )
        .orderBy(asc(instanceEvents.at));
      if (recent.length >= limit) {
        const oldest = recent[recent.length - limit]?.at ?? new Date();
        const retryAfter = Math.max(1, Math.ceil((oldest.getTime() + HOUR_MS - Date.now()) / 1000));
        throw new ApiError(
          429,
          'RATE_LIMITED',
          `this instance may read its inbox at most ${limit} times per hour; retry in ${retryAfter} s`,
          { 'retry-after': String(retryAfter) },
        );
      }
      const [row] = await tx
        .insert(instanceEvents)
        .values({
          instanceId,
          eventKey: `${EVENT_PREFIX}${randomUUID()}`,
          fromStatus: 'claimed',
          toStatus: 'claimed',
          actor: 'instance',
          at: new Date(),
          reason: `reading ${WHAT[kind]} of its inbox`,
          details: { channel: 'email', read: kind, ...ids },
        })
        .returning({ id: instanceEvents.id });
      return (row as { id: number }).id;
    });
  }

  /** Final words of a read's event. Never throws: the answer does not depend on the trail's update. */
  const settle = (eventId: number, reason: string, details: Record<string, unknown>) =>
    db
      .update(instanceEvents)
      .set({ reason, details })
      .where(eq(instanceEvents.id, eventId))
      .catch((err: Error) => app.log.error({ eventId, error: err.message }, 'could not settle a read event'));

  /** The provider's failure as our answer: 404 not found, 503 + Retry-After to retry, 400 a bad page token. */
  function readFailure(err: ProviderError, kind: ReadKind, withPageToken: boolean): ApiError {
    if (err instanceof ProviderNotFoundError) {
      const what =
        kind === 'message'
          ? 'no such message in your inbox'
          : kind === 'thread'
            ? 'no such thread in your inbox'
            : "this instance's inbox is not known to the email provider";
      return new ApiError(404, 'NOT_FOUND', what);
    }
    if (err instanceof ProviderRateLimitedError) {
      const retryAfter = Math.max(1, Math.ceil(err.retryAfterMs / 1000));
      return new ApiError(503, 'PROVIDER_UNAVAILABLE', 'the email provider is rate limiting; retry later', {
        'retry-after': String(retryAfter),
      });
    }
    if (err instanceof ProviderRejectedError) {
      if (withPageToken && (err.status === 400 || err.status === 422))
        return new ApiError(400, 'BAD_PAGE_TOKEN', 'pageToken is not one this inbox handed out; start again');
      return new ApiError(502, 'PROVIDER_FAILED', 'the email provider refused the read');
    }
    return new ApiError(503, 'PROVIDER_UNAVAILABLE', 'the email provider is unavailable; retry later', {
      'retry-after': String(PROVIDER_RETRY_S),
    });
  }

  /**
   * One read: claimed, enabled, its own inbox, a slot of the hourly allowance; then the provider, and the
   * event settled with what came back (how many, how big) or how it failed (only its class).
   */
  async function read<T>(
    instanceId: string,
    kind: ReadKind,
    ids: Record<string, string>,
    withPageToken: boolean,
    call: (mail: InboxReader, inboxId: string) => Promise<T>,
    outcome: (result: T) => { reason: string; details: Record<string, unknown> },
  ): Promise<T> {
    await requireClaimed(db, instanceId, 'read its inbox');
    const mail = ctx.mail;
    if (!mail) throw notEnabled('email', 'email is not enabled on this pool');
    const inboxId = await ownAddress(db, instanceId, 'email');
    const eventId = await reserveRead(instanceId, kind, ids);
    let result: T;
    try {
      result = await call(mail, inboxId);
    } catch (err) {
      if (!(err instanceof ProviderError)) throw err;
      const failure = readFailure(err, kind, withPageToken);
      await settle(eventId, `reading ${WHAT[kind]} of its inbox failed (${failure.code})`, {
        channel: 'email',
        read: kind,
        ...ids,
        failure: failure.code,
      });
      app.log.warn({ instanceId, read: kind, failure: failure.code, error: err.name }, 'inbox read failed');
      throw failure;
    }
    const { reason, details } = outcome(result);
    await settle(eventId, reason, { channel: 'email', read: kind, ...ids, ...details });
    return result;
  }

  const listQuery = (q: Static<typeof ListQuery>) => ({
    limit: q.limit === undefined ? MAIL_PAGE_DEFAULT : Number(q.limit),
    ...(q.pageToken !== undefined ? { pageToken: q.pageToken } : {}),
    ...(q.label !== undefined ? { label: q.label } : {}),
  });
  const errors = errorResponses(400, 401, 403, 404, 409, 429, 502, 503);

  app.get(
    '/api/pool/self/mail/messages',
    {
      schema: {
        tags: ['instance'],
        description:
          "One page of the instance's own inbox, newest first: senders, subjects, previews, labels and attachment metadata, no bodies.",
        querystring: ListQuery,
        response: { 200: pageOf(MailMessageSummarySchema), ...errors },
      },
    },
    async (request) => {
      const q = listQuery(request.query);
      return read(
        request.instanceId as string,
        'messages',
        {},
        q.pageToken !== undefined,
        (mail, inbox) => mail.listMessages(inbox, q),
        (page) => ({
          reason: `read the list of messages of its inbox (${page.items.length})`,
          details: { count: page.items.length, ...(q.label ? { label: q.label } : {}) },
        }),
      );
    },
  );

  app.get(
    '/api/pool/self/mail/messages/:messageId',
    {
      schema: {
        tags: ['instance'],
        description:
          "One message of the instance's own inbox with its plain text (cut to 20 000 characters) and attachment metadata.",
        params: Type.Object({ messageId: MailId }),
        querystring: NoQuery,
        response: { 200: MailMessageSchema, ...errors },
      },
    },
    async (request) => {
      const { messageId } = request.params;
      return read(
        request.instanceId as string,
        'message',
        { messageId },
        false,
        (mail, inbox) => mail.getMessage(inbox, messageId),
        (m) => ({
          reason: 'read one message of its inbox',
          details: {
            threadId: m.threadId,
            chars: m.text?.length ?? 0,
            truncated: m.truncated,
            attachments: m.attachments.length,
          },
        }),
      );
    },
  );

  app.get(
    '/api/pool/self/mail/threads',
    {
      schema: {
        tags: ['instance'],
        description: "One page of the instance's own threads, latest activity first, without bodies.",
        querystring: ListQuery,
        response: { 200: pageOf(MailThreadSummarySchema), ...errors },
      },
    },
    async (request) => {
      const q = listQuery(request.query);
      return read(
        request.instanceId as string,
        'threads',
        {},
        q.pageToken !== undefined,
        (mail, inbox) => mail.listThreads(inbox, q),
        (page) => ({
          reason: `read the list of threads of its inbox (${page.items.length})`,
          details: { count: page.items.length, ...(q.label ? { label: q.label } : {}) },
        }),
      );
    },
  );

  app.get(
    '/api/pool/self/mail/threads/:threadId',
    {
      schema: {
        tags: ['instance'],
        description:
          "One thread of the instance's own inbox: its latest 25 messages oldest first, each with its text cut to 4 000 characters.",
        params: Type.Object({ threadId: MailId }),
        querystring: NoQuery,
        response: { 200: MailThreadSchema, ...errors },
      },
    },
    async (request) => {
      const { threadId } = request.params;
      return read(
        request.instanceId as string,
        'thread',
        { threadId },
        false,
        (mail, inbox) => mail.getThread(inbox, threadId),
        (t) => ({
          reason: `read one thread of its inbox (${t.messages.length} messages)`,
          details: { count: t.messages.length, truncated: t.truncated },
        }),
      );
    },
  );
};
