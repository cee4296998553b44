/**
 * The `crashed` phase: a claimed instance whose runtime stopped answering is restarted from its persisted
 * state through its compute provider, up to `maxRestarts` times.
 *
 *   restarted and ready   → claimed     (runtimeRestarted; the restart count starts again)
 *   restarts exhausted    → failed      (restartsExhausted; failedStep 'restart': retry restarts it again)
 *   a destroy request     → destroying  (destroyRequested)
 */
import { reasonOf } from './errors';
import { waitReady } from './health';
import { transition } from './record';
import { takeDestroyRequest } from './requests';
import type { InstanceContext } from './state';

export async function runCrashed(ctx: InstanceContext): Promise<void> {
  const { state, timings } = ctx;
  while (state.status === 'crashed') {
    if (ctx.requests.destroy) return takeDestroyRequest(ctx);
    if (state.restarts >= timings.maxRestarts) {
      state.failedStep = 'restart';
      return transition(ctx, 'failed', 'restartsExhausted', {
        actor: 'system',
        reason: `runtime did not come back after ${state.restarts} restarts; retry restarts it again, kill destroys it`,
      });
    }
    state.restarts += 1;
    try {
      const handle = await ctx.providerSteps.restartCompute(ctx.ids);
      state.url = handle.url;
      // A restart runs the version the provider launches now: a crash-restart is also an upgrade.
      if (handle.runtimeVersion) state.runtimeVersion = handle.runtimeVersion;
    } catch (err) {
      state.lastError = `restart failed: ${reasonOf(err)}`;
      continue;
    }
    const readiness = await waitReady(ctx, Date.now() + timings.startDeadlineMs);
    if (readiness === 'ready') {
      state.restarts = 0;
      state.lastError = null;
      return transition(ctx, 'claimed', 'runtimeRestarted', {
        actor: 'system',
        reason: 'runtime restarted from its state',
      });
    }
  }
}
