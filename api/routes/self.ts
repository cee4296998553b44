/**
 * Instance self-service, authenticated by the instance's own token (never the API key): self-destruct, and
 * the email/SMS proxy (reading its own inbox: `self-mail.ts`). AgentMail and Telnyx keys are org-wide, so instances never hold them: the pool sends
 * on the instance's behalf, always from that instance's own inbox or number (looked up here, never taken
 * from the body), only while it is claimed, only to recipients its claimant allowed (so a prompt injection
 * cannot make it a relay), and at most N per rolling hour per instance and M across the pool.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { and, asc, eq, gt, inArray, isNull, like, notLike, or, sql } from 'drizzle-orm';
import {
  ALLOWED_RECIPIENTS_MAX,
  EMAIL_ADDRESS_MAX,
  EMAIL_ADDRESS_MIN,
  EMAIL_ADDRESS_PATTERN,
  PHONE_NUMBER_PATTERN,
} from '../../contracts/claim';
import { ProviderError, ProviderRateLimitedError } from '../../contracts/provider-errors';
import { SELF_DESTRUCT_REASONS, type SelfDestructReason } from '../../contracts/runtime';
import { instanceWorkflowId } from '../../contracts/workflow-ids';
import { instanceEvents, instances } from '../../drizzle/schema';
import { destroySignal, joinAcceptedSignal } from '../../workflows/messages';
import { instanceGuard } from '../auth';
import { isRecipientAllowed } from '../claims';
import type { ApiContext } from '../context';
import { ApiError } from '../errors';
import { findInstance } from '../queries';
import { BODY_OPTIONAL, errorResponses, Ok } from '../schemas';
import { type Channel, LABEL, notEnabled, ownAddress, requireClaimed } from '../self-instance';
import { selfMailRoutes } from './self-mail';

const HOUR_MS = 3600_000;

/** One email address: no display names, lists or separators (the provider would accept several). */
export const EmailAddress = Type.String({
  minLength: EMAIL_ADDRESS_MIN,
  maxLength: EMAIL_ADDRESS_MAX,
  pattern: EMAIL_ADDRESS_PATTERN,
  description: 'one email address',
});
export const PhoneNumber = Type.String({ pattern: PHONE_NUMBER_PATTERN, description: 'one E.164 number' });

/** Whom an instance may send to: in a claim's body and in `PUT /api/pool/instances/:id/recipients`. */
export const AllowedRecipients = Type.Object(
  {
    email: Type.Optional(
      Type.Array(EmailAddress, {
        maxItems: ALLOWED_RECIPIENTS_MAX,
        description: 'addresses the agent may email through the pool (compared case-insensitively)',
      }),
    ),
    sms: Type.Optional(
      Type.Array(PhoneNumber, {
        maxItems: ALLOWED_RECIPIENTS_MAX,
        description: 'numbers the agent may text through the pool',
      }),
    ),
  },
  { additionalProperties: false },
);

export const SelfEmailBody = Type.Object(
  {
    to: EmailAddress,
    subject: Type.String({ minLength: 1, maxLength: 200 }),
    text: Type.String({ minLength: 1, maxLength: 10_000 }),
  },
  { additionalProperties: false },
);

export const SelfSmsBody = Type.Object(
  {
    to: PhoneNumber,
    text: Type.String({ minLength: 1, maxLength: 1_600 }),
  },
  { additionalProperties: false },
);

/** Why the instance asks to go: one of a closed set (the audit trail takes no free text from an instance). */
export const SelfDestructBody = Type.Object(
  {
    reason: Type.Optional(
      Type.Union(
        (Object.keys(SELF_DESTRUCT_REASONS) as SelfDestructReason[]).map((r) => Type.Literal(r)),
        {
          description:
            'why the instance asks to be destroyed; the audit trail records it (default requested)',
        },
      ),
    ),
    instanceId: Type.Optional(
      Type.String({
        maxLength: 200,
        description: 'ignored (older runtimes send it; the token names the instance)',
      }),
    ),
  },
  { additionalProperties: false },
);

