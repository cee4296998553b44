/**
 * The instance lifecycle: one durable workflow per agent instance (ARCHITECTURE §3).
 *
 *   starting → idle → claiming → claimed → destroying → destroyed
 *                                   ↘ crashed ↗            any step out of retries → failed (operator)
 *
 * The main loop runs one phase per status; the claim Update and the signals only flip state and the loop
 * follows. Every transition is recorded in the read model and audit trail, reported to the pool and
 * mirrored in the `InstanceStatus` search attribute.
 */

import type { SearchAttributeUpdatePair } from '@temporalio/common';
import {
  ActivityCancellationType,
  ActivityFailure,
  ApplicationFailure,
  allHandlersFinished,
  CancellationScope,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { AuditEvent } from '../activities/read-model';
import { agentNameProblem, instructionsProblem } from '../contracts/claim';
import { ClaimFailure, FailureType } from '../contracts/failures';
import {
  claimUpdate,
  destroySignal,
  drainInstanceUpdate,
  getStateQuery,
  instanceChangedSignal,
  retrySignal,
} from './messages';
import { AgentNameKey, InstanceStatusKey, TemplateSlugKey } from './search-attributes';
import type {
  ClaimRequest,
  ClaimResult,
  InstanceInput,
  InstanceState,
  InstanceStatus,
  StatusChange,
} from './types';

const { recordTransition } = proxyLocalActivities<Activities>({
  startToCloseTimeout: '10s',
  // The read model must converge: keep retrying while Postgres is unreachable or restarting. A write it
  // refuses for its data fails at once (ReadModelDataError, non-retryable): retrying could never succeed.
  retry: { initialInterval: '200ms', maximumInterval: '10s' },
});

// Deciding which resources an instance gets only reads configuration (and records skipped kinds): a local
// activity, so a start with no providers configured costs no extra round trip through the server.
const { planResources } = proxyLocalActivities<Activities>({
  startToCloseTimeout: '10s',
  retry: { initialInterval: '200ms', maximumInterval: '10s' },
});

const { checkHealth } = proxyActivities<Activities>({
  startToCloseTimeout: '8s',
  retry: { maximumAttempts: 1 },
});

/** Short message of a failure, without stack or wrapper noise. */
function reasonOf(err: unknown): string {
  if (err instanceof ActivityFailure && err.cause) return err.cause.message;
  return err instanceof Error ? err.message : String(err);
}

/** The `type` of the application failure behind an activity failure. */
function failureType(err: unknown): string | undefined {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  return cause instanceof ApplicationFailure ? (cause.type ?? undefined) : undefined;
}

export async function instanceWorkflow(input: InstanceInput): Promise<void> {
  const t = input.timings;
  const now = () => new Date().toISOString();
  const s: InstanceState = input.state ?? {
    instanceId: input.instanceId,
    poolName: input.poolName,
    status: 'starting',
    computeProvider: input.computeProvider,
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
  const ids = { instanceId: s.instanceId, poolName: s.poolName, provider: s.computeProvider };
  const workflowId = workflowInfo().workflowId;

  const stepRetry = {
    initialInterval: '500ms',
    backoffCoefficient: 2,
    maximumInterval: '30s',
    maximumAttempts: t.stepMaxAttempts,
    nonRetryableErrorTypes: [FailureType.ComputeRejectedError, FailureType.ProviderRejectedError],
  };
  const compute = proxyActivities<Activities>({
    startToCloseTimeout: '3m',
    // Provider calls heartbeat (activities/providers/failures.ts): a dead worker's attempt is retried after
    // 30 s, and a cancelled start reaches the call in flight.
    heartbeatTimeout: '30s',
    retry: stepRetry,
    // A provider call cannot be interrupted halfway: a cancelled start waits for the call in flight to end,
    // so the compensation that follows sees (and releases) everything it created.
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  });
  // A local activity: the claim runs in one workflow task (no activity-task round trip through the server),
  // which is most of a claim's latency. Provisioning is idempotent by the claim key, so a replay after a
  // worker crash simply asks the runtime again.
  const { provision } = proxyLocalActivities<Activities>({
    startToCloseTimeout: '2m',
    retry: {
      initialInterval: '200ms',
      maximumAttempts: 3,
      nonRetryableErrorTypes: [FailureType.ProvisionRejected],
    },
  });

  let destroyRequest: StatusChange | null = null;
  let retryRequest: StatusChange | null = null;
  /** Read-model writes and pool notifications still in flight: the workflow never ends or continues before them. */
  let pending = 0;

  /** Reports a transition to the pool; `seq` lets it ignore reports that arrive out of order. */
  function notifyPool(status: InstanceStatus) {
    pending += 1;
    getExternalWorkflowHandle(`pool-${s.poolName}`)
      .signal(instanceChangedSignal, { instanceId: s.instanceId, status, seq: s.seq })
      .catch(() => {
        // The pool may be between runs or gone; the reconcile workflow re-syncs its membership.
      })
      .finally(() => {
        pending -= 1;
      });
  }

  /**
   * The `claiming` event waits for the claim's outcome and is written with it: one read-model write per
   * claim instead of two (the API's reservation already keeps other claims off the instance meanwhile).
   */
  let deferred: AuditEvent | null = null;
  let deferredAttributes: SearchAttributeUpdatePair[] = [];

  /** Flips the state synchronously, then records it (read model, audit, pool, search attribute). */
  function transition(
    to: InstanceStatus,
    change: StatusChange,
    details?: Record<string, unknown>,
    searchAttributes: SearchAttributeUpdatePair[] = [],
  ) {
    const from = s.seq === 0 ? null : s.status;
    s.status = to;
    s.seq += 1;
    // A claim the runtime refused puts the instance back where it was in the idle queue.
    if (to === 'idle' && from !== 'claiming') s.idleAt = now();
    if (to === 'claimed' && !s.claimedAt) s.claimedAt = now();
    // `claiming` is always followed by `claimed` or `destroying` within the claim's own workflow task: its
    // search attributes, audit event and read-model write go out with that outcome (one visibility update,
    // one transaction), and the pool, which counts idle and starting instances, is not woken for it.
    // Histories of instances started before this change replay the old way (two writes, two upserts).
    if (to === 'claiming' && patched('deferred-claiming')) {
      deferredAttributes = searchAttributes;
      deferred = { seq: s.seq, from, to, actor: change.actor, reason: change.reason, at: now(), details };
      return;
    }
    upsertSearchAttributes([
      { key: InstanceStatusKey, value: to },
      ...deferredAttributes,
      ...searchAttributes,
    ]);
    deferredAttributes = [];
    if (to !== 'claiming') notifyPool(to);
    const earlier = deferred ? [deferred] : undefined;
    deferred = null;
    pending += 1;
    recordTransition({
      ...(earlier ? { earlier } : {}),
      instanceId: s.instanceId,
      poolName: s.poolName,
      provider: s.computeProvider,
      seq: s.seq,
      from,
      to,
      actor: change.actor,
      reason: change.reason,
      at: now(),
      fields: {
        url: s.url,
        agentName: s.agentName,
        templateSlug: s.templateSlug,
        conversationId: s.result?.conversationId ?? null,
        joined: s.result?.joined ?? false,
        claimKey: s.claim?.claimKey ?? null,
        lastError: s.lastError,
        failedStep: s.failedStep,
        idleAt: s.idleAt,
        claimedAt: s.claimedAt,
        ...(to === 'destroyed' ? { destroyedAt: now() } : {}),
      },
      details,
    })
      .catch((err) => {
        // Only a write the database refuses for its data gets here; the workflow goes on regardless (it is
        // the truth, the read model a view) and says so: in its state, for getState, and in the worker log.
        s.readModelError = `${to} (seq ${s.seq}): ${reasonOf(err)}`;
        log.error('read-model write refused', { instanceId: s.instanceId, error: s.readModelError });
      })
      .finally(() => {
        pending -= 1;
      });
  }

  const takeDestroyRequest = () => {
    const change = destroyRequest!;
    destroyRequest = null;
    transition('destroying', change);
  };

  setHandler(getStateQuery, () => s);

  setHandler(destroySignal, (change) => {
    if (s.status === 'destroying' || s.status === 'destroyed') return;
    destroyRequest ??= change;
  });

  setHandler(retrySignal, (change) => {
    if (s.status === 'failed') retryRequest ??= change;
  });

  setHandler(
    drainInstanceUpdate,
    (change) => {
      destroyRequest ??= change;
    },
    {
      validator: (_change: StatusChange) => {
        if ((s.status !== 'idle' && s.status !== 'starting') || destroyRequest) {
          throw new Error(`instance is ${s.status}: only idle or starting instances are drained`);
        }
      },
    },
  );

  /** The claim this instance already holds, when `request` repeats it (an API retry after continue-as-new). */
  const heldResult = (request: ClaimRequest): ClaimResult | null =>
    s.result !== null && s.claim?.claimKey === request.claimKey ? s.result : null;

  setHandler(
    claimUpdate,
    async (request: ClaimRequest) => {
      // The same claim again: the same answer, whatever happened since (Update ids only dedupe within a run).
      const held = heldResult(request);
      if (held) return held;
      // The state flips before the first await: no second claim can pass the validator from here on.
      s.claim = request;
      s.agentName = request.agentName;
      s.templateSlug = request.templateSlug;
      transition('claiming', { actor: 'api', reason: `claim ${request.claimKey}` }, undefined, [
        { key: AgentNameKey, value: request.agentName },
        ...(request.templateSlug ? [{ key: TemplateSlugKey, value: request.templateSlug }] : []),
      ]);
      try {
        const result = await provision({ instanceId: s.instanceId, url: s.url!, request });
        s.result = result;
        transition(
          'claimed',
          { actor: 'api', reason: `provisioned: ${result.status}` },
          { claimKey: request.claimKey },
        );
        return result;
      } catch (err) {
        if (failureType(err) === FailureType.ProvisionRefused) {
          // The runtime refused the request itself before recording anything: the instance is untouched, so
          // it goes back to idle (same place in the queue) and the claim fails; no other instance is tried.
          s.claim = null;
          s.agentName = null;
          s.templateSlug = null;
          deferredAttributes = [];
          transition('idle', { actor: 'api', reason: `claim ${request.claimKey} refused: ${reasonOf(err)}` });
          throw ApplicationFailure.nonRetryable(reasonOf(err), ClaimFailure.refused);
        }
        // A fault of the instance (5xx, timeout, crash, a conflict): it may hold half a conversation. It is
        // tainted and destroyed; the API retries elsewhere.
        s.lastError = `provisioning failed: ${reasonOf(err)}`;
        transition('destroying', { actor: 'system', reason: s.lastError });
        throw ApplicationFailure.nonRetryable(s.lastError, ClaimFailure.provisionFailed);
      }
    },
    {
      validator: (request: ClaimRequest) => {
        if (!request?.claimKey || typeof request.instructions !== 'string') {
          throw new Error('claim needs claimKey, agentName and instructions');
        }
        if (heldResult(request)) return;
        if (s.status !== 'idle' || destroyRequest) throw new Error(`instance is ${s.status}, not idle`);
        // The claim contract again, at the last gate: nothing the runtime or the read model would refuse.
        const problem = agentNameProblem(request.agentName) ?? instructionsProblem(request.instructions);
        if (problem) throw ApplicationFailure.nonRetryable(problem, ClaimFailure.refused);
      },
    },
  );

  /** Polls health until ready, a destroy request, or the deadline. */
  async function waitReady(deadlineAt: number): Promise<'ready' | 'deadline' | 'destroy' | 'gone'> {
    const poll = Math.min(1000, t.healthIntervalMs);
    for (;;) {
      const health = await checkHealth({ ...ids, url: s.url! }).catch(() => null);
      if (health?.ready) return 'ready';
      // The runtime exited while booting: waiting for the deadline would only delay the replacement.
      if (health?.gone) return 'gone';
      const remaining = deadlineAt - Date.now();
      if (remaining <= 0) return 'deadline';
      if (await condition(() => destroyRequest !== null, Math.min(poll, remaining))) return 'destroy';
    }
  }

  /** Registers a saga entry before its risky step (or finds the one an earlier attempt registered). */
  function register(kind: string, provider: string) {
    let entry = s.resources.find((r) => r.kind === kind);
    if (!entry) {
      entry = { kind, provider, ref: null };
      s.resources.push(entry);
    }
    return entry;
  }

  /**
   * The per-instance resources, in plan order (wallet, LLM key, inbox, phone), before compute: the runtime
   * starts with their credentials in its environment. Each is registered for compensation first.
   */
  async function createResources() {
    s.plan ??= await planResources({ instanceId: s.instanceId });
    for (const item of s.plan) {
      const entry = register(item.kind, item.provider);
      if (entry.ref) continue;
      const created = await compute.createResource({
        ...ids,
        workflowId,
        kind: item.kind,
        provider: item.provider,
      });
      entry.ref = created.ref;
    }
  }

  async function runStarting() {
    const deadlineAt = Date.parse(s.createdAt) + t.startDeadlineMs;
    // Compute creation and the wait for readiness race the start deadline; compensation is `destroying`,
    // which releases everything by the instance's deterministic name, created or half-created.
    let outcome = 'deadline' as 'ready' | 'deadline' | 'destroy' | 'error' | 'gone';
    const scope = new CancellationScope();
    const attempt = scope
      .run(async () => {
        // Instances started before the resource saga existed created compute only.
        if (patched('resource-saga')) await createResources();
        const computeEntry = register('compute', s.computeProvider);
        const handle = await compute.createCompute(ids);
        computeEntry.ref = handle.ref;
        s.url = handle.url;
        return waitReady(deadlineAt);
      })
      .then(
        (r) => {
          outcome = r;
        },
        (err) => {
          if (!isCancellation(err)) {
            outcome = 'error';
            s.lastError = `start failed: ${reasonOf(err)}`;
          }
        },
      );
    let settled = false;
    void attempt.then(() => {
      settled = true;
    });
    const remaining = Math.max(0, deadlineAt - Date.now());
    await condition(() => settled || destroyRequest !== null, remaining);
    if (!settled) {
      scope.cancel();
      const reason = destroyRequest ? 'destroy' : 'deadline';
      if (patched('wait-cancelled-start')) await attempt;
      outcome = reason;
    }
    if (outcome === 'ready') return transition('idle', { actor: 'system', reason: 'runtime ready' });
    if (outcome === 'destroy' || destroyRequest) return takeDestroyRequest();
    if (outcome === 'deadline') s.lastError = `not ready within the start deadline (${t.startDeadlineMs} ms)`;
    if (outcome === 'gone') s.lastError = 'the runtime exited while starting';
    transition(
      'destroying',
      { actor: 'system', reason: s.lastError ?? 'start failed' },
      { startFailed: true },
    );
  }

  /** How long the claimed conversation has been quiet: since its last message, or since the claim. */
  function conversationQuietMs(lastActivityAt: string | null): number {
    const since = Math.max(Date.parse(s.claimedAt ?? now()), lastActivityAt ? Date.parse(lastActivityAt) : 0);
    return Date.now() - since;
  }

  /** Health checks at an interval while the status holds; returns when it changes or history is long. */
  async function watchHealth(status: 'idle' | 'claimed', ttlMs: number, since: string | null) {
    let failures = 0;
    while (s.status === status) {
      if (workflowInfo().continueAsNewSuggested || workflowInfo().historyLength > t.maxHistoryEvents) return;
      await condition(() => s.status !== status || destroyRequest !== null, t.healthIntervalMs);
      if (s.status !== status) return;
      if (destroyRequest) return takeDestroyRequest();
      if (ttlMs > 0 && since && Date.now() - Date.parse(since) > ttlMs) {
        return transition('destroying', {
          actor: 'system',
          reason: `${status} for longer than its TTL (${ttlMs} ms)`,
        });
      }
      const health = await checkHealth({ ...ids, url: s.url! }).catch(() => null);
      if (s.status !== status) return; // claimed while we were checking
      const quietFor = status === 'claimed' ? conversationQuietMs(health?.lastActivityAt ?? null) : 0;
      const quietLimit = s.claim?.conversationIdleTtlMs ?? 0;
      if (quietLimit > 0 && quietFor > quietLimit) {
        return transition('destroying', {
          actor: 'system',
          reason: `its conversation was quiet for longer than the claim's lifetime (${quietLimit} ms)`,
        });
      }
      // A runtime its provider reports gone counts as all misses at once (e.g. after a machine restart).
      failures = health?.ready ? 0 : health?.gone ? t.healthFailuresAllowed : failures + 1;
      if (failures >= t.healthFailuresAllowed) {
        s.lastError = `health failed ${failures} times in a row: ${health?.error ?? 'not ready'}`;
        if (status === 'idle') return transition('destroying', { actor: 'system', reason: s.lastError });
        return transition('crashed', { actor: 'system', reason: s.lastError });
      }
    }
  }

  async function runCrashed() {
    while (s.status === 'crashed') {
      if (destroyRequest) return takeDestroyRequest();
      if (s.restarts >= t.maxRestarts) {
        s.failedStep = 'restart';
        return transition('failed', {
          actor: 'system',
          reason: `runtime did not come back after ${s.restarts} restarts; retry restarts it again, kill destroys it`,
        });
      }
      s.restarts += 1;
      try {
        const handle = await compute.restartCompute(ids);
        s.url = handle.url;
      } catch (err) {
        s.lastError = `restart failed: ${reasonOf(err)}`;
        continue;
      }
      const ready = await waitReady(Date.now() + t.startDeadlineMs);
      if (ready === 'ready') {
        s.restarts = 0;
        s.lastError = null;
        return transition('claimed', { actor: 'system', reason: 'runtime restarted from its state' });
      }
    }
  }

  async function runFailed() {
    await condition(() => retryRequest !== null || destroyRequest !== null);
    const retry = retryRequest;
    retryRequest = null;
    if (retry && s.failedStep === 'restart') {
      s.failedStep = null;
      s.restarts = 0;
      return transition('crashed', retry);
    }
    const change = retry ?? destroyRequest!;
    destroyRequest = null;
    s.failedStep = null;
    transition('destroying', change);
  }

  async function runDestroying() {
    try {
      // Teardown must finish even if the workflow is cancelled meanwhile. Compute goes first (it is the
      // last thing created and it uses the others), then the resources in reverse order of creation. Compute
      // is always destroyed by its deterministic name, even if its creation was never registered.
      await CancellationScope.nonCancellable(async () => {
        if (!s.resources.some((r) => r.kind === 'compute')) register('compute', s.computeProvider);
        for (const entry of [...s.resources].reverse()) {
          if (entry.released) continue;
          if (entry.kind === 'compute') await compute.destroyCompute(ids);
          else
            await compute.releaseResource({
              ...ids,
              workflowId,
              kind: entry.kind,
              provider: entry.provider,
              ref: entry.ref,
            });
          entry.released = true;
        }
      });
      destroyRequest = null;
      transition('destroyed', { actor: 'system', reason: 'all resources released' });
    } catch (err) {
      s.failedStep = 'destroy';
      s.lastError = `teardown failed: ${reasonOf(err)}`;
      transition('failed', { actor: 'system', reason: `${s.lastError}; retry resumes the teardown` });
    }
  }

  if (!input.state) {
    // First run: put the instance in the read model and audit trail before anything can go wrong.
    s.seq = 0;
    transition('starting', { actor: 'pool', reason: 'pool started the instance' });
  }

  for (;;) {
    switch (s.status) {
      case 'starting':
        await runStarting();
        break;
      case 'idle':
        await watchHealth('idle', t.idleTtlMs, s.idleAt);
        break;
      case 'claiming':
        await condition(() => s.status !== 'claiming');
        break;
      case 'claimed':
        await watchHealth('claimed', t.claimedTtlMs, s.claimedAt);
        break;
      case 'crashed':
        await runCrashed();
        break;
      case 'failed':
        await runFailed();
        break;
      case 'destroying':
        await runDestroying();
        break;
      case 'destroyed':
        await condition(() => pending === 0 && allHandlersFinished());
        return;
    }
    const info = workflowInfo();
    if (
      (info.continueAsNewSuggested || info.historyLength > t.maxHistoryEvents) &&
      (s.status === 'idle' || s.status === 'claimed' || s.status === 'failed')
    ) {
      await condition(() => pending === 0 && allHandlersFinished());
      // A claim may have started while we waited; then the loop goes on and tries again later.
      if ((s.status as InstanceStatus) !== 'claiming') {
        return continueAsNew<typeof instanceWorkflow>({ ...input, state: s });
      }
    }
  }
}
