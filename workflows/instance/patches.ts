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
  /**
   * A claim no longer wakes the wait of a live instance (./health.ts): `idle`, `claiming` and `claimed` are one
   * wait, which a claim leaves asleep unless the claimed instance has a nearer deadline than the idle TTL's
   * timer (that timer is left to run, not cancelled). Before: the claim woke the idle wait (its timer cancelled),
   * the loop went round `claiming`, then started the `claimed` wait — two more trips into the workflow sandbox
   * and a `CancelTimer` in every claim.
   */
  claimSleepsThrough: 'claim-sleeps-through',
  /** As `allUpFront`, with every patch since it in force too (`claimSleepsThrough`). */
  allUpFrontV2: 'all-patches-up-front-v2',
} as const;

export type PatchId = (typeof Patch)[keyof typeof Patch];

/**
 * The up-front level of a run: the newest up-front marker it began with (2: `allUpFrontV2`, 1: `allUpFront`,
 * 0: none, a run older than both). Asked once, as the run's first command; a new run records only the newest.
 */
export type PatchLevel = 0 | 1 | 2;

export function upFrontLevel(): PatchLevel {
  if (patched(Patch.allUpFrontV2)) return 2;
  return patched(Patch.allUpFront) ? 1 : 0;
}

/** The patches each up-front level puts in force beyond the earlier ones (all others are level 1). */
const LEVEL_2: ReadonlySet<PatchId> = new Set([Patch.claimSleepsThrough]);

/**
 * Whether the change `id` is in force in this run: known from its start when the run began at its level or a
 * newer one, else `patched(id)` where the change is, as histories recorded before it replay.
 */
export function inForce(ctx: { readonly patchLevel: PatchLevel }, id: PatchId): boolean {
  return ctx.patchLevel >= (LEVEL_2.has(id) ? 2 : 1) || patched(id);
}
