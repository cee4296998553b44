/**
 * Plain data shared by workflows, activities and the API. No imports with side effects: workflow code
 * (bundled and sandboxed) imports this file too.
 */

export { INSTANCE_STATUSES, type InstanceStatus } from '../contracts/instance-status';

import type { InstanceStatus } from '../contracts/instance-status';

/** Who caused a transition: recorded in the audit trail. */
export type Actor = 'pool' | 'api' | 'operator' | 'instance' | 'system' | 'reconcile';

export interface ClaimRequest {
  /** The claim's Idempotency-Key; also the Update id and the runtime's provision requestId. */
  claimKey: string;
  agentName: string;
  instructions: string;
  templateSlug: string | null;
  /**
   * A join URL is a bearer link to someone's private group: the API puts it in the secret store under the
   * claim (`joinUrlSecretName`, contracts/secrets.ts) and only its presence travels through Temporal.
   */
  hasJoinUrl: boolean;
  /**
   * Reclaim the instance once its conversation has been quiet this long (anonymous claims, so that nobody can
   * hold the pool forever); 0 or absent: never.
   */
  conversationIdleTtlMs?: number;
  /**
   * The API request that sent the claim (its `X-Request-Id`, not secret): the activities of the claim log it, so
   * one id follows the claim through the API's and the worker's logs. Absent in claims sent before it existed.
   */
  requestId?: string;
}

/** What a claim Update answers: the instance it bound and the conversation it got (bearer links as flags only). */
export interface ClaimBinding {
  instanceId: string;
  agentName: string;
  conversationId: string | null;
  joined: boolean;
  status: 'created' | 'joined' | 'waiting_for_acceptance';
  /**
   * The invite and chat links are bearer links: they stay encrypted in Postgres (`INVITE_URL`, `CHAT_URL`)
   * and the API adds them to the one response that must carry them.
   */
  hasInviteUrl: boolean;
  hasChatUrl: boolean;
}

/** The audit reason of a claim's outcome (the workflow's and the provision activity's, which records it). */
export const provisionedReason = (status: ClaimBinding['status']) => `provisioned: ${status}`;

/** Durations are injectable so that tests run the whole lifecycle in seconds. All in milliseconds. */
export interface InstanceTimings {
  startDeadlineMs: number;
  healthIntervalMs: number;
  /** Consecutive failed health checks before an idle instance is replaced / a claimed one is crashed. */
  healthFailuresAllowed: number;
  idleTtlMs: number;
  claimedTtlMs: number;
  /** Restarts of a crashed instance before it is `failed` for an operator (who retries or destroys it). */
  maxRestarts: number;
  /**
   * Attempts of a provider step before it gives up: a start is then compensated (destroying), a restart counts
   * as failed, a teardown goes to `failed` for an operator.
   */
  stepMaxAttempts: number;
  /** History length after which a long-lived instance continues as new (well under Temporal's 51,200). */
  maxHistoryEvents: number;
  /**
   * How long a claim that joins an existing conversation waits in `pending_acceptance` for its creator to let
   * the agent in; then the instance is destroyed with the reason. Absent in the inputs of instances started
   * before it existed: DEFAULT_JOIN_ACCEPT_TIMEOUT_MS.
   */
  joinAcceptTimeoutMs?: number;
}

/** INSTANCE_JOIN_ACCEPT_TIMEOUT_MS's default: an hour for the conversation's creator to open Convos. */
export const DEFAULT_JOIN_ACCEPT_TIMEOUT_MS = 3_600_000;

/** The runtime's report that the creator let the agent in (`POST /api/pool/self/conversation`). */
export interface JoinAccepted {
  /** The claim's key (the runtime's provision requestId): a report about another claim is ignored. */
  requestId: string;
  conversationId: string;
}

export interface InstanceInput {
  instanceId: string;
  poolName: string;
  computeProvider: string;
  timings: InstanceTimings;
  /** The runtime version its compute is created with (the pool's declared one; absent: unknown). */
  runtimeVersion?: string | null;
  /** Carried over continue-as-new; absent on the first run. */
  state?: InstanceState;
}

/** One resource an instance gets at start (docs/providers.md), in creation order. */
export interface ResourcePlanItem {
  kind: string;
  provider: string;
}

/** A created resource as the workflow knows it: never a secret, only the provider's reference. */
export interface ResourceRef {
  kind: string;
  provider: string;
  ref: string;
}

/**
 * The saga's ledger: an entry is registered *before* its risky step (ref still null), so a start that fails
 * anywhere releases exactly what may exist; `released` lets a retried teardown resume where it stopped.
 */
export interface InstanceResourceRef {
  kind: string;
  provider: string;
  ref: string | null;
  released?: boolean;
}

