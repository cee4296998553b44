/**
 * The one HTTP client every provider adapter uses, so they all classify failures the same way:
 *   - 400/401/403/422 (and other 4xx but 404/408/409/429): ProviderRejectedError — retrying cannot help;
 *     the activity layer turns it into a non-retryable failure.
 *   - 404: ProviderNotFoundError — callers decide (destroy treats it as success).
 *   - 409: ProviderConflictError — usually "already exists": callers adopt the existing resource.
 *   - 429: ProviderRateLimitedError with the server's Retry-After — the next attempt waits that long.
 *   - 5xx, 408, network errors, timeouts: ProviderUnavailableError — retried with backoff.
 * Error messages carry the method, path and status, never headers or bodies that could hold a secret.
 */

import { FailureType } from '../../contracts/failures';
import { activityContext } from './activity-context';

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
  override name = FailureType.ProviderRejectedError;
}
export class ProviderNotFoundError extends ProviderError {
  override name = FailureType.ProviderNotFoundError;
}
export class ProviderConflictError extends ProviderError {
  override name = FailureType.ProviderConflictError;
}
export class ProviderUnavailableError extends ProviderError {
  override name = FailureType.ProviderUnavailableError;
}
export class ProviderRateLimitedError extends ProviderError {
  override name = FailureType.ProviderRateLimitedError;
  constructor(
    message: string,
    readonly retryAfterMs: number,
  ) {
    super(message, 429);
  }
}

/** Retry-After in seconds or as an HTTP date; a missing or unreadable one means one second. */
export function parseRetryAfter(value: string | null, now = Date.now()): number {
  if (!value) return 1000;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return Math.ceil(seconds * 1000);
  const at = Date.parse(value);
  return Number.isNaN(at) ? 1000 : Math.max(0, at - now);
}

export interface HttpClientOptions {
  /** e.g. `https://openrouter.ai/api/v1` (no trailing slash). */
  baseUrl: string;
  /** Provider label for error messages. */
  provider: string;
  headers: () => Record<string, string>;
  timeoutMs?: number;
  fetch?: typeof fetch;
}

export interface RequestOptions {
  query?: Record<string, string | number | undefined | Array<string | number>>;
  body?: unknown;
  /** Extra headers for this call (an Idempotency-Key, say). */
  headers?: Record<string, string>;
}

/** Best-effort short reason from a provider error body (`{error:{message}}`, `{errors:[{detail}]}`, …). */
function errorDetail(body: unknown): string | null {
  if (!body || typeof body !== 'object') return null;
  const b = body as Record<string, unknown>;
  const pick = (v: unknown): string | null => {
    if (typeof v === 'string') return v.slice(0, 200);
    if (v && typeof v === 'object') {
      const o = v as Record<string, unknown>;
      return pick(o.message ?? o.detail ?? o.title ?? o.code ?? null);
    }
    return null;
  };
  if (Array.isArray(b.errors) && b.errors.length > 0) return pick(b.errors[0]);
  return pick(b.error ?? b.message ?? b.name ?? null);
}

export class HttpClient {
  private readonly fetchImpl: typeof fetch;
  constructor(private readonly opts: HttpClientOptions) {
    this.fetchImpl = opts.fetch ?? fetch;
  }

  url(path: string, query?: RequestOptions['query']): string {
    const url = new URL(`${this.opts.baseUrl}${path}`);
    for (const [k, v] of Object.entries(query ?? {})) {
      if (v === undefined) continue;
      if (Array.isArray(v)) for (const item of v) url.searchParams.append(k, String(item));
      else url.searchParams.set(k, String(v));
    }
    return url.toString();
  }

  async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const what = `${this.opts.provider} ${method} ${path}`;
    const cancellation = activityContext()?.cancellationSignal;
    let res: Response;
    try {
      res = await this.fetchImpl(this.url(path, options.query), {
        method,
        headers: {
          accept: 'application/json',
          ...(options.body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...this.opts.headers(),
          ...options.headers,
        },
        body: options.body !== undefined ? JSON.stringify(options.body) : undefined,
        // Inside an activity, a cancellation (a cancelled start) aborts the request too.
        signal: AbortSignal.any([
          AbortSignal.timeout(this.opts.timeoutMs ?? 30_000),
          ...(cancellation ? [cancellation] : []),
        ]),
      });
    } catch (err) {
      const reason = (err as Error).name === 'TimeoutError' ? 'timed out' : (err as Error).message;
      throw new ProviderUnavailableError(`${what}: ${reason}`, null);
    }
    const text = await res.text().catch(() => '');
    let body: unknown = null;
    if (text) {
      try {
        body = JSON.parse(text);
      } catch {
        body = null;
      }
    }
    if (res.ok) return body as T;
    const detail = errorDetail(body);
    const message = `${what} answered ${res.status}${detail ? `: ${detail}` : ''}`;
    if (res.status === 429)
      throw new ProviderRateLimitedError(message, parseRetryAfter(res.headers.get('retry-after')));
    if (res.status === 404) throw new ProviderNotFoundError(message, 404, detail);
    if (res.status === 409) throw new ProviderConflictError(message, 409, detail);
    if (res.status >= 500 || res.status === 408)
      throw new ProviderUnavailableError(message, res.status, detail);
    throw new ProviderRejectedError(message, res.status, detail);
  }
}

/** Runs `fn`, treating "not found" as done: deleting what is already gone succeeds. */
export async function ignoreNotFound(fn: () => Promise<unknown>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    if (!(err instanceof ProviderNotFoundError)) throw err;
  }
}
