/**
 * Provider calls as Temporal sees them:
 *   - a rejection (bad config, auth, validation) is non-retryable;
 *   - a 429 retries after the provider's Retry-After;
 *   - anything else is retried with the activity's backoff.
 * A call made inside an activity heartbeats, so a dead worker is noticed in seconds and a cancelled start
 * reaches the call: the shared HTTP client aborts its request on the activity's cancellation signal.
 */
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { FailureType } from '../../contracts/failures';
import { ProviderRateLimitedError, ProviderRejectedError } from '../../contracts/provider-errors';
import { ComputeRejectedError } from '../compute/types';
import { type ProviderCallLabels, providerErrorKind } from '../metrics';
import { activityContext } from './activity-context';

export function toActivityFailure(err: unknown): never {
  if (err instanceof ProviderRejectedError || err instanceof ComputeRejectedError) {
    throw ApplicationFailure.nonRetryable(err.message, FailureType.ProviderRejectedError);
  }
  if (err instanceof ProviderRateLimitedError) {
    throw ApplicationFailure.create({
      message: err.message,
      type: FailureType.ProviderRateLimited,
      nextRetryDelay: Math.max(100, err.retryAfterMs),
    });
  }
  throw err;
}

/**
 * Calls a provider; it heartbeats meanwhile, and its failures come out classified for Temporal. With
 * `labels.metrics` the call is counted (`convos_provider_calls_total`, `_errors_total`, its duration).
 */
export async function providerCall<T>(fn: () => Promise<T>, labels?: ProviderCallLabels): Promise<T> {
  const ctx = activityContext();
  const beat = ctx && !ctx.info.isLocal ? setInterval(() => ctx.heartbeat(), 1000) : null;
  const metrics = labels?.metrics;
  const series = labels ? { provider: labels.provider, step: labels.step } : null;
  const started = performance.now();
  try {
    return await fn();
  } catch (err) {
    const cancelled = ctx?.cancellationSignal.aborted === true;
    if (metrics && series) metrics.providerErrors.inc({ ...series, kind: providerErrorKind(err, cancelled) });
    // Aborted because the activity was cancelled: say so, so Temporal does not retry it.
    if (cancelled) throw new CancelledFailure('provider call cancelled');
    return toActivityFailure(err);
  } finally {
    if (beat) clearInterval(beat);
    if (metrics && series) {
      metrics.providerCalls.inc(series);
      metrics.providerDuration.observe(series, (performance.now() - started) / 1000);
    }
  }
}
