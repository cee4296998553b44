/**
 * The providers' webhooks: inbound email (AgentMail, `POST /api/webhooks/agentmail`, Svix-signed) and
 * inbound SMS (Telnyx, `POST /api/webhooks/telnyx`, Ed25519-signed). No API key: the signature over the raw
 * body is the credential (api/webhook-signatures.ts). A verified event is routed to the instance that owns
 * the inbox or number, recorded once per provider event id (`inbound_events`), its content put in the secret
 * store (encrypted; never in a log, the audit trail or Temporal), and handed to a delivery workflow
 * (workflows/inbound.ts) that posts it to the runtime, which puts it into the agent's conversation.
 *
 * Answers: 200 `{ ok, outcome }` once the event is safely recorded (`accepted`), already known (`duplicate`:
 * a provider's retry, re-signed later, delivers nothing again), or nothing to deliver (`ignored`: another
 * event type, or no claimed instance owns the address: the provider must stop retrying). 400 for missing
 * signature headers or a body that is not the provider's JSON, 401 for a bad or stale signature, 409
 * `REPLAYED` for a known event signed no later than the delivery already accepted (a captured request sent
 * again), 404 while the route's secret or key is not configured, 413 over 256 KiB.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { WorkflowExecutionAlreadyStartedError, WorkflowIdReusePolicy } from '@temporalio/client';
import { and, eq, inArray, lt, sql } from 'drizzle-orm';
import type { FastifyRequest } from 'fastify';
import { INBOUND_EVENT_ID_PATTERN, INBOUND_TEXT_MAX } from '../../contracts/runtime';
import { inboundSecretName } from '../../contracts/secrets';
import { inboundDeliveryWorkflowId } from '../../contracts/workflow-ids';
import { inboundEvents, instanceResources, instances, phoneNumbers } from '../../drizzle/schema';
import type { ApiContext } from '../context';
import { ApiError } from '../errors';
import { recordWebhookDelivery, type WebhookOutcome } from '../metrics';
import { errorResponses } from '../schemas';
import {
  type Refused,
  telnyxPublicKey,
  type Verified,
  verifySvix,
  verifyTelnyx,
} from '../webhook-signatures';

export const WEBHOOK_BODY_LIMIT = 256 * 1024;

/** Instance statuses an inbound event is accepted for: claimed, or about to be (again). */
const ROUTABLE = ['claiming', 'pending_acceptance', 'claimed', 'crashed', 'failed'];

const EVENT_ID = new RegExp(INBOUND_EVENT_ID_PATTERN);

/** What the route made of a provider's payload: who it is for, and what the runtime will get. */
interface ParsedEvent {
  eventId: string;
  channel: 'email' | 'sms';
  /** The inbox id or the E.164 number it was sent to. */
  address: string;
  from: string;
  subject: string | null;
  text: string;
  receivedAt: string;
}

/** Format characters an attacker could use to disguise text (zero-width, bidi overrides and isolates). */
const DISGUISE = /[\u200b-\u200f\u202a-\u202e\u2066-\u2069]/;

