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

/** Calls a provider; it heartbeats meanwhile, and its failures come out classified for Temporal. */
export async function providerCall<T>(fn: () => Promise<T>): Promise<T> {
  const ctx = activityContext();
  const beat = ctx && !ctx.info.isLocal ? setInterval(() => ctx.heartbeat(), 1000) : null;
  try {
    return await fn();
  } catch (err) {
    // Aborted because the activity was cancelled: say so, so Temporal does not retry it.
    if (ctx?.cancellationSignal.aborted) throw new CancelledFailure('provider call cancelled');
    return toActivityFailure(err);
  } finally {
    if (beat) clearInterval(beat);
  }
}
