// Validates a claim coming from the browser before it is forwarded to the API, with the rules of the shared
// claim contract (`contracts/claim.ts`): nothing the API or the runtime would refuse is forwarded.
import { CLAIM_BODY_LIMIT, jsonError, readTextLimited } from './body';
import { checkInviteUrl } from './invite';
import type { ClaimRequest } from './types';
import {
  agentNameProblem,
  IDEMPOTENCY_KEY_MAX,
  isIdempotencyKey,
  isTemplateSlug,
  PATTERN_RULES,
  TEMPLATE_SLUG_PATTERN,
} from './validate';

export type ParsedClaim = { ok: true; body: ClaimRequest; key: string } | { ok: false; response: Response };

/** The fields a visitor may send; anything else is refused rather than silently dropped. */
const FIELDS = new Set(['templateSlug', 'agentName', 'joinUrl', 'maxWaitMs']);

export async function parseClaim(request: Request): Promise<ParsedClaim> {
  const bad = (code: string, msg: string, status = 400) => ({
    ok: false as const,
    response: jsonError(status, code, msg),
  });
  const key = request.headers.get('idempotency-key') ?? '';
  if (!isIdempotencyKey(key)) {
    return bad(
      'BAD_IDEMPOTENCY_KEY',
      `The Idempotency-Key header is required: 1–${IDEMPOTENCY_KEY_MAX} characters of A–Z a–z 0–9 . _ : -.`,
    );
  }
  const type = (request.headers.get('content-type') ?? '').split(';')[0]?.trim().toLowerCase();
  if (type !== 'application/json') return bad('BAD_CONTENT_TYPE', 'Send the claim as application/json.', 415);
  const text = await readTextLimited(request, CLAIM_BODY_LIMIT);
  if (!text.ok) return text;
  let raw: unknown;
  try {
    raw = JSON.parse(text.value);
  } catch {
    return bad('BAD_JSON', 'The request body is not valid JSON.');
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    return bad('BAD_JSON', 'Expected a JSON object.');
  const fields = raw as Record<string, unknown>;
  for (const name of Object.keys(fields)) {
    if (!FIELDS.has(name))
      return bad('BAD_FIELD', `Unknown field "${name.replace(/[^\x20-\x7E]/g, '?').slice(0, 40)}".`);
  }
  const body: ClaimRequest = {};
  if (fields.templateSlug !== undefined) {
    if (!isTemplateSlug(fields.templateSlug))
      return bad('BAD_TEMPLATE', `templateSlug ${PATTERN_RULES[TEMPLATE_SLUG_PATTERN]}.`);
    body.templateSlug = fields.templateSlug;
  }
  // An empty name means "the default name" (the page sends none then).
  if (fields.agentName !== undefined && fields.agentName !== '') {
    const problem = agentNameProblem(fields.agentName);
    if (problem) return bad('BAD_AGENT_NAME', `${problem}.`);
    body.agentName = (fields.agentName as string).trim();
  }
  if (fields.joinUrl !== undefined && fields.joinUrl !== '') {
    if (typeof fields.joinUrl !== 'string') return bad('BAD_INVITE', 'joinUrl must be a string.');
    const check = checkInviteUrl(fields.joinUrl);
    if (!check.ok) return bad('BAD_INVITE', `joinUrl: ${check.reason}`);
    body.joinUrl = check.value;
  }
  if (fields.maxWaitMs !== undefined) {
    const n = fields.maxWaitMs;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 60_000) {
      return bad('BAD_WAIT', 'maxWaitMs must be an integer from 0 to 60000.');
    }
    body.maxWaitMs = n;
  }
  return { ok: true, body, key };
}
