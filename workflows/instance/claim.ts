/**
 * `idle → claiming → claimed`: the claim Update. Its validator is the arbiter (synchronous: only an idle
 * instance with no destroy pending admits a claim, and only one that keeps the claim contract); the handler
 * flips the state before its first await, so no second claim can pass the validator, then provisions.
 *
 *   provisioned                        → claimed, the result returned
 *   provisioned, waiting for acceptance → pending_acceptance (./acceptance.ts), the result returned
 *   ProvisionRefused (the runtime 400) → idle again, same place in the queue; the claim fails ClaimRefused
 *   anything else                      → destroying (tainted); the claim fails ProvisionFailed
 *
 * A repeat of the claim the instance holds (same claim key: an API retry, possibly after continue-as-new,
 * where Update ids no longer dedupe) gets the same answer whatever happened since.
 */
import { ApplicationFailure, condition, setHandler } from '@temporalio/workflow';
import { agentNameProblem, instructionsProblem } from '../../contracts/claim';
import { ClaimFailure, FailureType } from '../../contracts/failures';
import { claimUpdate } from '../messages';
import { AgentNameKey, TemplateSlugKey } from '../search-attributes';
import {
  type ClaimBinding,
  type ClaimRequest,
  DEFAULT_JOIN_ACCEPT_TIMEOUT_MS,
  provisionedReason,
} from '../types';
import { provision } from './activities';
import { failureType, reasonOf } from './errors';
import { inForce, Patch } from './patches';
import { draftClaimedRecord, transition } from './record';
import type { InstanceContext } from './state';

export function registerClaimHandler(ctx: InstanceContext): void {
  const { state } = ctx;

  /** The claim this instance already holds, when `request` repeats it. */
  const heldResult = (request: ClaimRequest): ClaimBinding | null =>
    state.result !== null && state.claim?.claimKey === request.claimKey ? state.result : null;

  setHandler(
    claimUpdate,
    async (request: ClaimRequest) => {
      const held = heldResult(request);
      if (held) return held;
      // The state flips before the first await: no second claim can pass the validator from here on.
      state.claim = request;
      state.agentName = request.agentName;
      state.templateSlug = request.templateSlug;
      transition(
        ctx,
        'claiming',
        'claimAccepted',
        { actor: 'api', reason: `claim ${request.claimKey}` },
        {
          searchAttributes: [
            // Search attributes are plaintext on the Temporal service: no user data (histories recorded
            // before the patch upserted the agent name, and replay that way).
            ...(inForce(ctx, Patch.noAgentNameAttribute)
              ? []
              : [{ key: AgentNameKey, value: request.agentName }]),
            ...(request.templateSlug ? [{ key: TemplateSlugKey, value: request.templateSlug }] : []),
          ],
        },
      );
      const provisioned = { actor: 'api' as const, details: { claimKey: request.claimKey } };
      try {
        // The provision activity records `claimed` itself, from this draft: one local activity per claim.
        const claimedRecord = inForce(ctx, Patch.provisionRecordsClaimed)
          ? draftClaimedRecord(
              ctx,
              { actor: provisioned.actor, reason: provisionedReason('created') },
              provisioned.details,
            )
          : undefined;
        const { recordedAt, ...result } = await provision({
          instanceId: state.instanceId,
          url: state.url!,
          request,
          ...(claimedRecord ? { claimedRecord } : {}),
        });
        state.result = result;
        // A join the creator has not accepted yet: tracked until the runtime reports it, or given up.
        if (result.status === 'waiting_for_acceptance' && inForce(ctx, Patch.pendingAcceptance)) {
          const timeoutMs = ctx.timings.joinAcceptTimeoutMs ?? DEFAULT_JOIN_ACCEPT_TIMEOUT_MS;
          state.acceptanceDueAt = new Date(Date.now() + timeoutMs).toISOString();
          transition(
            ctx,
            'pending_acceptance',
            'provisionedPendingAcceptance',
            { actor: 'api', reason: 'provisioned: waiting for the conversation to accept the join' },
            { details: { claimKey: request.claimKey } },
          );
          return result;
        }
        // Recorded by the activity: the state takes its time (claimedAt in the row and here agree).
        if (recordedAt) state.claimedAt ??= recordedAt;
        transition(
          ctx,
          'claimed',
          'provisioned',
          { actor: provisioned.actor, reason: provisionedReason(result.status) },
          { details: provisioned.details, recorded: recordedAt !== undefined },
        );
        return result;
      } catch (err) {
        if (failureType(err) === FailureType.ProvisionRefused) {
          // The runtime refused the request itself before recording anything: the instance is untouched, so
          // it goes back to idle (same place in the queue) and the claim fails; no other instance is tried.
          state.claim = null;
          state.agentName = null;
          state.templateSlug = null;
          ctx.deferredClaiming.searchAttributes = [];
          transition(ctx, 'idle', 'provisionRefused', {
            actor: 'api',
            reason: `claim ${request.claimKey} refused: ${reasonOf(err)}`,
          });
          throw ApplicationFailure.nonRetryable(reasonOf(err), ClaimFailure.refused);
        }
        // A fault of the instance (5xx, timeout, crash, a conflict): it may hold half a conversation. It is
        // tainted and destroyed; the API retries elsewhere.
        state.lastError = `provisioning failed: ${reasonOf(err)}`;
        transition(ctx, 'destroying', 'provisionFailed', { actor: 'system', reason: state.lastError });
        throw ApplicationFailure.nonRetryable(state.lastError, ClaimFailure.provisionFailed);
      }
    },
    {
      validator: (request: ClaimRequest) => {
        if (!request?.claimKey || typeof request.instructions !== 'string') {
          throw new Error('claim needs claimKey, agentName and instructions');
        }
        if (heldResult(request)) return;
        if (state.status !== 'idle' || ctx.requests.destroy) {
          throw new Error(`instance is ${state.status}, not idle`);
        }
        // The claim contract again, at the last gate: nothing the runtime or the read model would refuse.
        const problem = agentNameProblem(request.agentName) ?? instructionsProblem(request.instructions);
        if (problem) throw ApplicationFailure.nonRetryable(problem, ClaimFailure.refused);
      },
    },
  );
}

/**
 * The `claiming` phase of the loop: the claim Update moves the instance on, within its own workflow task. Only
 * runs recorded before `Patch.claimSleepsThrough` come here: since then the live wait (./health.ts) sleeps
 * through the claim.
 */
export async function runClaiming(ctx: InstanceContext): Promise<void> {
  await condition(() => ctx.state.status !== 'claiming');
}
