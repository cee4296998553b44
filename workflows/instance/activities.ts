/**
 * The activities the instance workflow calls, each with the timeouts and retry policy of what it does. Types
 * only from activities/: the implementations run in the worker, outside the workflow sandbox.
 */
import { ActivityCancellationType, proxyActivities, proxyLocalActivities } from '@temporalio/workflow';
import type { Activities } from '../../activities';
import { FailureType } from '../../contracts/failures';

/** The read-model write of every transition (./record.ts). */
export const { recordTransition } = proxyLocalActivities<Activities>({
  startToCloseTimeout: '10s',
  // The read model must converge: keep retrying while Postgres is unreachable or restarting. A write it
  // refuses for its data fails at once (ReadModelDataError, non-retryable): retrying could never succeed.
  retry: { initialInterval: '200ms', maximumInterval: '10s' },
});

// Deciding which resources an instance gets only reads configuration (and records skipped kinds): a local
// activity, so a start with no providers configured costs no extra round trip through the server.
export const { planResources } = proxyLocalActivities<Activities>({
  startToCloseTimeout: '10s',
  retry: { initialInterval: '200ms', maximumInterval: '10s' },
});

/** One health check of the runtime: a miss is counted by the caller, never retried here. */
export const { checkHealth } = proxyActivities<Activities>({
  startToCloseTimeout: '8s',
  retry: { maximumAttempts: 1 },
});

// A local activity: the claim runs in one workflow task (no activity-task round trip through the server),
// which is most of a claim's latency. Provisioning is idempotent by the claim key, so a replay after a
// worker crash simply asks the runtime again.
export const { provision } = proxyLocalActivities<Activities>({
  startToCloseTimeout: '2m',
  retry: {
    initialInterval: '200ms',
    maximumAttempts: 3,
    nonRetryableErrorTypes: [FailureType.ProvisionRejected],
  },
});

/**
 * The provider steps: creating and releasing the instance's compute and its per-instance resources (the start
 * saga, restarts and the teardown), each retried up to `stepMaxAttempts` unless the provider rejected it.
 */
export function providerStepsProxy(stepMaxAttempts: number) {
  return proxyActivities<Activities>({
    startToCloseTimeout: '3m',
    // Provider calls heartbeat (activities/providers/failures.ts): a dead worker's attempt is retried after
    // 30 s, and a cancelled start reaches the call in flight.
    heartbeatTimeout: '30s',
    retry: {
      initialInterval: '500ms',
      backoffCoefficient: 2,
      maximumInterval: '30s',
      maximumAttempts: stepMaxAttempts,
      nonRetryableErrorTypes: [FailureType.ComputeRejectedError, FailureType.ProviderRejectedError],
    },
    // A provider call cannot be interrupted halfway: a cancelled start waits for the call in flight to end,
    // so the compensation that follows sees (and releases) everything it created.
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  });
}
export type ProviderSteps = ReturnType<typeof providerStepsProxy>;
