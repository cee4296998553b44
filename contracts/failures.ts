/**
 * The failure vocabulary: every `ApplicationFailure` type that crosses a layer (activity → workflow,
 * workflow → API), named once. Each entry says who throws it and what the catcher does. The values are written
 * into workflow histories and matched by retry policies (`nonRetryableErrorTypes`): they never change.
 *
 * An error an activity throws without wrapping it reaches Temporal with its class `name` as its type, so the
 * provider error classes (activities/compute/types.ts, activities/providers/http.ts) take their names from here.
 *
 * Plain TypeScript with no imports: the workflow bundle, the worker, the API, the runtime and the site load it.
 */

export const FailureType = {
  // ── the runtime's provisioning (activities/runtime-client.ts, the `provision` activity) → the claim Update ──

  /**
   * The runtime refused the request itself (its 400) before recording anything, or the claim's join URL is
   * not in the secret store. Non-retryable. Caught by the claim Update (workflows/instance/claim.ts): the
   * instance is untouched and goes back to idle, in its place; the claim fails with `ClaimRefused`.
   */
  ProvisionRefused: 'ProvisionRefused',
  /**
   * The runtime refused provisioning for a reason of the instance (another 4xx: wrong token, already
   * provisioned; an unknown status), or the instance token is missing. Never retried (the claim's retry
   * policy lists it). The claim Update taints the instance (→ destroying) and fails with `ProvisionFailed`.
   */
  ProvisionRejected: 'ProvisionRejected',
  /** The runtime answered 5xx. Retried by the claim's policy; out of retries, handled as `ProvisionRejected`. */
  RuntimeError: 'RuntimeError',
  /** The runtime could not be reached (network error, timeout). Retried, then handled as `RuntimeError`. */
  RuntimeUnreachable: 'RuntimeUnreachable',

  // ── the claim Update (workflows/instance/claim.ts) → the API (api/claims.ts) ────────────────────────────

  /**
   * The claim itself is wrong: it breaks the claim contract (the validator), or the runtime refused it
   * (`ProvisionRefused`). The instance is idle, untouched. The API answers 400 and tries no other instance.
   */
  ClaimRefused: 'ClaimRefused',
  /**
   * Provisioning failed on this instance (any failure but `ProvisionRefused`): it is tainted and destroyed.
   * The API tries another idle instance; when every one it tried failed this way, it answers 502 with the
   * error code `PROVISION_FAILED` (an HTTP error code of the API, not this type).
   */
  ProvisionFailed: 'ProvisionFailed',

  // ── provider steps (activities/index.ts, resources.ts, providers/) → the start saga and the teardown ─────

  /**
   * The compute provider refused for a reason retrying cannot fix (bad configuration, validation, auth), or the
   * named compute provider is not configured (activities/index.ts). Never retried (the provider steps' retry
   * policy lists it): a start compensates at once (→ destroying), a teardown fails (→ failed), a restart counts
   * as a failed restart.
   */
  ComputeRejectedError: 'ComputeRejectedError',
  /**
   * A provider refused (4xx but 404/408/409/429): `providerCall` (activities/providers/failures.ts) throws it
   * non-retryable for `ProviderRejectedError` and `ComputeRejectedError` alike. Handled as `ComputeRejectedError`.
   */
  ProviderRejectedError: 'ProviderRejectedError',
  /** A provider answered 429: `providerCall` throws it retryable with the provider's Retry-After as the next delay. */
  ProviderRateLimited: 'ProviderRateLimited',
  /**
   * The provider adapters' other classes (activities/providers/http.ts). When one escapes an activity it is a
   * retryable failure of that type; no one matches on it: the provider steps retry it up to `stepMaxAttempts`.
   */
  ProviderUnavailableError: 'ProviderUnavailableError',
  ProviderNotFoundError: 'ProviderNotFoundError',
  ProviderConflictError: 'ProviderConflictError',
  ProviderRateLimitedError: 'ProviderRateLimitedError',

  // ── the read model (activities/read-model.ts, the `recordTransition` activity) → the instance workflow ───

  /**
   * Postgres refused the write for its data (SQLSTATE class 22 or 23): it would fail on every attempt, so it
   * is non-retryable. The workflow goes on (it is the truth, the read model a view) and keeps the message in
   * its state (`readModelError`) and the worker log.
   */
  ReadModelDataError: 'ReadModelDataError',

  // ── the instance workflow itself ────────────────────────────────────────────────────────────────────────

  /**
   * The workflow tried a transition that is not in its table (workflows/instance/transitions.ts): a bug.
   * Thrown only for instances started in strict mode (the tests); otherwise the transition is logged.
   */
  IllegalTransition: 'IllegalTransition',
} as const;
export type FailureType = (typeof FailureType)[keyof typeof FailureType];

/**
 * What a failed claim Update means to the API (the `type` of its cause). Any other failure is the validator's
 * plain "not idle" (claimed, claiming, destroy pending, not started yet) or a missing field: the API moves on
 * to another instance.
 */
export const ClaimFailure = {
  /** The instance could not provision: it is tainted and destroyed; the API tries another one. */
  provisionFailed: FailureType.ProvisionFailed,
  /** The claim was refused (contract, or the runtime's 400): the instance is back to idle; the API answers 400. */
  refused: FailureType.ClaimRefused,
} as const;
