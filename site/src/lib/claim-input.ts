// Validates a claim coming from the browser before it is forwarded to the API.
import { checkInviteUrl } from './invite';
import type { ClaimRequest } from './types';
import { IDEMPOTENCY_KEY_RE, isAgentName, isSlug } from './validate';

export type ParsedClaim = { ok: true; body: ClaimRequest; key: string } | { ok: false; response: Response };

export const jsonError = (status: number, code: string, error: string, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify({ error, code }), {
    status,
    headers: { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers },
  });

const MAX_BODY = 64 * 1024;

export async function parseClaim(request: Request): Promise<ParsedClaim> {
  const bad = (code: string, msg: string, status = 400) => ({ ok: false as const, response: jsonError(status, code, msg) });
  const key = request.headers.get('idempotency-key') ?? '';
  if (!IDEMPOTENCY_KEY_RE.test(key)) return bad('BAD_IDEMPOTENCY_KEY', 'Idempotency-Key header is required (1–128 characters of A–Z a–z 0–9 . _ : -).');
  if (!(request.headers.get('content-type') ?? '').includes('application/json')) {
    return bad('BAD_CONTENT_TYPE', 'Send the claim as application/json.', 415);
  }
  const text = await request.text();
  if (text.length > MAX_BODY) return bad('TOO_LARGE', 'Request body is too large.', 413);
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return bad('BAD_JSON', 'The request body is not valid JSON.');
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return bad('BAD_JSON', 'Expected a JSON object.');
  const body: ClaimRequest = {};
  if (raw.templateSlug !== undefined) {
    if (!isSlug(raw.templateSlug)) return bad('BAD_TEMPLATE', 'templateSlug is not a valid template slug.');
    body.templateSlug = raw.templateSlug;
  }
  if (raw.agentName !== undefined && raw.agentName !== '') {
    if (!isAgentName(raw.agentName)) return bad('BAD_AGENT_NAME', 'The agent name must be 1–64 characters.');
    body.agentName = raw.agentName.trim();
  }
  if (raw.joinUrl !== undefined && raw.joinUrl !== '') {
    if (typeof raw.joinUrl !== 'string') return bad('BAD_INVITE', 'joinUrl must be a string.');
    const check = checkInviteUrl(raw.joinUrl);
    if (!check.ok) return bad('BAD_INVITE', check.reason);
    body.joinUrl = check.value;
  }
  if (raw.maxWaitMs !== undefined) {
    const n = raw.maxWaitMs;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 60_000) {
      return bad('BAD_WAIT', 'maxWaitMs must be an integer from 0 to 60000.');
    }
    body.maxWaitMs = n;
  }
  return { ok: true, body, key };
}

/** Client address for rate limiting; X-Forwarded-For only counts behind a trusted proxy. */
export function clientIp(request: Request, fallback: string, trustProxy: boolean): string {
  if (trustProxy) {
    const fwd = request.headers.get('x-forwarded-for')?.split(',')[0]?.trim();
    if (fwd) return fwd;
  }
  return fallback;
}
