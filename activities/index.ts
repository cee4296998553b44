/**
 * All activities, built by one factory from their dependencies so tests can hand in stand-ins.
 * Workflows import only the *type* `Activities`.
 */
import { randomBytes } from 'node:crypto';
import { WorkflowNotFoundError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { Runtime } from '@temporalio/worker';
import { and, eq } from 'drizzle-orm';
import { FailureType } from '../contracts/failures';
import { CHAT_URL, INSTANCE_TOKEN, INVITE_URL, joinUrlSecretName } from '../contracts/secrets';
import { instanceWorkflowId, poolWorkflowId } from '../contracts/workflow-ids';
import type { Db } from '../drizzle/client';
import { instanceRecipients, instanceResources } from '../drizzle/schema';
import { whileDatabaseUnavailable } from '../drizzle/unavailable';
import { drainInstanceUpdate, instanceChangedSignal } from '../workflows/messages';
import type { ClaimBinding, ClaimRequest } from '../workflows/types';
import type { ComputeHandle, ComputeProvider } from './compute/types';
import { createHealthSweeperActivities } from './health-sweeper';
import { createInboundActivities } from './inbound';
import { createPoolMemberActivities } from './pool-members';
import { PoolWakeups } from './pool-wakeups';
import { activityContext } from './providers/activity-context';
import { providerCall } from './providers/failures';
import {
  classifyDatabaseError,
  completeClaimedRecord,
  type TransitionRecord,
  writeTransition,
} from './read-model';
import { createReconcileActivities, type ReconcileDeps } from './reconcile';
import { createResourceActivities, type ResourceDeps, resourceEnvironment } from './resources';
import { postProvision } from './runtime-client';
import type { SecretStore } from './secret-store';

export interface ActivityDeps extends ReconcileDeps, ResourceDeps {
  db: Db;
  secrets: SecretStore;
  compute: Record<string, ComputeProvider>;
  /** Non-secret runtime settings every instance gets (pool URL, XMTP env, model); secrets are added here. */
  runtimeEnv: Record<string, string>;
}

export function createActivities(deps: ActivityDeps) {
  const provider = (name: string) => {
    const p = deps.compute[name];
    if (!p)
      throw ApplicationFailure.nonRetryable(
        `compute provider "${name}" is not configured`,
        FailureType.ComputeRejectedError,
      );
    return p;
  };

  /**
   * Instance tokens this worker has read, in its memory only (like the health sweeper's): a token never changes
   * while its instance lives (created once, deleted with the instance), so a claim's provision needs no
   * secret-store read on the hot path. Bounded: the oldest entries go first.
   */
  const tokens = new Map<string, string>();
  const rememberToken = (instanceId: string, token: string) => {
    tokens.delete(instanceId);
    tokens.set(instanceId, token);
    if (tokens.size > 20_000) tokens.delete(tokens.keys().next().value!);
    return token;
  };
  const instanceToken = async (instanceId: string) =>
    rememberToken(
      instanceId,
      await deps.secrets.getOrCreate(instanceId, INSTANCE_TOKEN, () => randomBytes(32).toString('base64url')),
    );

  /** The runtime's environment: shared settings, its own id and token, and its own resources' credentials. */
  const runtimeSpec = async (instanceId: string, poolName: string) => ({
    instanceId,
    poolName,
    env: {
      ...deps.runtimeEnv,
      ...(await resourceEnvironment(deps.db, deps.secrets, instanceId)),
      INSTANCE_ID: instanceId,
      INSTANCE_TOKEN: await instanceToken(instanceId),
    },
  });

  const recordCompute = async (instanceId: string, providerName: string, handle: ComputeHandle) => {
    await deps.db
      .insert(instanceResources)
      .values({
        instanceId,
        kind: 'compute',
        provider: providerName,
        ref: handle.ref,
        metadata: { url: handle.url },
      })
      .onConflictDoUpdate({
        target: [instanceResources.instanceId, instanceResources.kind],
        set: { ref: handle.ref, status: 'active', metadata: { url: handle.url }, releasedAt: null },
      });
  };

  const poolMembers = createPoolMemberActivities(deps);

  // The process's logger (system/logging.ts): a coalesced signal may go out after its activity ended.
  const warn = (message: string, fields: Record<string, unknown>) =>
    Runtime.instance().logger.warn(message, fields);
  /**
   * Tells the pool of a claim once its row is written, as the workflow's own signal would, but not awaited and
   * coalesced (./pool-wakeups.ts): the report is the pool's wake-up, not part of the claim's answer, which would
   * otherwise wait for a round trip through the Temporal service. The pool between runs or gone has nothing to
   * be told.
   */
  const wakeups = new PoolWakeups((poolName, report) =>
    deps.temporal.workflow
      .getHandle(poolWorkflowId(poolName))
      .signal(instanceChangedSignal, report)
      .catch((err) => {
        if (!(err instanceof WorkflowNotFoundError)) {
          warn('pool report failed', { poolName, instanceId: report.instanceId, error: String(err) });
        }
      }),
  );
  const reportToPool = (record: TransitionRecord) =>
    wakeups.wake(record.poolName, { instanceId: record.instanceId, status: record.to, seq: record.seq });

  return {
    async recordTransition(record: TransitionRecord): Promise<void> {
      await writeTransition(deps.db, record).catch((err) => {
        throw classifyDatabaseError(err);
      });
      if (record.reportToPool) reportToPool(record);
    },

    /** Creates (or adopts, after a lost response) the instance's compute with its own token. */
    async createCompute(input: {
      instanceId: string;
      poolName: string;
      provider: string;
    }): Promise<ComputeHandle> {
      const spec = await runtimeSpec(input.instanceId, input.poolName);
      const handle = await providerCall(() => provider(input.provider).create(spec), {
        metrics: deps.metrics,
        provider: input.provider,
        step: 'create',
      });
      await recordCompute(input.instanceId, input.provider, handle);
      return handle;
    },

    async restartCompute(input: {
      instanceId: string;
      poolName: string;
      provider: string;
    }): Promise<ComputeHandle> {
      const spec = await runtimeSpec(input.instanceId, input.poolName);
      const handle = await providerCall(() => provider(input.provider).restart(spec), {
        metrics: deps.metrics,
        provider: input.provider,
        step: 'restart',
      });
      await recordCompute(input.instanceId, input.provider, handle);
      return handle;
    },

    /** Destroys the compute by its deterministic name (so it also finds one whose creation we never heard of). */
    async destroyCompute(input: { instanceId: string; poolName: string; provider: string }): Promise<void> {
      await providerCall(() => provider(input.provider).destroy(input.instanceId, input.poolName), {
        metrics: deps.metrics,
        provider: input.provider,
        step: 'destroy',
      });
      await deps.db
        .update(instanceResources)
        .set({ status: 'released', releasedAt: new Date() })
        .where(
          and(eq(instanceResources.instanceId, input.instanceId), eq(instanceResources.kind, 'compute')),
        );
      await deps.secrets.deleteAll(input.instanceId);
      tokens.delete(input.instanceId);
      // The recipients its claimant allowed are personal data: they go with the instance.
      await deps.db.delete(instanceRecipients).where(eq(instanceRecipients.instanceId, input.instanceId));
    },

    /**
     * Provisions the claimed conversation on the instance (idempotent by the claim key). The join URL comes
     * from the secret store, and the invite and chat links go back into it: they are bearer links, so only
     * their presence goes back into the workflow.
     */
    async provision(input: {
      instanceId: string;
      url: string;
      request: ClaimRequest;
      /** The `claimed` write drafted by the workflow: made here once the runtime answered (not for a join
       * that waits for acceptance), so the claim needs no second local activity. */
      claimedRecord?: TransitionRecord;
    }): Promise<ClaimBinding & { recordedAt?: string }> {
      const { request } = input;
      // The claim's request id (from the API) in the worker's log: one id across both processes.
      const log = activityContext()?.log;
      const fields = {
        requestId: request.requestId,
        instanceId: input.instanceId,
        claimKey: request.claimKey,
      };
      // A claim in flight outlives a Postgres restart: its reads and writes of the secret store wait the
      // database out (bounded), where a failed attempt would taint the instance and fail the claim.
      const stored = <T>(fn: () => Promise<T>) =>
        whileDatabaseUnavailable(fn, {
          onWait: (err) => log?.warn('provision waits for the database', { ...fields, error: String(err) }),
        });
      const token =
        tokens.get(input.instanceId) ??
        (await stored(() => deps.secrets.get(input.instanceId, INSTANCE_TOKEN)));
      if (!token)
        throw ApplicationFailure.nonRetryable('instance token missing', FailureType.ProvisionRejected);
      rememberToken(input.instanceId, token);
      log?.info('provisioning claim', fields);
      const joinUrl = request.hasJoinUrl
        ? await stored(() => deps.secrets.get(input.instanceId, joinUrlSecretName(request.claimKey)))
        : null;
      if (request.hasJoinUrl && !joinUrl) {
        throw ApplicationFailure.nonRetryable(
          "the claim's join URL is not in the secret store",
          FailureType.ProvisionRefused,
        );
      }
      const res = await postProvision(input.url, token, {
        requestId: request.claimKey,
        agentName: request.agentName,
        instructions: request.instructions,
        ...(joinUrl ? { joinUrl } : {}),
      });
      const links = {
        ...(res.chatUrl ? { [CHAT_URL]: res.chatUrl } : {}),
        ...(res.inviteUrl ? { [INVITE_URL]: res.inviteUrl } : {}),
      };
      log?.info('claim provisioned', { ...fields, status: res.status });
      const binding: ClaimBinding = {
        instanceId: input.instanceId,
        agentName: request.agentName,
        conversationId: res.conversationId,
        joined: res.joined,
        status: res.status,
        hasInviteUrl: Boolean(res.inviteUrl),
        hasChatUrl: Boolean(res.chatUrl),
      };
      if (!input.claimedRecord || res.status === 'waiting_for_acceptance') {
        await stored(() => deps.secrets.putMany(input.instanceId, links));
        return binding;
      }
      const at = new Date().toISOString();
      const record = completeClaimedRecord(input.claimedRecord, binding, at);
      // The links and the claimed row in one statement: one round trip.
      const storeLinks = deps.secrets.putManyStatement(input.instanceId, links);
      try {
        await writeTransition(deps.db, record, storeLinks ? [storeLinks] : []);
      } catch (err) {
        // Not the claim's failure: the workflow makes the write itself, the usual way (retried while the
        // database is away, its refusal recorded in the workflow's state). The links must be stored, though:
        // the store is waited for (`stored`); a failure past that wait fails the attempt, and the retry asks the
        // runtime again (idempotent by claim key).
        log?.warn('claimed not recorded by provision', { ...fields, error: String(err) });
        await stored(() => deps.secrets.putMany(input.instanceId, links));
        return binding;
      }
      reportToPool(record);
      return { ...binding, recordedAt: at };
    },

    /** Drains up to `count` of the candidates; each instance's own drain Update decides (claimed ones refuse). */
    /** Drains up to `count` of `candidates` in order; `reason` goes to the audit trail (default: an operator's drain). */
    /**
     * Asks `count` of the candidates to drain (each instance's own drain Update decides). Without candidates
     * they come from the read model: idle first, then starting (the pool's `drain` Update, read-model runs).
     */
    async drainInstances(input: {
      candidates?: string[];
      poolName?: string;
      count: number;
      reason?: string;
    }): Promise<string[]> {
      const change = input.reason
        ? { actor: 'pool' as const, reason: input.reason }
        : { actor: 'operator' as const, reason: 'pool drain' };
      const candidates =
        input.candidates ??
        (await poolMembers.listDrainCandidates({
          poolName: input.poolName ?? '',
          limit: Math.min(100, input.count * 5),
        }));
      const drained: string[] = [];
      for (const instanceId of candidates) {
        if (drained.length >= input.count) break;
        try {
          await deps.temporal.workflow
            .getHandle(instanceWorkflowId(instanceId))
            .executeUpdate(drainInstanceUpdate, { args: [change] });
          drained.push(instanceId);
        } catch {
          // Rejected (claimed, already going) or gone: try the next candidate.
        }
      }
      return drained;
    },

    ...createResourceActivities(deps),
    // countPoolMembers (the pool controller's view of the read model).
    countPoolMembers: poolMembers.countPoolMembers,
    ...createReconcileActivities(deps),
    // checkHealth (one check, while starting) and sweepHealth (the sweeper's shards).
    ...createHealthSweeperActivities(deps),
    // deliverInbound, dropInbound (inbound email and SMS to the runtime).
    ...createInboundActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