export interface InstanceState {
  instanceId: string;
  poolName: string;
  status: InstanceStatus;
  computeProvider: string;
  /** The runtime version its compute was created with (absent in older histories: unknown). */
  runtimeVersion?: string | null;
  url: string | null;
  /** What to create besides compute, decided once per instance (so replays and retries agree). */
  plan: ResourcePlanItem[] | null;
  resources: InstanceResourceRef[];
  agentName: string | null;
  templateSlug: string | null;
  claim: ClaimRequest | null;
  result: ClaimBinding | null;
  createdAt: string;
  idleAt: string | null;
  claimedAt: string | null;
  /** While `pending_acceptance`: when the join is given up (ISO). */
  acceptanceDueAt?: string | null;
  lastError: string | null;
  /** Set while `failed`: the step an operator `retry` resumes (`restart` or `destroy`). */
  failedStep: string | null;
  /** Restarts of the crashed runtime so far; back to 0 once it answers again, or on an operator's retry. */
  restarts: number;
  /** Sequence of read-model writes and audit events; survives continue-as-new. */
  seq: number;
  /** The last read-model write the database refused for its data (it never retries); null when none. */
  readModelError?: string | null;
}

/**
 * What the health sweeper (activities/health-sweeper.ts) tells an instance workflow: its runtime failed
 * `failures` checks in a row (or its provider reports it gone) while the read model showed the instance at
 * `seq`. The workflow acts on it only at that same `seq` (a report about an earlier phase is stale).
 */
export interface HealthChange {
  seq: number;
  healthy: boolean;
  failures: number;
  gone: boolean;
  /** Why the last check failed (never a credential: the runtime client's own message). */
  error: string;
}

/** One pool's health sweeper (workflows/health-sweeper.ts): what it checks and how often. */
export interface HealthSweeperSettings {
  poolName: string;
  /** A pass over every live instance of a shard every this many ms (INSTANCE_HEALTH_INTERVAL_MS). */
  intervalMs: number;
  /** Failed checks in a row before the instance workflow is told (INSTANCE_HEALTH_FAILURES). */
  failuresAllowed: number;
  /** Shards, each one long-running activity over the instances whose id hashes to it. */
  shards: number;
  /** Health checks in flight at once per shard. */
  concurrency: number;
}

export interface StatusChange {
  actor: Actor;
  reason: string;
}

export interface PoolSettings {
  poolName: string;
  targetIdle: number;
  maxTotal: number;
  computeProvider: string;
  instanceTimings: InstanceTimings;
  /** Consecutive start failures that open the circuit breaker. */
  breakerThreshold: number;
  /** How long an open breaker waits before letting one trial start through. */
  breakerCooldownMs: number;
  /** How often the pool re-checks its instances against their workflows. */
  pollIntervalMs: number;
  /**
   * How often the sweeper Schedule runs. The pool does not use it: the worker that declares the settings
   * applies it to the Schedule, and the pool keeps it so that one place shows every setting in force.
   */
  reconcileIntervalMs?: number;
  /**
   * The runtime version new instances get (the compute provider's `runtimeVersion`); null or absent: unknown.
   * Idle and starting instances on another version are replaced, at most `upgradeBatch` starting at a time.
   */
  runtimeVersion?: string | null;
  /** How many replacements start at once while instances of an older version or provider are retired. */
  upgradeBatch?: number;
}

/** The pool settings an environment declares; `applySettings` compares them field by field. */
export const POOL_SETTING_KEYS = [
  'targetIdle',
  'maxTotal',
  'computeProvider',
  'instanceTimings',
  'breakerThreshold',
  'breakerCooldownMs',
  'pollIntervalMs',
  'reconcileIntervalMs',
  'runtimeVersion',
  'upgradeBatch',
] as const satisfies readonly (keyof PoolSettings)[];
export type PoolSettingKey = (typeof POOL_SETTING_KEYS)[number];

/** What `applySettings` answers, and what `GET /api/pool/info` shows as `config`. */
export interface PoolSettingsReport {
  /** In force now. */
  settings: PoolSettings;
  /** What the environment of the last worker start declared. */
  declared: PoolSettings;
  /** Settings an operator changed at run time (PUT /api/pool/target) that differ from the declaration. */
  overridden: PoolSettingKey[];
  /** Settings this application changed (empty when it declared nothing new). */
  changed: PoolSettingKey[];
  /** Idle or starting instances on a compute provider or runtime version other than the one in force, being replaced. */
  retiring: number;
}

export interface PoolInput {
  settings: PoolSettings;
  /** Carried over continue-as-new. */
  members?: Record<string, InstanceStatus>;
  /** Last reported sequence number per member. */
  seqs?: Record<string, number>;
  breaker?: BreakerState;
  /** The settings the environment declared last (absent before the first `applySettings`). */
  declared?: PoolSettings;
  /** The compute provider each member runs on. */
  providers?: Record<string, string>;
  /** Instances started that the read model did not show yet (read-model runs). */
  launched?: Record<string, { at: number; provider: string }>;
}

export interface BreakerState {
  consecutiveFailures: number;
  openedAt: string | null;
}

export interface PoolState {
  settings: PoolSettings;
  counts: Record<InstanceStatus, number>;
  members: Record<string, InstanceStatus>;
  breaker: BreakerState & { open: boolean };
  config: Omit<PoolSettingsReport, 'changed'>;
}
