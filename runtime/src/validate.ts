// Validation of /pool/provision bodies: exact fields, types and sizes, so a bad request is a 400 that
// changes nothing. The rules are the shared claim contract (contracts/claim.ts) that the site and the API
// apply too: nothing the edge accepts is refused here, and nothing refused here gets past the edge.
import {
  agentNameProblem,
  IDEMPOTENCY_KEY_PATTERN,
  instructionsProblem,
  isIdempotencyKey,
  joinUrlProblem,
  PATTERN_RULES,
} from '../../contracts/claim.ts';
import type { ProvisionRequest } from './provision-store.ts';

const FIELDS = new Set(['requestId', 'agentName', 'instructions', 'joinUrl']);

export function validateProvisionRequest(body: unknown): ProvisionRequest | string {
  if (!body || typeof body !== 'object' || Array.isArray(body)) return 'body must be a JSON object';
  const b = body as Record<string, unknown>;
  const unknownKeys = Object.keys(b).filter((k) => !FIELDS.has(k));
  // Field names are echoed back: only printable ASCII ones, and not too many.
  if (unknownKeys.length)
    return `unknown field(s): ${unknownKeys
      .slice(0, 5)
      .map((k) => JSON.stringify(k.slice(0, 40)))
      .join(', ')}`;
  // The pool's requestId is the claim's Idempotency-Key (1–128 characters of A–Z a–z 0–9 . _ : -).
  if (!isIdempotencyKey(b.requestId)) return `requestId ${PATTERN_RULES[IDEMPOTENCY_KEY_PATTERN]}`;
  const problem = agentNameProblem(b.agentName) ?? instructionsProblem(b.instructions);
  if (problem) return problem;
  const agentName = (b.agentName as string).trim();
  const request: ProvisionRequest = {
    requestId: b.requestId,
    agentName,
    instructions: b.instructions as string,
  };
  if (b.joinUrl !== undefined && b.joinUrl !== null) {
    const joinProblem = joinUrlProblem(b.joinUrl);
    if (joinProblem) return joinProblem;
    request.joinUrl = b.joinUrl as string;
  }
  return request;
}
