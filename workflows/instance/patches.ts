import { patched } from '@temporalio/workflow';

/**
 * The `patched()` ids of the instance workflow, each with what it changed. A history recorded before a change
 * replays the old way; these ids are in production histories and never change (a patch is removed only once
 * no running workflow can have started before it, with `deprecatePatch` first).
 */
export const Patch = {
  /** Per-instance resources before compute (./starting.ts). Before: compute only. */
  resourceSaga: 'resource-saga',
  /** A cancelled start waits for the call in flight before compensating (./starting.ts). Before: it did not. */
  waitCancelledStart: 'wait-cancelled-start',
  /**
   * `claiming` is recorded with the claim's outcome: one read-model write, one search-attribute upsert, no pool
   * signal (./record.ts). Before: written, upserted and signalled on its own.
   */
  deferredClaiming: 'deferred-claiming',
  /**
   * The claim no longer upserts the `AgentName` search attribute (./claim.ts): an agent name is user data and
   * search attributes are never encrypted. Before: it did.
   */
  noAgentNameAttribute: 'no-agent-name-attribute',
  /**
   * `idle` and `claimed` wait for the health sweeper's signal, a request or one timer for the nearest TTL
   * (./health.ts). Before: a `checkHealth` activity and a timer every `healthIntervalMs`.
   */
  healthSweeper: 'health-sweeper',
  /**
   * A claim's `claimed` is reported to the pool by its read-model write (the `recordTransition` local activity
   * signals the pool through the client once the row is written): no signal command, so no second workflow
   * task on the instance for the signal's outcome (./record.ts). Before: a `SignalExternalWorkflowExecution`.
   */
  claimedReportedByWrite: 'claimed-reported-by-write',
  /**
   * A claim whose join waits for the conversation's creator is `pending_acceptance` until the runtime reports
   * the acceptance (or the join-accept timeout destroys it) (./claim.ts, ./acceptance.ts). Before: `claimed`
   * at once, with no conversation id, waiting forever.
   */
  pendingAcceptance: 'pending-acceptance',
  /**
   * The provision local activity records `claimed` itself (from a draft, with the runtime's answer) and reports
   * it to the pool: one local activity per claim (./claim.ts, ./record.ts). Before: a `recordTransition` local
   * activity after it. A write the activity could not make is made the old way.
   */
  provisionRecordsClaimed: 'provision-records-claimed',
  /**
   * Every patch above is in force from the run's first workflow task: each `patched()` first called mid-run
   * records a marker and upserts the `TemporalChangeVersion` search attribute (a visibility write), three of
   * them inside every claim. A run that begins with this marker never calls the others (`inForce`). Before: each
   * was asked where its change is.
   */
  allUpFront: 'all-patches-up-front',
} as const;

export type PatchId = (typeof Patch)[keyof typeof Patch];

/**
 * Whether the change `id` is in force in this run: known from its start when the run began with
 * `Patch.allUpFront` (`upFront`), else `patched(id)` where the change is, as histories recorded before replay.
 */
export function inForce(ctx: { readonly patchesUpFront: boolean }, id: PatchId): boolean {
  return ctx.patchesUpFront || patched(id);
}
