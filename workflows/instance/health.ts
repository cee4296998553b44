/**
 * Watching a runtime's health: the wait for readiness (starting, and after a restart) and the `idle` and
 * `claimed` phases. Those sleep on the health sweeper's signal (activities/health-sweeper.ts checks every
 * live runtime from outside and signals only a change), the requests, and one timer for the nearest deadline
 * (the status's TTL, or when an anonymous claim's conversation could have gone quiet), and leave on the first of
 *
 *   a destroy request                          → destroying   (destroyRequested)
 *   the status's TTL                           → destroying   (idleTtlPassed / claimedTtlPassed)
 *   a claimed conversation quiet for too long  → destroying   (conversationQuiet; anonymous claims)
 *   N failed checks in a row (or runtime gone) → idle: destroying, claimed: crashed (healthFailed)
 *
 * or when history is long enough to continue as new. A claim moves an idle instance on without waking the wait
 * (`Patch.claimSleepsThrough`): idle, claiming and claimed are one wait, left by the claim's other outcomes
 * (a join waiting for acceptance, a failed provision).
 */
import { condition, setHandler, workflowInfo } from '@temporalio/workflow';
import { healthChangedSignal } from '../messages';
import type { InstanceStatus } from '../types';
import { checkHealth } from './activities';
import { inForce, Patch } from './patches';
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

/**
 * The health sweeper's report: kept for the phase when it is about the instance as it is now (same status
 * and `seq`); a report about an earlier phase (before a restart, a refused claim) is stale and dropped.
 */
export function registerHealthHandler(ctx: InstanceContext): void {
  setHandler(healthChangedSignal, (change) => {
    const { state } = ctx;
    if (change.healthy || change.seq !== state.seq) return;
    if (state.status === 'idle' || state.status === 'claimed') ctx.health.unhealthy ??= change;
  });
}

const historyLong = (ctx: InstanceContext) =>
  workflowInfo().continueAsNewSuggested || workflowInfo().historyLength > ctx.timings.maxHistoryEvents;

/** The `idle` phase. */
export const runIdle = (ctx: InstanceContext) =>
  watchHealth(ctx, 'idle', ctx.timings.idleTtlMs, ctx.state.idleAt);

/** The `claimed` phase. */
export const runClaimed = (ctx: InstanceContext) =>
  watchHealth(ctx, 'claimed', ctx.timings.claimedTtlMs, ctx.state.claimedAt);

/** Leaves `status` for what the health sweeper reported: idle → destroying, claimed → crashed. */
function healthFailed(ctx: InstanceContext, status: 'idle' | 'claimed', failures: number, error: string) {
  ctx.state.lastError = `health failed ${failures} times in a row: ${error}`;
  const to = status === 'idle' ? 'destroying' : 'crashed';
  return transition(ctx, to, 'healthFailed', { actor: 'system', reason: ctx.state.lastError });
}

/** The statuses one wait covers once a claim sleeps through it (`Patch.claimSleepsThrough`). */
const LIVE: ReadonlySet<InstanceStatus> = new Set(['idle', 'claiming', 'claimed']);

/**
 * The phase on the sweeper: waits for a signal, a request, or the nearest deadline (one timer, none when there
 * is no deadline), so an instance whose runtime stays healthy costs no action at all.
 *
 * `throughClaims` (`Patch.claimSleepsThrough`): `idle`, `claiming` and `claimed` are one wait, and a claim —
 * which moves the instance `idle → claiming → claimed` inside its own workflow task — does not wake it: no trip
 * round the loop, no second wait started, the idle TTL's timer left to run (when it fires on a claimed
 * instance, nothing is due and the wait sleeps on). It wakes for what a claimed instance must act on sooner
 * than that timer (its own TTL, its conversation's quiet check), and never while the claim is deciding.
 * Without it (histories recorded before), the wait is for `phase` alone and any change of status ends it.
 */
