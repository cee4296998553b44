/**
 * Every transition of the instance lifecycle, in one table: `from → event → to`. The workflow names the event
 * and the status it moves to at each call site, and `checkTransition` holds the pair against this table; an
 * entry missing here is a bug (it throws in tests, is logged in production: see ./record.ts). The docs and the
 * tests import the table from here.
 *
 * Pure data with type-only imports: the workflow bundle, the tests and any docs generator can load it.
 */
import type { InstanceStatus } from '../types';

/** What makes an instance move. */
export type TransitionEvent =
  | 'poolStarted'
  | 'runtimeReady'
  | 'startDeadlinePassed'
  | 'startFailed'
  | 'runtimeExited'
  | 'destroyRequested'
  | 'claimAccepted'
  | 'provisioned'
  | 'provisionedPendingAcceptance'
  | 'joinAccepted'
  | 'acceptanceTimedOut'
  | 'provisionRefused'
  | 'provisionFailed'
  | 'idleTtlPassed'
  | 'claimedTtlPassed'
  | 'conversationQuiet'
  | 'healthFailed'
  | 'runtimeRestarted'
  | 'restartsExhausted'
  | 'retryRestart'
  | 'retryTeardown'
  | 'resourcesReleased'
  | 'teardownFailed';

export interface Transition {
  /** null: the workflow's first run, before anything is recorded. */
  from: InstanceStatus | null;
  event: TransitionEvent;
  to: InstanceStatus;
  /** What happens, in words (for the docs). */
  what: string;
}

export const TRANSITIONS: readonly Transition[] = [
  { from: null, event: 'poolStarted', to: 'starting', what: 'the pool started the instance workflow' },

  // starting (./starting.ts): resources in plan order, then compute, then the wait for readiness
  { from: 'starting', event: 'runtimeReady', to: 'idle', what: 'the runtime answers ready; idleAt is set' },
  { from: 'starting', event: 'destroyRequested', to: 'destroying', what: 'destroy signal or pool drain' },
  {
    from: 'starting',
    event: 'startDeadlinePassed',
    to: 'destroying',
    what: 'not ready within the start deadline: compensated, the pool starts a replacement',
  },
  {
    from: 'starting',
    event: 'startFailed',
    to: 'destroying',
    what: 'a provider step failed (rejected, or out of retries): compensated',
  },
  {
    from: 'starting',
    event: 'runtimeExited',
    to: 'destroying',
    what: 'the runtime exited while booting: compensated at once',
  },

  // idle (./health.ts)
  { from: 'idle', event: 'claimAccepted', to: 'claiming', what: 'the claim Update passed its validator' },
  { from: 'idle', event: 'destroyRequested', to: 'destroying', what: 'destroy signal or pool drain' },
  { from: 'idle', event: 'idleTtlPassed', to: 'destroying', what: 'idle for longer than the idle TTL' },
  {
    from: 'idle',
    event: 'healthFailed',
    to: 'destroying',
    what: 'health failed N times in a row (or the runtime is gone): replaced',
  },

  // claiming (./claim.ts): always ends within the claim's own workflow task
  { from: 'claiming', event: 'provisioned', to: 'claimed', what: 'the runtime provisioned the conversation' },
  {
    from: 'claiming',
    event: 'provisionedPendingAcceptance',
    to: 'pending_acceptance',
    what: "the runtime asked to join the claim's conversation; its creator has not let the agent in yet",
  },
  {
    from: 'claiming',
    event: 'provisionRefused',
    to: 'idle',
    what: 'the runtime refused the request itself (untouched): back to idle, same place in the queue',
  },
  {
    from: 'claiming',
    event: 'provisionFailed',
    to: 'destroying',
    what: 'a fault of the instance: tainted and destroyed, the API tries another instance',
  },

  // pending_acceptance (./acceptance.ts): the join is accepted, or given up after INSTANCE_JOIN_ACCEPT_TIMEOUT_MS
  {
    from: 'pending_acceptance',
    event: 'joinAccepted',
    to: 'claimed',
    what: 'the runtime reports the creator let the agent in; the conversation id is recorded',
  },
  {
    from: 'pending_acceptance',
    event: 'acceptanceTimedOut',
    to: 'destroying',
    what: 'not let in within the join-accept timeout: destroyed, the reason in lastError and the audit trail',
  },
  { from: 'pending_acceptance', event: 'destroyRequested', to: 'destroying', what: 'kill, self-destruct' },

  // claimed (./health.ts)
  { from: 'claimed', event: 'destroyRequested', to: 'destroying', what: 'kill, self-destruct, dismiss' },
  {
    from: 'claimed',
    event: 'claimedTtlPassed',
    to: 'destroying',
    what: 'claimed for longer than the claimed TTL',
  },
  {
    from: 'claimed',
    event: 'conversationQuiet',
    to: 'destroying',
    what: "the conversation was quiet for longer than the claim's lifetime (anonymous claims)",
  },
  { from: 'claimed', event: 'healthFailed', to: 'crashed', what: 'health failed N times in a row' },

  // crashed (./crashed.ts)
  {
    from: 'crashed',
    event: 'runtimeRestarted',
    to: 'claimed',
    what: 'restarted from its persisted state and ready again',
  },
  {
    from: 'crashed',
    event: 'restartsExhausted',
    to: 'failed',
    what: 'not back after the allowed restarts: waits for an operator',
  },
  { from: 'crashed', event: 'destroyRequested', to: 'destroying', what: 'kill or dismiss' },

  // failed (./failed.ts): only an operator moves it on
  { from: 'failed', event: 'retryRestart', to: 'crashed', what: 'retry of a failed restart: restarts again' },
  {
    from: 'failed',
    event: 'retryTeardown',
    to: 'destroying',
    what: 'retry of a failed teardown: resumes it',
  },
  { from: 'failed', event: 'destroyRequested', to: 'destroying', what: 'kill or dismiss' },

  // destroying (./destroying.ts)
  {
    from: 'destroying',
    event: 'resourcesReleased',
    to: 'destroyed',
    what: 'compute, then every resource in reverse order, released: the workflow completes',
  },
  {
    from: 'destroying',
    event: 'teardownFailed',
    to: 'failed',
    what: 'a release failed out of retries: waits for an operator (retry resumes the teardown)',
  },
];

/** The row for `from → event`, when there is one. */
export function findTransition(from: InstanceStatus | null, event: TransitionEvent): Transition | undefined {
  return TRANSITIONS.find((t) => t.from === from && t.event === event);
}

/** Why `from → event → to` is not a transition of the table, or null when it is. */
export function transitionProblem(
  from: InstanceStatus | null,
  event: TransitionEvent,
  to: InstanceStatus,
): string | null {
  const row = findTransition(from, event);
  if (!row) return `no transition from ${from ?? '(new)'} on ${event}`;
  if (row.to !== to) return `${from ?? '(new)'} on ${event} goes to ${row.to}, not ${to}`;
  return null;
}

/** Whether the table has a transition `from → to` (on any event): what the read model records. */
export function isTransition(from: InstanceStatus | null, to: InstanceStatus): boolean {
  return TRANSITIONS.some((t) => t.from === from && t.to === to);
}

/**
 * The memo key a starter sets (to `true`) to make an illegal transition fail the workflow instead of being
 * logged: the fast workflow tests start every instance with it.
 */
export const STRICT_TRANSITIONS_MEMO = 'strictTransitions';
