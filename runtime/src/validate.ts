// Validation of /pool/provision bodies: exact fields, types and sizes, so a bad request is a 400 that
// changes nothing.
import type { ProvisionRequest } from "./provision-store.ts";

const LIMITS = { requestId: 200, agentName: 100, instructions: 20_000, joinUrl: 8_192 } as const;

export function validateProvisionRequest(body: unknown): ProvisionRequest | string {
  if (!body || typeof body !== "object" || Array.isArray(body)) return "body must be a JSON object";
  const b = body as Record<string, unknown>;
  const unknownKeys = Object.keys(b).filter((k) => !(k in LIMITS));
  if (unknownKeys.length) return `unknown field(s): ${unknownKeys.join(", ")}`;
  if (typeof b.requestId !== "string" || !b.requestId.trim()) return "requestId must be a non-empty string";
  if (b.requestId.length > LIMITS.requestId) return `requestId must be at most ${LIMITS.requestId} characters`;
  if (typeof b.agentName !== "string" || !b.agentName.trim()) return "agentName must be a non-empty string";
  if (b.agentName.length > LIMITS.agentName) return `agentName must be at most ${LIMITS.agentName} characters`;
  if (/[\r\n]/.test(b.agentName)) return "agentName must be a single line";
  if (typeof b.instructions !== "string") return "instructions must be a string";
  if (b.instructions.length > LIMITS.instructions) return `instructions must be at most ${LIMITS.instructions} characters`;
  const request: ProvisionRequest = { requestId: b.requestId, agentName: b.agentName.trim(), instructions: b.instructions };
  if (b.joinUrl !== undefined && b.joinUrl !== null) {
    if (typeof b.joinUrl !== "string" || !b.joinUrl.trim()) return "joinUrl must be a non-empty string when given";
    if (b.joinUrl.length > LIMITS.joinUrl) return `joinUrl must be at most ${LIMITS.joinUrl} characters`;
    request.joinUrl = b.joinUrl.trim();
  }
  return request;
}
