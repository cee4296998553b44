// Input rules shared by the site's endpoints (mirrors the API contract so bad input gets a clear 4xx early).

export const SLUG_RE = /^[a-z0-9]+(-[a-z0-9]+)*$/;
export const IDEMPOTENCY_KEY_RE = /^[A-Za-z0-9._:-]{1,128}$/;
/** Instance ids are opaque to the site; keep them to a safe URL-path alphabet. */
export const INSTANCE_ID_RE = /^[A-Za-z0-9._:-]{1,128}$/;

export function isSlug(s: unknown): s is string {
  return typeof s === 'string' && s.length <= 64 && SLUG_RE.test(s);
}

export function isAgentName(s: unknown): s is string {
  return typeof s === 'string' && s.trim().length >= 1 && s.length <= 64;
}
