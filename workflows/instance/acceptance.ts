/**
 * `pending_acceptance`: a claim that joins an existing conversation, waiting for its creator to let the agent
 * in. It leaves on the first of
 *
 *   the runtime's report (joinAccepted signal)   → claimed, the conversation id recorded
 *   a destroy request                            → destroying (destroyRequested)
 *   the join-accept timeout                      → destroying (acceptanceTimedOut), the reason in lastError
 */
import { condition } from '@temporalio/workflow';
import { DEFAULT_JOIN_ACCEPT_TIMEOUT_MS } from '../types';
import { transition } from './record';
import { takeDestroyRequest } from './requests';
import type { InstanceContext } from './state';

export async function runPendingAcceptance(ctx: InstanceContext): Promise<void> {
  const { state, requests } = ctx;
  const timeoutMs = ctx.timings.joinAcceptTimeoutMs ?? DEFAULT_JOIN_ACCEPT_TIMEOUT_MS;
  const dueAt = state.acceptanceDueAt ? Date.parse(state.acceptanceDueAt) : Date.now() + timeoutMs;
  const woken = () => requests.accepted !== null || requests.destroy !== null;
  const wait = dueAt - Date.now();
  if (wait > 0) await condition(woken, wait);
  if (requests.destroy) return takeDestroyRequest(ctx);
  state.acceptanceDueAt = null;
  const conversationId = requests.accepted;
  requests.accepted = null;
  if (conversationId !== null) {
    state.result = state.result && { ...state.result, conversationId, joined: true, status: 'joined' };
    return transition(ctx, 'claimed', 'joinAccepted', {
      actor: 'instance',
      reason: 'the conversation accepted the join',
    });
  }
  state.lastError = `the join was not accepted within ${timeoutMs} ms`;
  transition(ctx, 'destroying', 'acceptanceTimedOut', { actor: 'system', reason: state.lastError });
}
