/**
 * Message definitions of the workflows: the API and the workflows import these, and only these, to talk.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type {
  Actor,
  ClaimBinding,
  ClaimRequest,
  HealthChange,
  HealthSweeperSettings,
  InstanceState,
  InstanceStatus,
  JoinAccepted,
  PoolSettings,
  PoolSettingsReport,
  PoolState,
  StatusChange,
} from './types';

// ── instance workflow (`instance-<id>`) ─────────────────────────────────────────────────────────────

/** Claim an idle instance. Update id = the claim's idempotency key; the validator admits only `idle`. */
export const claimUpdate = defineUpdate<ClaimBinding, [ClaimRequest]>('claim');
/** Destroy an idle or starting instance for the pool's drain; rejected (never applied) once claimed. */
export const drainInstanceUpdate = defineUpdate<void, [StatusChange]>('drain');
/** Destroy the instance whatever its state (operator kill, dismiss of crashed/failed, self-destruct). */
export const destroySignal = defineSignal<[StatusChange]>('destroy');
/** Resume a `failed` instance at the step that failed. */
export const retrySignal = defineSignal<[StatusChange]>('retry');
/** The runtime reports that the join was accepted (a claim in `pending_acceptance` moves to `claimed`). */
export const joinAcceptedSignal = defineSignal<[JoinAccepted]>('joinAccepted');
export const getStateQuery = defineQuery<InstanceState>('getState');
/** The health sweeper's report of a runtime that stopped answering (sent only on a change: a billable action). */
export const healthChangedSignal = defineSignal<[HealthChange]>('healthChanged');

// ── health sweeper workflow (`health-<pool>`) ───────────────────────────────────────────────────────

/** The settings a worker start declares; the sweeper restarts its shards when they changed. */
export const sweeperSettingsSignal = defineSignal<[HealthSweeperSettings]>('sweeperSettings');

// ── pool controller workflow (`pool-<name>`) ────────────────────────────────────────────────────────

export const replenishUpdate = defineUpdate<string[], [number]>('replenish');
/** Destroys up to N idle/starting instances (never claimed ones); the pool refills to its target. */
export const drainUpdate = defineUpdate<string[], [number]>('drain');
export const setTargetUpdate = defineUpdate<
  { targetIdle: number; maxTotal: number },
  [{ targetIdle: number; maxTotal?: number }]
>('setTarget');
/**
 * The settings a worker's environment declares, applied on every worker start (update-with-start, so the
 * pool is created by the first worker and updated by every later one). A declared value that changed since
 * the last declaration takes effect; one that did not leaves an operator's run-time change in force.
 */
export const applySettingsUpdate = defineUpdate<PoolSettingsReport, [PoolSettings]>('applySettings');
/**
 * Instances report each transition to their pool: a wake-up, and the breaker's start outcomes (`from`);
 * `seq` orders reports that arrive out of order (member-map runs).
 */
export const instanceChangedSignal =
  defineSignal<
    [{ instanceId: string; status: InstanceStatus; seq?: number; from?: InstanceStatus; actor?: Actor }]
  >('instanceChanged');
export const getPoolStateQuery = defineQuery<PoolState>('getPoolState');
