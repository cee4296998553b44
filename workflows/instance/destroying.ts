/**
 * The `destroying` phase: the teardown, which is also the start saga's compensation. Compute goes first (it is
 * the last thing created and it uses the others), then the resources in reverse order of creation; each entry
 * is marked released, so a retried teardown resumes where it stopped. Compute is always destroyed by its
 * deterministic name, even if its creation was never registered.
 *
 *   everything released       → destroyed  (resourcesReleased; the workflow completes)
 *   a release out of retries  → failed     (teardownFailed; failedStep 'destroy': retry resumes the teardown)
 */
import { CancellationScope } from '@temporalio/workflow';
import { reasonOf } from './errors';
import { transition } from './record';
import { type InstanceContext, registerResource } from './state';

export async function runDestroying(ctx: InstanceContext): Promise<void> {
  const { state } = ctx;
  try {
    // Teardown must finish even if the workflow is cancelled meanwhile.
    await CancellationScope.nonCancellable(async () => {
      if (!state.resources.some((r) => r.kind === 'compute')) {
        registerResource(state, 'compute', state.computeProvider);
      }
      for (const entry of [...state.resources].reverse()) {
        if (entry.released) continue;
        if (entry.kind === 'compute') await ctx.providerSteps.destroyCompute(ctx.ids);
        else
          await ctx.providerSteps.releaseResource({
            ...ctx.ids,
            workflowId: ctx.workflowId,
            kind: entry.kind,
            provider: entry.provider,
            ref: entry.ref,
          });
        entry.released = true;
      }
    });
    ctx.requests.destroy = null;
    transition(ctx, 'destroyed', 'resourcesReleased', { actor: 'system', reason: 'all resources released' });
  } catch (err) {
    state.failedStep = 'destroy';
    state.lastError = `teardown failed: ${reasonOf(err)}`;
    transition(ctx, 'failed', 'teardownFailed', {
      actor: 'system',
      reason: `${state.lastError}; retry resumes the teardown`,
    });
  }
}