/** The runtime's report that the conversation's creator let the agent in. */
export const SelfConversationBody = Type.Object(
  {
    requestId: Type.String({
      minLength: 1,
      maxLength: 200,
      description: "the claim's key: the runtime's provision requestId",
    }),
    conversationId: Type.String({
      pattern: '^[0-9a-fA-F]{16,128}$',
      description: 'the XMTP group id of the conversation the agent joined',
    }),
  },
  { additionalProperties: false },
);

/** Statuses in which a join's acceptance is news: still provisioning, or waiting for it. */
const ACCEPTING = new Set(['claiming', 'pending_acceptance']);

const Sent = Type.Object({ ok: Type.Boolean(), messageId: Type.String() });

/**
 * What the audit trail keeps of a recipient: the email's domain, or the number with its middle masked.
 * Recipients are third parties and the trail is kept forever and shown to operators; the provider's
 * message id (in the event details) finds the full message at the provider if abuse needs looking into.
 */
export function auditRecipient(channel: Channel, to: string): string {
  if (channel === 'email') return to.slice(to.lastIndexOf('@') + 1).toLowerCase();
  return `${to.slice(0, 3)}${'•'.repeat(Math.max(0, to.length - 5))}${to.slice(-2)}`;
}

export const selfRoutes: FastifyPluginAsyncTypebox<ApiContext> = async (app, ctx) => {
  const { db, temporal, config } = ctx;
  app.decorateRequest('instanceId', null);
  app.addHook('onRequest', instanceGuard(ctx.secrets));
  // Reading the instance's own inbox: behind the same guard.
  await app.register(selfMailRoutes, ctx);

  app.post(
    '/api/pool/self-destruct',
    {
      schema: {
        tags: ['instance'],
        description:
          'The instance asks to be destroyed: its conversation ended for it (removed, ended, it left) or something on it asked. The reason goes to the audit trail.',
        body: SelfDestructBody,
        response: { 202: Ok, ...errorResponses(400, 401, 403) },
        ...BODY_OPTIONAL,
      },
      // No body at all (curl -X POST, older runtimes) is the default reason; a JSON `null` is a body, and refused.
      preValidation: async (request) => {
        if (request.body === undefined) request.body = {};
      },
    },
    async (request, reply) => {
      const reason = SELF_DESTRUCT_REASONS[request.body?.reason ?? 'requested'];
      await temporal.workflow
        .getHandle(instanceWorkflowId(request.instanceId as string))
        .signal(destroySignal, { actor: 'instance', reason });
      return reply.code(202).send({ ok: true });
    },
  );

  app.post(
    '/api/pool/self/conversation',
    {
      schema: {
        tags: ['instance'],
        description:
          "The runtime reports that the join of the instance's claim was accepted: a `pending_acceptance` instance becomes `claimed` with this conversation id. 202 when taken (or already claimed with it), 409 NOT_PENDING_ACCEPTANCE otherwise.",
        body: SelfConversationBody,
        response: { 202: Ok, ...errorResponses(400, 401, 403, 409) },
      },
    },
    async (request, reply) => {
      const id = request.instanceId as string;
      const { requestId, conversationId } = request.body;
      const row = await findInstance(db, id);
      const repeat = row?.status === 'claimed' && row.conversationId === conversationId.toLowerCase();
      if (!repeat) {
        if (!row || !ACCEPTING.has(row.status)) {
          throw new ApiError(
            409,
            'NOT_PENDING_ACCEPTANCE',
            `instance is ${row?.status ?? 'unknown'}; only a claim waiting for its join to be accepted takes this`,
          );
        }
        // The workflow keeps it only for its own claim (the read model's claim key may not be written yet).
        await temporal.workflow
          .getHandle(instanceWorkflowId(id))
          .signal(joinAcceptedSignal, { requestId, conversationId: conversationId.toLowerCase() });
      }
      return reply.code(202).send({ ok: true });
    },
  );

  function enabled<T>(sender: T | undefined, channel: Channel): T {
    if (!sender) throw notEnabled(channel, `${LABEL[channel]} is not enabled on this pool`);
    return sender;
  }

  const retryAfterOf = (recent: Array<{ at: Date }>, limit: number) => {
    const oldest = recent[recent.length - limit]?.at ?? new Date();
    return Math.max(1, Math.ceil((oldest.getTime() + HOUR_MS - Date.now()) / 1000));
  };

  /**
   * Takes one slot of the instance's hourly allowance and one of the pool's by writing the audit event up
   * front, under one lock per pool and channel that both counts are taken under, so concurrent sends (from
   * any instance, on any API replica) cannot take the last slot of either twice. The ledger is the audit
   * trail itself, so the limits hold across API replicas and restarts. Failed attempts keep their slot: a
   * provider that fails is not hammered, and a "failed" send may still have gone out.
   *
   * A recipient that is not allowed is written as refused and answers null (nothing is sent). It takes a
   * slot of the instance (an agent trying address after address runs into its limit, and the trail stays
   * bounded), not of the pool: nothing reached a provider.
   */
  async function reserveSlot(
    instanceId: string,
    channel: Channel,
    to: string,
    allowed: boolean,
  ): Promise<number | null> {
    const limit = channel === 'email' ? config.api.selfEmailPerHour : config.api.selfSmsPerHour;
    const poolLimit = channel === 'email' ? config.api.selfEmailPoolPerHour : config.api.selfSmsPoolPerHour;
    const prefix = `self-${channel}-`;
    const refusedPrefix = `${prefix}refused-`;
    return db.transaction(async (tx) => {
      await tx.execute(sql`select pg_advisory_xact_lock(hashtext(${`${prefix}pool:${config.pool.name}`}))`);
      const since = new Date(Date.now() - HOUR_MS);
      const recent = await tx
        .select({ id: instanceEvents.id, at: instanceEvents.at })
        .from(instanceEvents)
        .where(
          and(
            eq(instanceEvents.instanceId, instanceId),
            gt(instanceEvents.at, since),
            like(instanceEvents.eventKey, `${prefix}%`),
          ),
        )
        .orderBy(asc(instanceEvents.at));
      if (recent.length >= limit) {
        const retryAfter = retryAfterOf(recent, limit);
        throw new ApiError(
          429,
          'RATE_LIMITED',
          `this instance may send at most ${limit} ${LABEL[channel]} per hour; retry in ${retryAfter} s`,
          { 'retry-after': String(retryAfter) },
        );
      }
      const event = (key: string, reason: string, details: Record<string, unknown>) =>
        tx
          .insert(instanceEvents)
          .values({
            instanceId,
            eventKey: `${key}${randomUUID()}`,
            fromStatus: 'claimed',
            toStatus: 'claimed',
            actor: 'instance',
            // The app's clock, like the window above (not the database's now()).
            at: new Date(),
            reason,
            details,
          })
          .returning({ id: instanceEvents.id });
      const recipient = auditRecipient(channel, to);
      if (!allowed) {
        await event(
          refusedPrefix,
          `refused to send ${LABEL[channel]} to ${recipient}: not an allowed recipient`,
          {
            channel,
            refused: 'recipient-not-allowed',
          },
        );
        return null;
      }
      // The sends of every instance of this pool that can have sent within the window (one destroyed
      // before it cannot), refusals aside.
      const live = tx
        .select({ id: instances.id })
        .from(instances)
        .where(
          and(
            eq(instances.pool, config.pool.name),
            or(isNull(instances.destroyedAt), gt(instances.destroyedAt, since)),
          ),
        );
      const poolRecent = await tx
        .select({ at: instanceEvents.at })
        .from(instanceEvents)
        .where(
          and(
            inArray(instanceEvents.instanceId, live),
            gt(instanceEvents.at, since),
            like(instanceEvents.eventKey, `${prefix}%`),
            notLike(instanceEvents.eventKey, `${refusedPrefix}%`),
          ),
        )
        .orderBy(asc(instanceEvents.at));
      if (poolRecent.length >= poolLimit) {
        const retryAfter = retryAfterOf(poolRecent, poolLimit);
        throw new ApiError(
          429,
          'POOL_RATE_LIMITED',
          `this pool's agents may send at most ${poolLimit} ${LABEL[channel]} per hour between them; retry in ${retryAfter} s`,
          { 'retry-after': String(retryAfter) },
        );
      }
      const [sending] = await event(prefix, `sending ${LABEL[channel]} to ${recipient}`, { channel });
      return (sending as { id: number }).id;
    });
  }

  /**
   * Final words of a send's audit event. Never throws: after a send, a database hiccup must not become an
   * error the agent would retry (a second send); the event then keeps its "sending …" reason.
   */
  const settle = (eventId: number, reason: string, details: Record<string, unknown>) =>
    db
      .update(instanceEvents)
      .set({ reason, details })
      .where(eq(instanceEvents.id, eventId))
      .catch((err: Error) => app.log.error({ eventId, error: err.message }, 'could not settle a send event'));

  /** Sends through the provider; the audit event ends as "sent …" or "… failed" (no body, no full address). */
  async function send(
    instanceId: string,
    channel: Channel,
    to: string,
    deliver: () => Promise<{ messageId: string }>,
  ) {
    const allowed = await isRecipientAllowed(db, instanceId, channel, to);
    const eventId = await reserveSlot(instanceId, channel, to, allowed);
    if (eventId === null) {
      throw new ApiError(
        403,
        'RECIPIENT_NOT_ALLOWED',
        channel === 'email'
          ? 'this address is not one you may email; ask the person who set you up to allow this address'
          : 'this number is not one you may text; ask the person who set you up to allow this number',
      );
    }
    const recipient = auditRecipient(channel, to);
    let messageId: string;
    try {
      ({ messageId } = await deliver());
    } catch (err) {
      // 4xx but 429 (rejected, not found, conflict): retrying the same message cannot help.
      const kind =
        err instanceof ProviderRateLimitedError
          ? 'rate-limited'
          : err instanceof ProviderError && err.status !== null && err.status >= 400 && err.status < 500
            ? 'rejected'
            : 'unavailable';
      // The error itself stays out of the answer, the trail and the log: only its class.
      await settle(eventId, `${LABEL[channel]} to ${recipient} failed (provider ${kind})`, {
        channel,
        failure: kind,
      });
      app.log.warn(
        { instanceId, channel, failure: kind, error: (err as Error).name },
        'self-service send failed',
      );
      const retry =
        err instanceof ProviderRateLimitedError
          ? { 'retry-after': String(Math.max(1, Math.ceil(err.retryAfterMs / 1000))) }
          : undefined;
      throw new ApiError(
        502,
        'PROVIDER_FAILED',
        kind === 'rejected'
          ? `the ${LABEL[channel]} provider rejected the message`
          : kind === 'rate-limited'
            ? `the ${LABEL[channel]} provider is rate limiting; retry later`
            : `the ${LABEL[channel]} provider is unavailable; retry later`,
        retry,
      );
    }
    await settle(eventId, `sent ${LABEL[channel]} to ${recipient}`, { channel, messageId });
    return { ok: true, messageId };
  }

  app.post(
    '/api/pool/self/email',
    {
      schema: {
        tags: ['instance'],
        description:
          "Sends one plain-text email from the instance's own inbox, to an address its claimant allowed (else 403 RECIPIENT_NOT_ALLOWED).",
        body: SelfEmailBody,
        response: { 202: Sent, ...errorResponses(400, 401, 403, 409, 429, 502) },
      },
    },
    async (request, reply) => {
      const id = request.instanceId as string;
      await requireClaimed(db, id, 'send email');
      const email = enabled(ctx.senders?.email, 'email');
      const inboxId = await ownAddress(db, id, 'email');
      const { to, subject, text } = request.body;
      const result = await send(id, 'email', to, () => email.sendEmail(inboxId, { to, subject, text }));
      return reply.code(202).send(result);
    },
  );

  app.post(
    '/api/pool/self/sms',
    {
      schema: {
        tags: ['instance'],
        description:
          "Sends one SMS from the instance's own phone number, to a number its claimant allowed (else 403 RECIPIENT_NOT_ALLOWED).",
        body: SelfSmsBody,
        response: { 202: Sent, ...errorResponses(400, 401, 403, 409, 429, 502) },
      },
    },
    async (request, reply) => {
      const id = request.instanceId as string;
      await requireClaimed(db, id, 'send SMS');
      const sms = enabled(ctx.senders?.sms, 'sms');
      const from = await ownAddress(db, id, 'sms');
      const { to, text } = request.body;
      const result = await send(id, 'sms', to, () => sms.sendSms(from, { to, text }));
      return reply.code(202).send(result);
    },
  );
};