async function awaitChange(
  ctx: InstanceContext,
  phase: 'idle' | 'claimed',
  throughClaims: boolean,
): Promise<void> {
  const { state, timings } = ctx;
  const live = (s: InstanceStatus) => (throughClaims ? LIVE.has(s) : s === phase);
  /** The claim's next quiet check, once one was made (before that: its claim time plus the limit). */
  let quiet: { claimKey: string | null; at: number } | null = null;
  const quietLimit = () => (state.status === 'claimed' ? (state.claim?.conversationIdleTtlMs ?? 0) : 0);
  // When the conversation could first be quiet for too long: its last activity is only known by asking.
  const quietCheckAt = (): number | null => {
    const limit = quietLimit();
    if (limit <= 0) return null;
    const claimKey = state.claim?.claimKey ?? null;
    return quiet?.claimKey === claimKey ? quiet.at : Date.parse(state.claimedAt ?? now()) + limit;
  };
  const ttlOf = (): [number, string | null] =>
    state.status === 'idle'
      ? [timings.idleTtlMs, state.idleAt]
      : state.status === 'claimed'
        ? [timings.claimedTtlMs, state.claimedAt]
        : [0, null];
  const ttlAt = (): number | null => {
    const [ttlMs, since] = ttlOf();
    return ttlMs > 0 && since ? Date.parse(since) + ttlMs : null;
  };
  const dueAt = (): number | null => {
    const deadlines = [ttlAt(), quietCheckAt()].filter((t): t is number => t !== null);
    return deadlines.length === 0 ? null : Math.min(...deadlines);
  };
  while (live(state.status)) {
    if (historyLong(ctx)) return;
    const timerAt = dueAt();
    // Also wakes when history grew long (signals alone grow it): the main loop then continues as new.
    const woken = () => {
      const s = state.status;
      if (!live(s)) return true;
      // The claim Update is deciding (within its own task): nothing else may act on the instance meanwhile.
      if (s === 'claiming') return false;
      if (ctx.requests.destroy !== null || ctx.health.unhealthy !== null || historyLong(ctx)) return true;
      if (!throughClaims) return false;
      const due = dueAt();
      return due !== null && (timerAt === null || due < timerAt);
    };
    if (timerAt === null) await condition(woken);
    else {
      const wait = timerAt - Date.now();
      if (wait > 0) await condition(woken, wait);
    }
    if (!live(state.status)) return;
    if (state.status === 'claiming') {
      // Only a timer gets here mid-claim (a provision longer than its workflow task): the claim decides first.
      await condition(() => state.status !== 'claiming');
      continue;
    }
    const status = state.status as 'idle' | 'claimed';
    if (ctx.requests.destroy) return takeDestroyRequest(ctx);
    const unhealthy = ctx.health.unhealthy;
    if (unhealthy) {
      ctx.health.unhealthy = null;
      if (unhealthy.seq === state.seq) return healthFailed(ctx, status, unhealthy.failures, unhealthy.error);
      continue;
    }
    const ttlDue = ttlAt();
    if (ttlDue !== null && Date.now() >= ttlDue) {
      return transition(ctx, 'destroying', status === 'idle' ? 'idleTtlPassed' : 'claimedTtlPassed', {
        actor: 'system',
        reason: `${status} for longer than its TTL (${ttlOf()[0]} ms)`,
      });
    }
    const quietDue = quietCheckAt();
    if (quietDue !== null && Date.now() >= quietDue) {
      const limit = quietLimit();
      const claimKey = state.claim?.claimKey ?? null;
      const health = await checkHealth({ ...ctx.ids, url: state.url! }).catch(() => null);
      if (state.status !== status) return; // destroyed or crashed while we were asking
      const quietFor = conversationQuietMs(ctx, health?.lastActivityAt ?? null);
      if (quietFor > limit) {
        return transition(ctx, 'destroying', 'conversationQuiet', {
          actor: 'system',
          reason: `its conversation was quiet for longer than the claim's lifetime (${limit} ms)`,
        });
      }
      quiet = { claimKey, at: Date.now() + (limit - quietFor) + 1 };
    }
  }
}

/**
 * The phase before the health sweeper (histories recorded on that code replay it): a `checkHealth` activity
 * and a timer every `healthIntervalMs`. A run that goes on past its replay switches to `awaitChange` at its
 * next turn.
 */
async function watchHealth(
  ctx: InstanceContext,
  status: 'idle' | 'claimed',
  ttlMs: number,
  since: string | null,
): Promise<void> {
  const { state, timings } = ctx;
  let failures = 0;
  while (state.status === status) {
    if (inForce(ctx, Patch.healthSweeper)) {
      return awaitChange(ctx, status, inForce(ctx, Patch.claimSleepsThrough));
    }
    if (historyLong(ctx)) return;
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
    if (failures >= timings.healthFailuresAllowed)
      return healthFailed(ctx, status, failures, health?.error ?? 'not ready');
  }
}
