/**
 * The `starting` phase: the start saga. The per-instance resources in plan order (wallet, LLM key, inbox,
 * phone), then compute (the runtime starts with their credentials in its environment), then the wait for
 * readiness; all of it races the start deadline. Each step is registered in the saga's ledger before it runs,
 * so the compensation (`destroying`) releases exactly what may exist.
 *
 *   ready                                 → idle        (runtimeReady)
 *   a destroy request                     → destroying  (destroyRequested)
 *   the start deadline                    → destroying  (startDeadlinePassed)
 *   a step rejected or out of retries     → destroying  (startFailed)
 *   the runtime exited while booting      → destroying  (runtimeExited)
 */
import { CancellationScope, condition, isCancellation } from '@temporalio/workflow';
import { planResources } from './activities';
import { reasonOf } from './errors';
import { waitReady } from './health';
import { inForce, Patch } from './patches';
import { transition } from './record';
import { takeDestroyRequest } from './requests';
import { type InstanceContext, registerResource } from './state';
import type { TransitionEvent } from './transitions';

type StartOutcome = 'ready' | 'deadline' | 'destroy' | 'error' | 'gone';

/** The per-instance resources, in plan order, each registered for compensation first. */
async function createResources(ctx: InstanceContext): Promise<void> {
  const { state } = ctx;
  state.plan ??= await planResources({ instanceId: state.instanceId });
  for (const item of state.plan) {
    const entry = registerResource(state, item.kind, item.provider);
    if (entry.ref) continue;
    const created = await ctx.providerSteps.createResource({
      ...ctx.ids,
      workflowId: ctx.workflowId,
      kind: item.kind,
      provider: item.provider,
    });
    entry.ref = created.ref;
  }
}

export async function runStarting(ctx: InstanceContext): Promise<void> {
  const { state, timings } = ctx;
  const deadlineAt = Date.parse(state.createdAt) + timings.startDeadlineMs;
  // Compute creation and the wait for readiness race the start deadline; compensation is `destroying`,
  // which releases everything by the instance's deterministic name, created or half-created.
  let outcome = 'deadline' as StartOutcome;
  const scope = new CancellationScope();
  const attempt = scope
    .run(async () => {
      // Instances started before the resource saga existed created compute only.
      if (inForce(ctx, Patch.resourceSaga)) await createResources(ctx);
      const computeEntry = registerResource(state, 'compute', state.computeProvider);
      const handle = await ctx.providerSteps.createCompute(ctx.ids);
      computeEntry.ref = handle.ref;
      state.url = handle.url;
      // What the provider actually launched (an adopted compute may run another version than was asked).
      if (handle.runtimeVersion) state.runtimeVersion = handle.runtimeVersion;
      return waitReady(ctx, deadlineAt);
    })
    .then(
      (readiness) => {
        outcome = readiness;
      },
      (err) => {
        if (!isCancellation(err)) {
          outcome = 'error';
          state.lastError = `start failed: ${reasonOf(err)}`;
        }
      },
    );
  let settled = false;
  void attempt.then(() => {
    settled = true;
  });
  const remaining = Math.max(0, deadlineAt - Date.now());
  await condition(() => settled || ctx.requests.destroy !== null, remaining);
  if (!settled) {
    scope.cancel();
    const reason = ctx.requests.destroy ? 'destroy' : 'deadline';
    if (inForce(ctx, Patch.waitCancelledStart)) await attempt;
    outcome = reason;
  }
  if (outcome === 'ready') {
    return transition(ctx, 'idle', 'runtimeReady', { actor: 'system', reason: 'runtime ready' });
  }
  if (outcome === 'destroy' || ctx.requests.destroy) return takeDestroyRequest(ctx);
  // Compensation: `destroying` releases whatever may exist; the pool starts a replacement.
  let event: TransitionEvent = 'startFailed'; // lastError names the step
  if (outcome === 'deadline') {
    event = 'startDeadlinePassed';
    state.lastError = `not ready within the start deadline (${timings.startDeadlineMs} ms)`;
  } else if (outcome === 'gone') {
    event = 'runtimeExited';
    state.lastError = 'the runtime exited while starting';
  }
  transition(
    ctx,
    'destroying',
    event,
    { actor: 'system', reason: state.lastError ?? 'start failed' },
    { details: { startFailed: true } },
  );
}
