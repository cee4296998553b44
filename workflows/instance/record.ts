/**
 * A transition: checked against the table (./transitions.ts), the state flipped (./state.ts), then recorded.
 * Recording is the side effects, in this order: the `InstanceStatus` search attribute (with the claim's
 * attributes), the pool's signal, the read-model write with its audit event. `claiming` is deferred: it is
 * recorded together with the claim's outcome, within the same workflow task.
 */
import type { SearchAttributeUpdatePair } from '@temporalio/common';
import {
  ApplicationFailure,
  getExternalWorkflowHandle,
  log,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import type { TransitionRecord } from '../../activities/read-model';
import { FailureType } from '../../contracts/failures';
import { poolWorkflowId } from '../../contracts/workflow-ids';
import { instanceChangedSignal } from '../messages';
import { InstanceStatusKey } from '../search-attributes';
import type { Actor, InstanceStatus, StatusChange } from '../types';
import { recordTransition } from './activities';
import { reasonOf } from './errors';
import { inForce, Patch } from './patches';
import { flipStatus, type InstanceContext, now } from './state';
import { type TransitionEvent, transitionProblem } from './transitions';

/**
 * Moves the instance to `to` on `event`: synchronously (nothing awaits), so a handler that calls it has flipped
 * the state before its first await. The writes it starts are counted in `inFlight`.
 */
export function transition(
  ctx: InstanceContext,
  to: InstanceStatus,
  event: TransitionEvent,
  change: StatusChange,
  extra: {
    /** Written to the audit event. */
    details?: Record<string, unknown>;
    /** Upserted with the status (the claim's agent name and template). */
    searchAttributes?: SearchAttributeUpdatePair[];
    /**
     * The read-model write (and the pool's report) was made already, from `draftClaimedRecord` (the claim's
     * provision activity records `claimed` itself): only the state and the search attributes are left.
     */
    recorded?: boolean;
  } = {},
): void {
  const { details, searchAttributes = [], recorded = false } = extra;
  const { state } = ctx;
  const from = state.seq === 0 ? null : state.status;
  checkTransition(ctx, from, event, to);
  flipStatus(state, from, to);
  // `claiming` is always followed by `claimed`, `idle` or `destroying` within the claim's own workflow task:
  // its search attributes, audit event and read-model write go out with that outcome (one visibility update,
  // one transaction), and the pool, which counts idle and starting instances, is not woken for it.
  // Histories of instances started before this change replay the old way (two writes, two upserts).
  if (to === 'claiming' && inForce(ctx, Patch.deferredClaiming)) {
    ctx.deferredClaiming.searchAttributes = searchAttributes;
    ctx.deferredClaiming.event = {
      seq: state.seq,
      from,
      to,
      actor: change.actor,
      reason: change.reason,
      at: now(),
      details,
    };
    return;
  }
  publishStatus(ctx, to, searchAttributes);
  if (recorded) {
    ctx.deferredClaiming.event = null;
    return;
  }
  // A claim's outcome is on the claim's critical path: its report to the pool goes with the read-model write
  // (a local activity already running) instead of a signal command and the workflow task that follows it.
  const reportByWrite = from === 'claiming' && to === 'claimed' && inForce(ctx, Patch.claimedReportedByWrite);
  if (to !== 'claiming' && !reportByWrite) notifyPool(ctx, from, to, change.actor);
  writeReadModel(ctx, from, to, change, details, reportByWrite);
}

/** An illegal transition is a bug: it fails a strict (test) instance, and is logged everywhere else. */
function checkTransition(
  ctx: InstanceContext,
  from: InstanceStatus | null,
  event: TransitionEvent,
  to: InstanceStatus,
): void {
  const problem = transitionProblem(from, event, to);
  if (!problem) return;
  if (ctx.strictTransitions) {
    throw ApplicationFailure.nonRetryable(`illegal transition: ${problem}`, FailureType.IllegalTransition);
  }
  log.error('illegal transition', { instanceId: ctx.state.instanceId, problem });
}

/** Operators filter by status in the Web UI; the claim's attributes go out with the status they belong to. */
function publishStatus(
  ctx: InstanceContext,
  to: InstanceStatus,
  searchAttributes: SearchAttributeUpdatePair[],
) {
  upsertSearchAttributes([
    { key: InstanceStatusKey, value: to },
    ...ctx.deferredClaiming.searchAttributes,
    ...searchAttributes,
  ]);
  ctx.deferredClaiming.searchAttributes = [];
}

/** Reports a transition to the pool (its wake-up, and a start's outcome for its breaker); `seq` orders reports. */
function notifyPool(ctx: InstanceContext, from: InstanceStatus | null, status: InstanceStatus, actor: Actor) {
  const { state } = ctx;
  ctx.inFlight += 1;
  getExternalWorkflowHandle(poolWorkflowId(state.poolName))
    .signal(instanceChangedSignal, {
      instanceId: state.instanceId,
      status,
      seq: state.seq,
      ...(from ? { from, actor } : {}),
    })
    .catch(() => {
      // The pool may be between runs or gone; the reconcile workflow re-syncs its membership.
    })
    .finally(() => {
      ctx.inFlight -= 1;
    });
}

/**
 * The read-model write of a transition to `to` from the instance's state once flipped (`seq`: the transition's),
 * with the deferred `claiming` event first when there is one.
 */
function recordOf(
  ctx: InstanceContext,
  seq: number,
  from: InstanceStatus | null,
  to: InstanceStatus,
  change: StatusChange,
  details: Record<string, unknown> | undefined,
  reportToPool: boolean,
): TransitionRecord {
  const { state } = ctx;
  const earlier = ctx.deferredClaiming.event ? [ctx.deferredClaiming.event] : undefined;
  return {
    ...(earlier ? { earlier } : {}),
    instanceId: state.instanceId,
    poolName: state.poolName,
    provider: state.computeProvider,
    ...(state.runtimeVersion ? { runtimeVersion: state.runtimeVersion } : {}),
    seq,
    from,
    to,
    actor: change.actor,
    reason: change.reason,
    at: now(),
    fields: {
      url: state.url,
      agentName: state.agentName,
      templateSlug: state.templateSlug,
      conversationId: state.result?.conversationId ?? null,
      joined: state.result?.joined ?? false,
      claimKey: state.claim?.claimKey ?? null,
      lastError: state.lastError,
      failedStep: state.failedStep,
      idleAt: state.idleAt,
      claimedAt: state.claimedAt,
      ...(to === 'destroyed' ? { destroyedAt: now() } : {}),
    },
    details,
    ...(reportToPool ? { reportToPool: true } : {}),
  };
}

/**
 * The write `transition(ctx, 'claimed', …)` would make next, drafted while the instance is `claiming`, for the
 * provision activity to make itself with what the runtime answered (`completeClaimedRecord`): the claim then
 * needs one local activity, not two. Nothing in the state changes.
 */
export function draftClaimedRecord(
  ctx: InstanceContext,
  change: StatusChange,
  details: Record<string, unknown>,
) {
  return recordOf(ctx, ctx.state.seq + 1, 'claiming', 'claimed', change, details, true);
}

/** The read model's row and the audit trail (with the deferred `claiming` event first, when there is one). */
function writeReadModel(
  ctx: InstanceContext,
  from: InstanceStatus | null,
  to: InstanceStatus,
  change: StatusChange,
  details: Record<string, unknown> | undefined,
  reportToPool = false,
) {
  const { state } = ctx;
  const record = recordOf(ctx, state.seq, from, to, change, details, reportToPool);
  ctx.deferredClaiming.event = null;
  ctx.inFlight += 1;
  recordTransition(record)
    .catch((err) => {
      // Only a write the database refuses for its data gets here; the workflow goes on regardless (it is
      // the truth, the read model a view) and says so: in its state, for getState, and in the worker log.
      state.readModelError = `${to} (seq ${state.seq}): ${reasonOf(err)}`;
      log.error('read-model write refused', { instanceId: state.instanceId, error: state.readModelError });
    })
    .finally(() => {
      ctx.inFlight -= 1;
    });
}