/** Text without control or disguising characters (tabs and line breaks kept), no lone surrogates, cut to `max`. */
function clean(value: unknown, max: number): string {
  if (typeof value !== 'string') return '';
  let text = '';
  for (const ch of value) {
    const code = ch.codePointAt(0) ?? 0;
    if (code >= 0xd800 && code <= 0xdfff) continue;
    const control = (code < 0x20 && ch !== '\t' && ch !== '\n' && ch !== '\r') || code === 0x7f;
    text += control || DISGUISE.test(ch) ? ' ' : ch;
  }
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

const isoOr = (value: unknown, fallback: string) =>
  typeof value === 'string' && !Number.isNaN(Date.parse(value)) ? new Date(value).toISOString() : fallback;

const bad = (message: string) => new ApiError(400, 'BAD_WEBHOOK', message);

/**
 * AgentMail `message.received` (https://docs.agentmail.to/events): `{type:'event', event_type, event_id,
 * message:{inbox_id, message_id, from, subject, preview, text, extracted_text, timestamp, …}, thread}`.
 * `from` is a string (`Name <addr>`) in the API reference and a list of `{name, email}` in the events page;
 * both are read. Null: another event type.
 */
export function parseAgentMail(body: unknown, now: string): ParsedEvent | null {
  const b = body as Record<string, unknown> | null;
  if (!b || typeof b !== 'object' || typeof b.event_type !== 'string') throw bad('not an AgentMail event');
  if (b.event_type !== 'message.received') return null;
  const m = b.message as Record<string, unknown> | undefined;
  if (!m || typeof m !== 'object' || typeof m.inbox_id !== 'string') throw bad('message.inbox_id is missing');
  const eventId = typeof b.event_id === 'string' ? b.event_id : null;
  if (!eventId || !EVENT_ID.test(eventId)) throw bad('event_id is missing or not a plain id');
  let from = '';
  if (typeof m.from === 'string') from = m.from;
  else if (Array.isArray(m.from)) {
    const first = m.from[0] as { name?: unknown; email?: unknown } | undefined;
    if (typeof first?.email === 'string')
      from = typeof first.name === 'string' && first.name ? `${first.name} <${first.email}>` : first.email;
  }
  const text =
    [m.extracted_text, m.text, m.preview].find(
      (t): t is string => typeof t === 'string' && t.trim() !== '',
    ) ?? '';
  return {
    eventId,
    channel: 'email',
    address: m.inbox_id,
    from: clean(from, 320) || 'an unknown sender',
    subject: clean(m.subject, 300) || null,
    text: clean(text, INBOUND_TEXT_MAX) || '(no text)',
    receivedAt: isoOr(m.timestamp, now),
  };
}

/**
 * Telnyx `message.received` (https://developers.telnyx.com/api-reference/callbacks/inbound-message):
 * `{data:{record_type:'event', id, event_type, occurred_at, payload:{id, direction:'inbound', from:{phone_number},
 * to:[{phone_number}], text, media, …}}}`. Null: another event type (the profile also reports our own sends).
 */
export function parseTelnyx(body: unknown, now: string): ParsedEvent | null {
  const data = (body as { data?: Record<string, unknown> } | null)?.data;
  if (!data || typeof data !== 'object' || typeof data.event_type !== 'string')
    throw bad('not a Telnyx event');
  if (data.event_type !== 'message.received') return null;
  const p = data.payload as Record<string, unknown> | undefined;
  const eventId = typeof data.id === 'string' ? data.id : null;
  if (!eventId || !EVENT_ID.test(eventId)) throw bad('data.id is missing or not a plain id');
  const to = Array.isArray(p?.to) ? (p.to as Array<{ phone_number?: unknown }>) : [];
  const address = to.find((t) => typeof t?.phone_number === 'string')?.phone_number as string | undefined;
  const from = (p?.from as { phone_number?: unknown } | undefined)?.phone_number;
  if (!address || typeof from !== 'string') throw bad('data.payload.from or .to is missing');
  const media = Array.isArray(p?.media) ? p.media.length : 0;
  const text =
    clean(p?.text, INBOUND_TEXT_MAX) || (media > 0 ? `(${media} attachment(s), no text)` : '(no text)');
  return {
    eventId,
    channel: 'sms',
    address,
    from: clean(from, 32),
    subject: null,
    text,
    receivedAt: isoOr(data.occurred_at, now),
  };
}

const Accepted = Type.Object({
  ok: Type.Boolean(),
  outcome: Type.Union([Type.Literal('accepted'), Type.Literal('duplicate'), Type.Literal('ignored')]),
});

export const webhookRoutes: FastifyPluginAsyncTypebox<ApiContext> = async (app, ctx) => {
  // Every delivery's answer, counted (`convos_webhook_deliveries_total{provider,outcome}`, docs/operators.md):
  // a 200 by what the route made of it (a retry of a known event is `duplicate`, not `accepted`), the rest by
  // status.
  const answered = new WeakMap<FastifyRequest, WebhookOutcome>();
  const registry = ctx.metrics;
  if (registry) {
    app.addHook('onResponse', async (request, reply) => {
      const url = request.routeOptions.url ?? '';
      const provider = url.endsWith('/agentmail')
        ? 'agentmail'
        : url.endsWith('/telnyx')
          ? 'telnyx'
          : 'other';
      const code = reply.statusCode;
      const outcome: WebhookOutcome =
        code < 300
          ? (answered.get(request) ?? 'accepted')
          : code === 409
            ? 'replayed'
            : code === 401
              ? 'unauthorized'
              : code < 500
                ? 'rejected'
                : 'failed';
      recordWebhookDelivery(registry, provider, outcome);
    });
  }
  const { db, temporal, config, secrets } = ctx;
  // The signature covers the exact bytes: these routes keep the raw body (this plugin only).
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser(
    'application/json',
    { parseAs: 'buffer', bodyLimit: WEBHOOK_BODY_LIMIT },
    (_req, body, done) => done(null, body),
  );
  const telnyxKey = config.webhooks.telnyxPublicKey ? telnyxPublicKey(config.webhooks.telnyxPublicKey) : null;

  /** The claimed (or about to be) instance owning the inbox or number, or null. */
  async function owner(channel: 'email' | 'sms', address: string): Promise<string | null> {
    const candidates =
      channel === 'email'
        ? db
            .select({ id: instanceResources.instanceId })
            .from(instanceResources)
            .where(
              and(
                eq(instanceResources.kind, 'inbox'),
                eq(instanceResources.status, 'active'),
                sql`lower(${instanceResources.ref}) = ${address.toLowerCase()}`,
              ),
            )
        : db
            .select({ id: phoneNumbers.instanceId })
            .from(phoneNumbers)
            .where(and(eq(phoneNumbers.phoneNumber, address), eq(phoneNumbers.status, 'assigned')));
    const rows = await candidates;
    const ids = rows.map((r) => r.id).filter((id): id is string => typeof id === 'string');
    if (ids.length === 0) return null;
    const [live] = await db
      .select({ id: instances.id })
      .from(instances)
      .where(and(inArray(instances.id, ids), inArray(instances.status, ROUTABLE)));
    return live?.id ?? null;
  }

  function refused(result: Refused): never {
    if (result.reason === 'missing') throw new ApiError(400, 'MISSING_SIGNATURE', result.message);
    throw new ApiError(401, result.reason === 'stale' ? 'STALE_SIGNATURE' : 'BAD_SIGNATURE', result.message);
  }

  async function accept(
    provider: 'agentmail' | 'telnyx',
    verified: Verified,
    event: ParsedEvent | null,
    requestLog: typeof app.log,
  ) {
    if (!event) return { ok: true, outcome: 'ignored' as const };
    const instanceId = await owner(event.channel, event.address);
    if (!instanceId) {
      // Logged without the address, the sender or the text: the event id finds it at the provider.
      requestLog.info({ provider, eventId: event.eventId }, 'inbound event for no claimed instance: ignored');
      return { ok: true, outcome: 'ignored' as const };
    }
    const signedAt = new Date(verified.timestamp * 1000);
    const [inserted] = await db
      .insert(inboundEvents)
      .values({ provider, eventId: event.eventId, instanceId, channel: event.channel, signedAt })
      .onConflictDoNothing()
      .returning({ status: inboundEvents.status });
    let status = inserted?.status;
    if (!inserted) {
      // Known: a provider's retry is signed later than what we accepted; a replayed capture is not.
      const [later] = await db
        .update(inboundEvents)
        .set({ signedAt })
        .where(
          and(
            eq(inboundEvents.provider, provider),
            eq(inboundEvents.eventId, event.eventId),
            lt(inboundEvents.signedAt, signedAt),
          ),
        )
        .returning({ status: inboundEvents.status, instanceId: inboundEvents.instanceId });
      if (!later) throw new ApiError(409, 'REPLAYED', 'this delivery was already accepted');
      if (later.status !== 'pending' || later.instanceId !== instanceId)
        return { ok: true, outcome: 'duplicate' as const };
      status = later.status;
    }
    // New, or still pending (an earlier answer may have been lost before the delivery started): the
    // content and the delivery are (re)made idempotently.
    const { eventId: _id, address: _address, ...content } = event;
    await secrets.put(instanceId, inboundSecretName(provider, event.eventId), JSON.stringify(content));
    try {
      await temporal.workflow.start('inboundDeliveryWorkflow', {
        workflowId: inboundDeliveryWorkflowId(provider, event.eventId),
        taskQueue: config.temporal.taskQueue,
        args: [{ provider, eventId: event.eventId, instanceId }],
        workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
      });
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    }
    requestLog.info(
      { provider, eventId: event.eventId, instanceId, channel: event.channel },
      'inbound event accepted',
    );
    return { ok: true, outcome: inserted ? ('accepted' as const) : ('duplicate' as const), status };
  }

  const parseJson = (raw: Buffer): unknown => {
    try {
      return JSON.parse(raw.toString('utf8'));
    } catch {
      throw bad('the body is not JSON');
    }
  };

  const schema = (description: string) => ({
    tags: ['webhooks'],
    description,
    response: { 200: Accepted, ...errorResponses(400, 401, 404, 409, 413, 415) },
  });

  app.post(
    '/api/webhooks/agentmail',
    {
      bodyLimit: WEBHOOK_BODY_LIMIT,
      schema: schema('AgentMail webhook (Svix-signed): message.received → the owning instance.'),
    },
    async (request) => {
      const secret = config.webhooks.agentmailSecret;
      if (!secret) throw new ApiError(404, 'NOT_CONFIGURED', 'inbound email is not configured on this pool');
      const raw = request.body as Buffer;
      const verified = verifySvix(secret, request.headers, raw);
      if (!verified.ok) refused(verified);
      const event = parseAgentMail(parseJson(raw), new Date().toISOString());
      const { ok, outcome } = await accept('agentmail', verified, event, request.log);
      answered.set(request, outcome);
      return { ok, outcome };
    },
  );

  app.post(
    '/api/webhooks/telnyx',
    {
      bodyLimit: WEBHOOK_BODY_LIMIT,
      schema: schema('Telnyx messaging webhook (Ed25519-signed): message.received → the owning instance.'),
    },
    async (request) => {
      if (!telnyxKey) throw new ApiError(404, 'NOT_CONFIGURED', 'inbound SMS is not configured on this pool');
      const raw = request.body as Buffer;
      const verified = verifyTelnyx(telnyxKey, request.headers, raw);
      if (!verified.ok) refused(verified);
      const event = parseTelnyx(parseJson(raw), new Date().toISOString());
      const { ok, outcome } = await accept('telnyx', verified, event, request.log);
      answered.set(request, outcome);
      return { ok, outcome };
    },
  );
};
