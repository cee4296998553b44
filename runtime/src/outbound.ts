// Email and SMS for the agent, sent by the pool on this instance's behalf (the org-wide AgentMail and
// Telnyx keys stay in the pool). The gateway is LLM-driven, so it never holds the instance token (which
// also authorizes self-destruct): its `send_email` / `send_sms` tools call this small server on loopback
// with the gateway token it already has, and this server forwards to the pool's self-service proxy
// (`POST ${POOL_API_URL}/api/pool/self/email|sms`) with the instance's credentials. The pool picks the
// sender (the instance's own inbox/number) and enforces its own hourly limit; this side validates,
// enforces the per-agent cap, and never retries (a retry could send twice).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { controlCharacterProblem } from '../../contracts/claim.ts';
import { HttpError } from './http-errors.ts';
import { isLoopback, readJson, refuseConnect, requestPath } from './http-request.ts';
import { PAYMENT_PATHS, type PaymentPath, routePayment } from './payments.ts';
import { RateLimit } from './rate-limit.ts';
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

export interface OutboundDeps {
  /** The bearer the gateway's tools present (the gateway token). */
  gatewayToken: string;
  instanceId: string;
  instanceToken: string;
  poolApiUrl: string;
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

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = requestPath(req);
    const payment = (PAYMENT_PATHS as readonly string[]).includes(path);
    if (!payment && path !== '/email' && path !== '/sms')
      throw new HttpError(404, 'not_found', 'no such endpoint');
    if (!isLoopback(req)) throw new HttpError(403, 'loopback_only', 'accepted from loopback only');
    const match = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
    if (!match || !safeEqual(match[1] as string, deps.gatewayToken))
      throw new HttpError(401, 'unauthorized', 'missing or wrong gateway token');
    if (payment) {
      if (!deps.payments) throw new HttpError(409, 'not_enabled', 'payments are not enabled on this pool');
      return routePayment(path as PaymentPath, req, res, {
        instanceId: deps.instanceId,
        instanceToken: deps.instanceToken,
        poolApiUrl: deps.poolApiUrl,
        fetch: doFetch,
        ...(deps.log ? { log: deps.log } : {}),
      });
    }
    const channel: Channel = path === '/email' ? 'email' : 'sms';
    if (req.method !== 'POST') {
      res.setHeader('allow', 'POST');
      throw new HttpError(405, 'method_not_allowed', 'use POST');
    }
    const body = await readJson(req);
    const args = channel === 'email' ? validateEmailArgs(body) : validateSmsArgs(body);
    if (typeof args === 'string') throw new HttpError(400, 'invalid_request', args);
    if (!deps.channels[channel])
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
      poolRes = await doFetch(`${deps.poolApiUrl}/api/pool/self/${channel}`, {
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
