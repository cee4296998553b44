/**
 * How a provider call failed, as the adapters throw it (`activities/providers/http.ts` classifies every
 * HTTP answer into one of these) and as the activities and the API's self-service proxy read it:
 *   - ProviderRejectedError: 400/401/403/422 and other 4xx but 404/408/409/429 — retrying cannot help;
 *   - ProviderNotFoundError: 404 — callers decide (destroy treats it as success);
 *   - ProviderConflictError: 409 — usually "already exists": callers adopt the existing resource;
 *   - ProviderRateLimitedError: 429, with the server's Retry-After — the next attempt waits that long;
 *   - ProviderUnavailableError: 5xx, 408, network errors, timeouts — retried with backoff.
 * Messages carry the method, path and status, never headers or bodies that could hold a secret.
 * Plain TypeScript with no imports.
 */

export class ProviderError extends Error {
  constructor(
    message: string,
    readonly status: number | null,
    /** The provider's own error code or message, when its error body has one (never a secret). */
    readonly detail: string | null = null,
  ) {
    super(message);
  }
}
export class ProviderRejectedError extends ProviderError {
  override name = 'ProviderRejectedError';
}
export class ProviderNotFoundError extends ProviderError {
  override name = 'ProviderNotFoundError';
}
export class ProviderConflictError extends ProviderError {
  override name = 'ProviderConflictError';
}
export class ProviderUnavailableError extends ProviderError {
  override name = 'ProviderUnavailableError';
}
export class ProviderRateLimitedError extends ProviderError {
  override name = 'ProviderRateLimitedError';
  constructor(
    message: string,
    readonly retryAfterMs: number,
  ) {
    super(message, 429);
  }
}
