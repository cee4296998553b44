// Email and SMS for the agent, sent by the pool on this instance's behalf (the org-wide AgentMail and
// Telnyx keys stay in the pool), and its own inbox, read through the pool the same way. The gateway is
// LLM-driven, so it never holds the instance token (which also authorizes self-destruct): its `send_email`
// / `send_sms` / `email_*` tools call this small server on loopback with the gateway token it already has,
// and this server forwards to the pool's self-service routes (`POST ${POOL_API_URL}/api/pool/self/email|sms`,
// `GET …/api/pool/self/mail/…`) with the instance's credentials. The pool picks the sender and the inbox
// (the instance's own) and enforces its own hourly limits; this side validates, enforces the per-agent
// send cap, and never retries a send (a retry could send twice).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { controlCharacterProblem } from '../../contracts/claim.ts';
import {
  MAIL_ID_PATTERN,
  MAIL_LABEL_PATTERN,
  MAIL_PAGE_MAX,
  MAIL_PAGE_TOKEN_PATTERN,
} from '../../contracts/mail.ts';
import { HttpError } from './http-errors.ts';
import { isLoopback, readJson, refuseConnect, requestPath } from './http-request.ts';
import { PAYMENT_PATHS, type PaymentPath, routePayment } from './payments.ts';
import { RateLimit } from './rate-limit.ts';
import { ScheduleError, type Scheduler, validateScheduleRequest } from './scheduler.ts';
import { safeEqual } from './secrets.ts';

export type Channel = 'email' | 'sms';

export interface EmailArgs {
  to: string;
  subject: string;
  text: string;
}

export interface SmsArgs {
  to: string;
  text: string;
}

