/**
 * Provider failures as Temporal sees them: a rejection (bad config, auth, validation) is non-retryable;
 * a 429 retries after the provider's Retry-After; anything else is retried with the activity's backoff.
 */
import { ApplicationFailure } from '@temporalio/common';
import { ComputeRejectedError } from '../compute/types';
import { ProviderRateLimitedError, ProviderRejectedError } from './http';

export function toActivityFailure(err: unknown): never {
  if (err instanceof ProviderRejectedError || err instanceof ComputeRejectedError) {
    throw ApplicationFailure.nonRetryable(err.message, 'ProviderRejectedError');
  }
  if (err instanceof ProviderRateLimitedError) {
    throw ApplicationFailure.create({
      message: err.message,
      type: 'ProviderRateLimited',
      nextRetryDelay: Math.max(100, err.retryAfterMs),
    });
  }
  throw err;
}

/** Calls a provider; its failures come out classified for Temporal. */
export async function providerCall<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    return toActivityFailure(err);
  }
}
