import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ChannelState, ConvosService, ProvisionRequest } from './service.js';
import { ProvisionError } from './service.js';

/**
 * The gateway HTTP routes the control server calls (runtime/CONTRACT.md):
 *   POST /convos/provision  → { conversationId, inviteUrl, joined, status }
 *   GET  /convos/status     → { state: "starting" | "ready" | "error", error?, lastActivityAt: ISO | null,
 *                               conversation: { requestId, conversationId, status, exit } | null }
 *   POST /convos/send       { conversationId, text } → { messageId }: a message the agent scheduled, sent
 *                           into its own conversation (404 unknown_conversation, 410 conversation_ended,
 *                           503 not started, 502 send_failed when the network refused it)
 * They are registered with auth "plugin" (public to the gateway), so each checks the gateway token.
 */

export const PROVISION_PATH = '/convos/provision';
export const STATUS_PATH = '/convos/status';
export const SEND_PATH = '/convos/send';
/** The longest scheduled text (runtime/src/scheduler.ts SCHEDULED_TEXT_MAX). */
const MAX_SEND_CHARS = 2_000;
const MAX_BODY_BYTES = 256 * 1024;

export interface RouteDeps {
  /** The bearer the caller must present; undefined = not configured, every call is refused. */
  token: () => string | undefined;
  /** The running service, if the channel has started. */
  current: () => ConvosService | undefined;
  /** The service, created and started on demand (provision may arrive before startAccount). */
  ensure: () => Promise<ConvosService>;
  /** Why the channel is disabled, if it is. */
  disabledReason: () => string | undefined;
  log: (msg: string) => void;
}

function send(res: ServerResponse, status: number, body: unknown): true {
  res.statusCode = status;
  res.setHeader('content-type', 'application/json; charset=utf-8');
  res.setHeader('cache-control', 'no-store');
  res.end(JSON.stringify(body));
  return true;
}

function fail(res: ServerResponse, status: number, code: string, error: string): true {
  return send(res, status, { error, code });
}

export function authorized(req: IncomingMessage, expected: string | undefined): boolean {
  if (!expected) return false;
  const header = req.headers.authorization ?? '';
  const m = /^Bearer\s+(.+)$/i.exec(header.trim());
  if (!m?.[1]) return false;
  const a = Buffer.from(m[1]);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const b = chunk as Buffer;
    size += b.length;
    if (size > MAX_BODY_BYTES)
      throw new ProvisionError(413, 'body_too_large', `body exceeds ${MAX_BODY_BYTES} bytes`);
    chunks.push(b);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export function parseProvisionBody(text: string): ProvisionRequest {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new ProvisionError(400, 'invalid_json', 'body is not valid JSON');
  }
  if (!body || typeof body !== 'object' || Array.isArray(body)) {
    throw new ProvisionError(400, 'invalid_body', 'body must be a JSON object');
  }
  const b = body as Record<string, unknown>;
  const str = (name: string, max: number, required: boolean): string | undefined => {
    const v = b[name];
    if (v === undefined || v === null) {
      if (required) throw new ProvisionError(400, 'invalid_body', `${name} is required`);
      return undefined;
    }
    if (typeof v !== 'string') throw new ProvisionError(400, 'invalid_body', `${name} must be a string`);
    if (required && !v.trim()) throw new ProvisionError(400, 'invalid_body', `${name} must not be empty`);
    if (v.length > max)
      throw new ProvisionError(400, 'invalid_body', `${name} is longer than ${max} characters`);
    return v;
  };
  const requestId = str('requestId', 200, true) as string;
  const agentName = str('agentName', 100, true) as string;
  const instructions = str('instructions', 100_000, false) ?? '';
  const joinUrl = str('joinUrl', 16_384, false);
  return {
    requestId,
    agentName: agentName.trim(),
    instructions,
    ...(joinUrl?.trim() ? { joinUrl: joinUrl.trim() } : {}),
  };
}

export function statusHandler(deps: RouteDeps) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<boolean> => {
    if (!authorized(req, deps.token()))
      return fail(res, 401, 'unauthorized', 'missing or wrong bearer token');
    if (req.method !== 'GET' && req.method !== 'HEAD') return fail(res, 405, 'method_not_allowed', 'use GET');
    const disabled = deps.disabledReason();
    if (disabled)
      return send(res, 200, {
        state: 'error' satisfies ChannelState,
        error: `channel disabled: ${disabled}`,
      });
    const service = deps.current();
    const lastActivityAt = service?.lastActivityAt() ?? null;
    const conversation = service?.conversation() ?? null;
    return send(
      res,
      200,
      service
        ? { ...service.status(), lastActivityAt, conversation }
        : { state: 'starting' satisfies ChannelState, lastActivityAt, conversation },
    );
  };
}

export function provisionHandler(deps: RouteDeps) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<boolean> => {
    if (!authorized(req, deps.token()))
      return fail(res, 401, 'unauthorized', 'missing or wrong bearer token');
    if (req.method !== 'POST') return fail(res, 405, 'method_not_allowed', 'use POST');
    try {
      const disabled = deps.disabledReason();
      if (disabled) throw new ProvisionError(503, 'channel_disabled', `channel disabled: ${disabled}`);
      const request = parseProvisionBody(await readBody(req));
      const service = await deps.ensure();
      return send(res, 200, await service.provision(request));
    } catch (err) {
      if (err instanceof ProvisionError) return fail(res, err.httpStatus, err.code, err.message);
      deps.log(`convos: provision failed: ${err instanceof Error ? err.message : String(err)}`);
      // Unexpected: say so without echoing internals (which could include paths or SDK details).
      return fail(res, 500, 'channel_error', 'the convos channel failed to provision; see the gateway log');
    }
  };
}

export function sendHandler(deps: RouteDeps) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<boolean> => {
    if (!authorized(req, deps.token()))
      return fail(res, 401, 'unauthorized', 'missing or wrong bearer token');
    if (req.method !== 'POST') return fail(res, 405, 'method_not_allowed', 'use POST');
    let body: unknown;
    try {
      body = JSON.parse(await readBody(req));
    } catch (err) {
      if (err instanceof ProvisionError) return fail(res, err.httpStatus, err.code, err.message);
      return fail(res, 400, 'invalid_json', 'body is not valid JSON');
    }
    const b = (body && typeof body === 'object' ? body : {}) as Record<string, unknown>;
    if (typeof b.conversationId !== 'string' || !/^[0-9a-f]{16,128}$/.test(b.conversationId))
      return fail(res, 400, 'invalid_body', 'conversationId must be an XMTP group id');
    if (typeof b.text !== 'string' || !b.text.trim() || b.text.length > MAX_SEND_CHARS)
      return fail(res, 400, 'invalid_body', `text must be 1-${MAX_SEND_CHARS} characters`);
    const service = deps.current();
    if (!service) return fail(res, 503, 'not_started', 'the convos channel has not started');
    // Only the agent's own conversation, and only while it is in it.
    const conversation = service.conversation();
    if (conversation?.conversationId !== b.conversationId)
      return fail(res, 404, 'unknown_conversation', 'this agent is not in that conversation');
    if (conversation.exit) return fail(res, 410, 'conversation_ended', 'the agent left that conversation');
    try {
      return send(res, 200, { messageId: await service.sendText(b.conversationId, b.text) });
    } catch (err) {
      deps.log(`convos: scheduled send failed: ${err instanceof Error ? err.message : String(err)}`);
      return fail(res, 502, 'send_failed', 'the message could not be sent; see the gateway log');
    }
  };
}
