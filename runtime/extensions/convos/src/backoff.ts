/** Exponential backoff with jitter, and an abortable sleep (so stop() never waits out a delay). */

export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 500, maxMs: 30_000 };

export function backoffDelay(attempt: number, o: BackoffOptions = DEFAULT_BACKOFF): number {
  const base = Math.min(o.maxMs, o.initialMs * 2 ** Math.min(attempt, 20));
  // ±25% jitter so many identities reconnecting after an outage do not stampede together.
  return Math.round(base * (0.75 + Math.random() * 0.5));
}

/** Resolves after `ms`, or early (false) when the signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve(false);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
