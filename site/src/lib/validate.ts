// Input rules of the site's endpoints. What a valid claim is (agent name, join URL, template slug,
// Idempotency-Key, control characters) is defined once in the repository's `contracts/claim.ts`, shared with
// the API and the runtime; this module only re-exports it and adds what is the site's own.
export {
  AGENT_NAME_MAX,
  agentNameProblem,
  controlCharacterProblem,
  IDEMPOTENCY_KEY_MAX,
  isIdempotencyKey,
  isTemplateSlug,
  JOIN_URL_MAX,
  joinUrlProblem,
  PATTERN_RULES,
  TEMPLATE_SLUG_PATTERN,
} from '../../../contracts/claim';

/** Instance ids are opaque to the site; keep them to a safe URL-path alphabet. */
export const INSTANCE_ID_RE = /^[A-Za-z0-9._:-]{1,128}$/;
