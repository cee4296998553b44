/**
 * The instance workflow's state, in named fields: the durable part (`state`: what `getState` answers and
 * continue-as-new carries) and what lives only in this run (requests the signals leave for the loop, writes in
 * flight, the deferred `claiming` event). One context per workflow run, handed to every phase.
 */
import type { SearchAttributeUpdatePair } from '@temporalio/common';
import { workflowInfo } from '@temporalio/workflow';
import type { AuditEvent } from '../../activities/read-model';
import type {
  HealthChange,
  InstanceInput,
  InstanceResourceRef,
  InstanceState,
  InstanceStatus,
  InstanceTimings,
  StatusChange,
} from '../types';
import { type ProviderSteps, providerStepsProxy } from './activities';
import { type PatchLevel, upFrontLevel } from './patches';
import { STRICT_TRANSITIONS_MEMO } from './transitions';

/** What every activity call about this instance carries. */
export interface InstanceIds {
  instanceId: string;
  poolName: string;
  provider: string;
}

export interface InstanceContext {
  readonly input: InstanceInput;
  readonly timings: InstanceTimings;
  /** The durable state (mutated in place; continue-as-new hands it to the next run). */
  readonly state: InstanceState;
  readonly ids: InstanceIds;
  readonly workflowId: string;
  /** Creates and releases compute and resources (./activities.ts). */
  readonly providerSteps: ProviderSteps;
  /** An illegal transition fails the workflow instead of being logged (the memo the tests start with). */
  readonly strictTransitions: boolean;
  /** Left by the signals and the drain Update; the phase that takes one clears it. */
  readonly requests: {
    destroy: StatusChange | null;
    retry: StatusChange | null;
    /** The runtime's report that the join was accepted (the conversation id), for `pending_acceptance`. */
    accepted: string | null;
  };
  /** The health sweeper's last report of a failing runtime at the current `seq`, until the phase takes it. */
  readonly health: { unhealthy: HealthChange | null };
  /** Read-model writes and pool notifications still in flight: the workflow never ends or continues before them. */
  inFlight: number;
  /**
   * The `claiming` event waits for the claim's outcome and is written with it: one read-model write per
   * claim instead of two (the API's reservation already keeps other claims off the instance meanwhile).
   */
  readonly deferredClaiming: { event: AuditEvent | null; searchAttributes: SearchAttributeUpdatePair[] };
  /** The up-front patch marker the run began with (./patches.ts): which changes are in force (`inForce`). */
  readonly patchLevel: PatchLevel;
}

/** Workflow time (deterministic), as the read model stores it. */
export const now = () => new Date().toISOString();

/** The state of a new instance: `starting`, nothing recorded yet (seq 0). */
export function initialState(input: InstanceInput): InstanceState {
  return {
    instanceId: input.instanceId,
    poolName: input.poolName,
    status: 'starting',
    computeProvider: input.computeProvider,
    runtimeVersion: input.runtimeVersion ?? null,
    url: null,
    plan: null,
    resources: [],
    agentName: null,
    templateSlug: null,
    claim: null,
    result: null,
    createdAt: now(),
    idleAt: null,
    claimedAt: null,
    lastError: null,
    failedStep: null,
    restarts: 0,
    seq: 0,
  };
}

export function createContext(input: InstanceInput): InstanceContext {
  const state = input.state ?? initialState(input);
  const info = workflowInfo();
  return {
    input,
    timings: input.timings,
    state,
    ids: { instanceId: state.instanceId, poolName: state.poolName, provider: state.computeProvider },
    workflowId: info.workflowId,
    providerSteps: providerStepsProxy(input.timings.stepMaxAttempts),
    strictTransitions: info.memo?.[STRICT_TRANSITIONS_MEMO] === true,
    requests: { destroy: null, retry: null, accepted: null },
    health: { unhealthy: null },
    inFlight: 0,
    deferredClaiming: { event: null, searchAttributes: [] },
    // The run's first command: every later change check is then free (./patches.ts).
    patchLevel: upFrontLevel(),
  };
}

/**
 * The state flip of a transition (its side effects are ./record.ts): the new status, the next sequence number,
 * and when it became idle or claimed. A claim the runtime refused puts the instance back where it was in the
 * idle queue (its `idleAt` is kept).
 */
export function flipStatus(state: InstanceState, from: InstanceStatus | null, to: InstanceStatus): void {
  state.status = to;
  state.seq += 1;
  if (to === 'idle' && from !== 'claiming') state.idleAt = now();
  if (to === 'claimed' && !state.claimedAt) state.claimedAt = now();
}

/** Registers a saga entry before its risky step (or finds the one an earlier attempt registered). */
export function registerResource(state: InstanceState, kind: string, provider: string): InstanceResourceRef {
  let entry = state.resources.find((r) => r.kind === kind);
  if (!entry) {
    entry = { kind, provider, ref: null };
    state.resources.push(entry);
  }
  return entry;
}