const EMAIL_RE = /^[^\s@<>,;"]+@[^\s@<>,;"]+\.[^\s@<>,;"]+$/;

/**
 * No control characters (a CR/LF in a subject or address is header injection, U+0000 breaks storage) and
 * no lone surrogates in any field; the text of a message may hold tabs and line breaks.
 */
function controlProblem(a: Record<string, unknown>, multiline: readonly string[]): string | null {
  for (const [field, value] of Object.entries(a)) {
    if (typeof value !== 'string') continue;
    const problem = controlCharacterProblem(value, multiline.includes(field));
    if (problem) return `${field} ${problem}`;
  }
  return null;
}

/** The same limits as the pool's schema, checked here so the agent gets a clear reason at once. */
export function validateEmailArgs(args: unknown): EmailArgs | string {
  const a = (args ?? {}) as Record<string, unknown>;
  const extra = Object.keys(a).filter((k) => k !== 'to' && k !== 'subject' && k !== 'text');
  if (extra.length) return `unknown field ${extra[0]}: the sender is always your own inbox`;
  if (typeof a.to !== 'string' || a.to.trim().length > 254 || !EMAIL_RE.test(a.to.trim()))
    return 'to must be one email address';
  if (typeof a.subject !== 'string' || !a.subject.trim() || a.subject.trim().length > 200)
    return 'subject must be 1-200 characters';
  if (typeof a.text !== 'string' || !a.text.trim() || a.text.length > 10_000)
    return 'text must be 1-10000 characters';
  const problem = controlProblem(a, ['text']);
  if (problem) return problem;
  return { to: a.to.trim(), subject: a.subject.trim(), text: a.text };
}

export function validateSmsArgs(args: unknown): SmsArgs | string {
  const a = (args ?? {}) as Record<string, unknown>;
  const extra = Object.keys(a).filter((k) => k !== 'to' && k !== 'text');
  if (extra.length) return `unknown field ${extra[0]}: the sender is always your own number`;
  if (typeof a.to !== 'string' || !/^\+[1-9]\d{6,14}$/.test(a.to.trim()))
    return 'to must be one phone number in E.164 form (+15551234567)';
  if (typeof a.text !== 'string' || !a.text.trim() || a.text.length > 1_600)
    return 'text must be 1-1600 characters';
  const problem = controlProblem(a, ['text']);
  if (problem) return problem;
  return { to: a.to.trim(), text: a.text };
}

/** What the agent may read of its own inbox: a page of messages or threads, or one of them by id. */
export interface MailListArgs {
  read: 'messages' | 'threads';
  limit?: number;
  pageToken?: string;
  label?: string;
}
export type MailArgs = MailListArgs | { read: 'message' | 'thread'; id: string };

const MAIL_ID_RE = new RegExp(MAIL_ID_PATTERN, 'u');
const MAIL_TOKEN_RE = new RegExp(MAIL_PAGE_TOKEN_PATTERN, 'u');
const MAIL_LABEL_RE = new RegExp(MAIL_LABEL_PATTERN, 'u');

/** The pool's rules for ids, tokens and limits (contracts/mail.ts), checked here so the agent hears why at once. */
export function validateMailArgs(args: unknown): MailArgs | string {
  const a = (args ?? {}) as Record<string, unknown>;
  const read = a.read;
  if (read === 'message' || read === 'thread') {
    const extra = Object.keys(a).filter((k) => k !== 'read' && k !== 'id');
    if (extra.length) return `unknown field ${extra[0]}: only your own inbox can be read`;
    if (typeof a.id !== 'string' || !MAIL_ID_RE.test(a.id))
      return `id must be a ${read} id exactly as your inbox listed it`;
    return { read, id: a.id };
  }
  if (read !== 'messages' && read !== 'threads') return 'read must be messages, message, threads or thread';
  const extra = Object.keys(a).filter((k) => !['read', 'limit', 'pageToken', 'label'].includes(k));
  if (extra.length) return `unknown field ${extra[0]}: only your own inbox can be read`;
  const out: MailListArgs = { read };
  if (a.limit !== undefined) {
    if (typeof a.limit !== 'number' || !Number.isInteger(a.limit) || a.limit < 1 || a.limit > MAIL_PAGE_MAX)
      return `limit must be a whole number from 1 to ${MAIL_PAGE_MAX}`;
    out.limit = a.limit;
  }
  if (a.pageToken !== undefined) {
    if (typeof a.pageToken !== 'string' || !MAIL_TOKEN_RE.test(a.pageToken))
      return 'pageToken must be the next-page token of a previous list';
    out.pageToken = a.pageToken;
  }
  if (a.label !== undefined) {
    if (typeof a.label !== 'string' || !MAIL_LABEL_RE.test(a.label))
      return 'label must be one label, e.g. unread';
    out.label = a.label;
  }
  return out;
}

/** The pool's path for a read (ids percent-encoded: a Message-ID holds `<`, `>` and `@`). */
export function mailPath(args: MailArgs): string {
  if ('id' in args) return `/api/pool/self/mail/${args.read}s/${encodeURIComponent(args.id)}`;
  const query = new URLSearchParams();
  if (args.limit !== undefined) query.set('limit', String(args.limit));
  if (args.pageToken !== undefined) query.set('pageToken', args.pageToken);
  if (args.label !== undefined) query.set('label', args.label);
  const qs = query.toString();
  return `/api/pool/self/mail/${args.read}${qs ? `?${qs}` : ''}`;
}

export interface OutboundDeps {
  /** The bearer the gateway's tools present (the gateway token). */
  gatewayToken: string;
  instanceId: string;
  instanceToken: string;
  /** The pool's API; none: email, SMS, the inbox and payments answer 409 (the schedule tools still work). */
  poolApiUrl: string | null;
  /** The agent's scheduled messages (`/schedule`, `/scheduled`, `/scheduled/cancel`). */
  scheduler?: Scheduler;
  /** Channels this instance has (an inbox / a number); others answer 409. */
  channels: { email: boolean; sms: boolean };
  /** The pool pays on this instance's behalf (`/payments*`, src/payments.ts); otherwise those answer 409. */
  payments?: boolean;
  /** Per-agent caps, kept here (outside the gateway) so a gateway restart does not reset them. */
  limits?: Partial<Record<Channel, RateLimit>>;
  fetch?: typeof fetch;
  log?: (line: string) => void;
}

/** Sends per channel per hour allowed by the runtime itself (the pool has its own, configurable limit). */
export const AGENT_SENDS_PER_HOUR = 10;
const HOUR = 60 * 60 * 1000;
const POOL_TIMEOUT_MS = 30_000;

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

/** The pool's `{ error }` sentence when it sent one (it never carries secrets), else a generic one. */
/** The pool's refusal: its message (for the agent to relay) and its machine code. */
async function poolError(res: Response): Promise<{ message: string; code: string | null }> {
  try {
    const body = (await res.json()) as { error?: unknown; code?: unknown };
    const code = typeof body.code === 'string' ? body.code : null;
    if (typeof body.error === 'string' && body.error) return { message: body.error.slice(0, 300), code };
    return { message: `the pool answered ${res.status}`, code };
  } catch {
    return { message: `the pool answered ${res.status}`, code: null };
  }
}

/**
 * `POST /email` `{to, subject, text}` and `POST /sms` `{to, text}` (and the payment paths of
 * src/payments.ts) with `Authorization: Bearer <gateway token>`, from loopback only → 200 `{ sent: true, messageId }`, or `{ error, code }`: 400 invalid, 401,
 * 403 not loopback, 409 channel not enabled, 429 per-agent cap, the pool's 4xx passed through (409 not
 * claimed, 429 pool limit, …), 502 pool failure/unreachable.
 */
export function createOutboundServer(deps: OutboundDeps): Server {
  const doFetch = deps.fetch ?? fetch;
  const limits: Record<Channel, RateLimit> = {
    email: deps.limits?.email ?? new RateLimit(AGENT_SENDS_PER_HOUR, HOUR),
    sms: deps.limits?.sms ?? new RateLimit(AGENT_SENDS_PER_HOUR, HOUR),
  };

  /**
   * `POST /mail` `{read, …}` (MailArgs) → 200 `{ ok: true, result }` with the pool's answer, or `{ error,
   * code }`: 400 invalid, 409 not enabled, the pool's 4xx passed through with its sentence (404 no such
   * message, 409 not claimed, 429 its hourly limit), 503 with Retry-After when the provider is down, 502
   * pool failure/unreachable. Reads change nothing, so a caller may retry; this side does not.
   */
  async function readMail(body: unknown, res: ServerResponse): Promise<void> {
    const args = validateMailArgs(body);
    if (typeof args === 'string') throw new HttpError(400, 'invalid_request', args);
    if (!deps.channels.email || !deps.poolApiUrl)
      throw new HttpError(409, 'not_enabled', 'email is not enabled on this instance');
    let poolRes: Response;
    try {
      poolRes = await doFetch(`${deps.poolApiUrl}${mailPath(args)}`, {
        headers: { authorization: `Bearer ${deps.instanceId}:${deps.instanceToken}` },
        signal: AbortSignal.timeout(POOL_TIMEOUT_MS),
      });
    } catch (err) {
      const reason = (err as Error).name === 'TimeoutError' ? 'timed out' : 'unreachable';
      deps.log?.(`[runtime] inbox read: pool ${reason}`);
      throw new HttpError(502, 'pool_unreachable', `the pool is ${reason}; try again later`);
    }
    if (poolRes.ok) {
      const result = await poolRes.json().catch(() => null);
      if (result === null) throw new HttpError(502, 'pool_refused', 'the pool answered without a result');
      return send(res, 200, { ok: true, result });
    }
    const { message } = await poolError(poolRes);
    deps.log?.(`[runtime] inbox read refused by the pool (${poolRes.status})`);
    if (poolRes.status === 401 || poolRes.status === 403)
      throw new HttpError(502, 'pool_refused', "the pool refused this instance's credentials");
    if (poolRes.status === 503) {
      const retryAfter = poolRes.headers.get('retry-after');
      if (retryAfter && /^\d{1,6}$/.test(retryAfter)) res.setHeader('retry-after', retryAfter);
      throw new HttpError(503, 'provider_unavailable', message);
    }
    throw new HttpError(
      poolRes.status >= 400 && poolRes.status < 500 ? poolRes.status : 502,
      'pool_refused',
      message,
    );
  }

  /**
   * `POST /schedule` `{conversation, text, at | inMinutes}` → `{ scheduled: {id, dueAt} }`, `POST /scheduled`
   * `{conversation}` → `{ messages: [{id, dueAt, text}] }`, `POST /scheduled/cancel` `{conversation, id}` →
   * `{ cancelled: {id, dueAt} }`; refusals are `{ error, code }` with a sentence for the agent (400, 404,
   * 409 too close to another, 429 too many). The conversation is the tool's own (the plugin takes it from the
   * turn, never from the model), so one conversation never sees or cancels another's.
   */
  function routeSchedule(path: string, body: unknown, res: ServerResponse) {
    const scheduler = deps.scheduler;
    if (!scheduler) throw new HttpError(409, 'not_enabled', 'scheduling is not enabled on this instance');
    const b = (body ?? {}) as Record<string, unknown>;
    const view = (m: { id: string; dueAt: string }) => ({ id: m.id, dueAt: m.dueAt });
    try {
      if (path === '/schedule') {
        const request = validateScheduleRequest(body);
        if (typeof request === 'string') throw new HttpError(400, 'invalid_request', request);
        return send(res, 200, { scheduled: view(scheduler.schedule(request)) });
      }
      const conversation = validateScheduleRequest({ conversation: b.conversation, text: 'x', inMinutes: 1 });
      if (typeof conversation === 'string')
        throw new HttpError(400, 'invalid_request', 'conversation must be this conversation');
      if (path === '/scheduled')
        return send(res, 200, {
          messages: scheduler.list(conversation.conversation).map((m) => ({ ...view(m), text: m.text })),
        });
      if (typeof b.id !== 'string' || !/^sch_[0-9a-f]{16}$/.test(b.id))
        throw new HttpError(400, 'invalid_request', 'id must be an id list_scheduled gave');
      return send(res, 200, { cancelled: view(scheduler.cancel(conversation.conversation, b.id)) });
    } catch (err) {
      if (err instanceof ScheduleError) throw new HttpError(err.status, err.code, err.message);
      throw err;
    }
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = requestPath(req);
    const payment = (PAYMENT_PATHS as readonly string[]).includes(path);
    const schedule = path === '/schedule' || path === '/scheduled' || path === '/scheduled/cancel';
    if (!payment && !schedule && path !== '/email' && path !== '/sms' && path !== '/mail')
      throw new HttpError(404, 'not_found', 'no such endpoint');
    if (!isLoopback(req)) throw new HttpError(403, 'loopback_only', 'accepted from loopback only');
    const match = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
    if (!match || !safeEqual(match[1] as string, deps.gatewayToken))
      throw new HttpError(401, 'unauthorized', 'missing or wrong gateway token');
    const poolApiUrl = deps.poolApiUrl;
    if (payment) {
      if (!deps.payments || !poolApiUrl)
        throw new HttpError(409, 'not_enabled', 'payments are not enabled on this pool');
      return routePayment(path as PaymentPath, req, res, {
        instanceId: deps.instanceId,
        instanceToken: deps.instanceToken,
        poolApiUrl,
        fetch: doFetch,
        ...(deps.log ? { log: deps.log } : {}),
      });
    }
    if (req.method !== 'POST') {
      res.setHeader('allow', 'POST');
      throw new HttpError(405, 'method_not_allowed', 'use POST');
    }
    const body = await readJson(req);
    if (schedule) return routeSchedule(path, body, res);
    if (path === '/mail') return readMail(body, res);
    const channel: Channel = path === '/email' ? 'email' : 'sms';
    const args = channel === 'email' ? validateEmailArgs(body) : validateSmsArgs(body);
    if (typeof args === 'string') throw new HttpError(400, 'invalid_request', args);
    if (!deps.channels[channel] || !poolApiUrl)
      throw new HttpError(
        409,
        'not_enabled',
        `${channel === 'email' ? 'email' : 'SMS'} is not enabled on this instance`,
      );
    if (!limits[channel].take()) {
      throw new HttpError(
        429,
        'rate_limited',
        `the hourly ${channel === 'email' ? 'email' : 'SMS'} limit for this agent is reached`,
      );
    }

    let poolRes: Response;
    try {
      poolRes = await doFetch(`${poolApiUrl}/api/pool/self/${channel}`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${deps.instanceId}:${deps.instanceToken}`,
          'content-type': 'application/json',
        },
        body: JSON.stringify(args),
        signal: AbortSignal.timeout(POOL_TIMEOUT_MS),
      });
    } catch (err) {
      const reason = (err as Error).name === 'TimeoutError' ? 'timed out' : 'unreachable';
      deps.log?.(`[runtime] ${channel} send: pool ${reason}`);
      throw new HttpError(
        502,
        'pool_unreachable',
        `the pool is ${reason}; the message may not have been sent`,
      );
    }
    if (poolRes.ok) {
      const { messageId } = (await poolRes.json().catch(() => ({}))) as { messageId?: unknown };
      deps.log?.(`[runtime] ${channel} sent through the pool`);
      return send(res, 200, { sent: true, messageId: typeof messageId === 'string' ? messageId : null });
    }
    const { message, code } = await poolError(poolRes);
    deps.log?.(`[runtime] ${channel} send refused by the pool (${poolRes.status})`);
    // A recipient the claimant did not allow: the agent must hear why, to tell the conversation.
    if (poolRes.status === 403 && code === 'RECIPIENT_NOT_ALLOWED')
      throw new HttpError(403, 'recipient_not_allowed', message);
    // The pool refusing our own credentials is the runtime's problem, not the agent's request.
    if (poolRes.status === 401 || poolRes.status === 403)
      throw new HttpError(502, 'pool_refused', "the pool refused this instance's credentials");
    throw new HttpError(
      poolRes.status >= 400 && poolRes.status < 500 ? poolRes.status : 502,
      'pool_refused',
      message,
    );
  }

  const server = createServer((req, res) => {
    route(req, res).catch((err: unknown) => {
      if (err instanceof HttpError) return send(res, err.status, { error: err.message, code: err.code });
      deps.log?.(`[runtime] outbound ${req.url} failed: ${(err as Error).message}`);
      if (!res.headersSent) send(res, 500, { error: 'internal error', code: 'internal' });
      else res.end();
    });
  });
  server.on('connect', refuseConnect);
  return server;
}
