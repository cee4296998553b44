/**
 * Watching a runtime's health: the wait for readiness (starting, and after a restart) and the `idle` and
 * `claimed` phases, which check health at an interval and leave on the first of
 *
 *   a destroy request                          → destroying   (destroyRequested)
 *   the status's TTL                           → destroying   (idleTtlPassed / claimedTtlPassed)
 *   a claimed conversation quiet for too long  → destroying   (conversationQuiet; anonymous claims)
 *   N failed checks in a row (or runtime gone) → idle: destroying, claimed: crashed (healthFailed)
 *
 * or when a claim moves an idle instance on, or when history is long enough to continue as new.
 */
import { condition, workflowInfo } from '@temporalio/workflow';
import { checkHealth } from './activities';
import { transition } from './record';
import { takeDestroyRequest } from './requests';
import { type InstanceContext, now } from './state';

export type Readiness = 'ready' | 'deadline' | 'destroy' | 'gone';

/** Polls health until ready, a destroy request, the runtime gone, or the deadline. */
export async function waitReady(ctx: InstanceContext, deadlineAt: number): Promise<Readiness> {
  const poll = Math.min(1000, ctx.timings.healthIntervalMs);
  for (;;) {
    const health = await checkHealth({ ...ctx.ids, url: ctx.state.url! }).catch(() => null);
    if (health?.ready) return 'ready';
    // The runtime exited while booting: waiting for the deadline would only delay the replacement.
    if (health?.gone) return 'gone';
    const remaining = deadlineAt - Date.now();
    if (remaining <= 0) return 'deadline';
    if (await condition(() => ctx.requests.destroy !== null, Math.min(poll, remaining))) return 'destroy';
  }
}

/** How long the claimed conversation has been quiet: since its last message, or since the claim. */
function conversationQuietMs(ctx: InstanceContext, lastActivityAt: string | null): number {
  const since = Math.max(
    Date.parse(ctx.state.claimedAt ?? now()),
    lastActivityAt ? Date.parse(lastActivityAt) : 0,
  );
  return Date.now() - since;
}

/** The `idle` phase. */
export const runIdle = (ctx: InstanceContext) =>
  watchHealth(ctx, 'idle', ctx.timings.idleTtlMs, ctx.state.idleAt);

/** The `claimed` phase. */
export const runClaimed = (ctx: InstanceContext) =>
  watchHealth(ctx, 'claimed', ctx.timings.claimedTtlMs, ctx.state.claimedAt);

/** Health checks at an interval while the status holds; returns when it changes or history is long. */
async function watchHealth(
  ctx: InstanceContext,
  status: 'idle' | 'claimed',
  ttlMs: number,
  since: string | null,
): Promise<void> {
  const { state, timings } = ctx;
  let failures = 0;
  while (state.status === status) {
    if (workflowInfo().continueAsNewSuggested || workflowInfo().historyLength > timings.maxHistoryEvents)
      return;
    await condition(() => state.status !== status || ctx.requests.destroy !== null, timings.healthIntervalMs);
    if (state.status !== status) return;
    if (ctx.requests.destroy) return takeDestroyRequest(ctx);
    if (ttlMs > 0 && since && Date.now() - Date.parse(since) > ttlMs) {
      return transition(ctx, 'destroying', status === 'idle' ? 'idleTtlPassed' : 'claimedTtlPassed', {
        actor: 'system',
        reason: `${status} for longer than its TTL (${ttlMs} ms)`,
      });
    }
    const health = await checkHealth({ ...ctx.ids, url: state.url! }).catch(() => null);
    if (state.status !== status) return; // claimed while we were checking
    const quietFor = status === 'claimed' ? conversationQuietMs(ctx, health?.lastActivityAt ?? null) : 0;
    const quietLimit = state.claim?.conversationIdleTtlMs ?? 0;
    if (quietLimit > 0 && quietFor > quietLimit) {
      return transition(ctx, 'destroying', 'conversationQuiet', {
        actor: 'system',
        reason: `its conversation was quiet for longer than the claim's lifetime (${quietLimit} ms)`,
      });
    }
    // A runtime its provider reports gone counts as all misses at once (e.g. after a machine restart).
    failures = health?.ready ? 0 : health?.gone ? timings.healthFailuresAllowed : failures + 1;
    if (failures >= timings.healthFailuresAllowed) {
      state.lastError = `health failed ${failures} times in a row: ${health?.error ?? 'not ready'}`;
      if (status === 'idle') {
        return transition(ctx, 'destroying', 'healthFailed', { actor: 'system', reason: state.lastError });
      }
      return transition(ctx, 'crashed', 'healthFailed', { actor: 'system', reason: state.lastError });
    }
  }
}
