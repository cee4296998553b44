/**
 * The instance lifecycle: one durable workflow per agent instance (docs/architecture.md: the lifecycle table).
 *
 *   starting → idle → claiming → (pending_acceptance →) claimed → destroying → destroyed
 *                        ↘ idle              ↘ destroying     ↘ crashed ↗     ↘ failed (an operator retries or destroys)
 *
 * Every transition is a row of one table (instance/transitions.ts). The loop runs the phase of the current
 * status, one module each (instance/starting.ts, health.ts for idle and claimed, claim.ts, acceptance.ts, crashed.ts,
 * failed.ts, destroying.ts); the claim Update and the signals (destroy, retry, and the health sweeper's
 * healthChanged) only flip state or leave a request, and the loop follows. Every transition is recorded in the read model and audit trail, reported to the pool and mirrored
 * in the `InstanceStatus` search attribute (instance/record.ts).
 */
import { allHandlersFinished, condition, continueAsNew, workflowInfo } from '@temporalio/workflow';
import { runPendingAcceptance } from './instance/acceptance';
import { registerClaimHandler, runClaiming } from './instance/claim';
import { runCrashed } from './instance/crashed';
import { runDestroying } from './instance/destroying';
import { runFailed } from './instance/failed';
import { registerHealthHandler, runClaimed, runIdle } from './instance/health';
import { transition } from './instance/record';
import { registerRequestHandlers } from './instance/requests';
import { runStarting } from './instance/starting';
import { createContext, type InstanceContext } from './instance/state';
import type { InstanceInput, InstanceStatus } from './types';

/** Nothing in flight and no handler running: the run may end or continue as new. */
const quiescent = (ctx: InstanceContext) => () => ctx.inFlight === 0 && allHandlersFinished();

export async function instanceWorkflow(input: InstanceInput): Promise<void> {
  const ctx = createContext(input);
  const { state, timings } = ctx;
  registerRequestHandlers(ctx);
  registerClaimHandler(ctx);
  registerHealthHandler(ctx);

  if (!input.state) {
    // First run: put the instance in the read model and audit trail before anything can go wrong.
    state.seq = 0;
    transition(ctx, 'starting', 'poolStarted', { actor: 'pool', reason: 'pool started the instance' });
  }

  for (;;) {
    switch (state.status) {
      case 'starting':
        await runStarting(ctx);
        break;
      case 'idle':
        await runIdle(ctx);
        break;
      case 'claiming':
        await runClaiming(ctx);
        break;
      case 'pending_acceptance':
        await runPendingAcceptance(ctx);
        break;
      case 'claimed':
        await runClaimed(ctx);
        break;
      case 'crashed':
        await runCrashed(ctx);
        break;
      case 'failed':
        await runFailed(ctx);
        break;
      case 'destroying':
        await runDestroying(ctx);
        break;
      case 'destroyed':
        await condition(quiescent(ctx));
        return;
    }
    // Long-lived instances continue as new before their history grows too long (invariant 7).
    const info = workflowInfo();
    if (
      (info.continueAsNewSuggested || info.historyLength > timings.maxHistoryEvents) &&
      (state.status === 'idle' || state.status === 'claimed' || state.status === 'failed')
    ) {
      await condition(quiescent(ctx));
      // A claim may have started while we waited; then the loop goes on and tries again later.
      if ((state.status as InstanceStatus) !== 'claiming') {
        return continueAsNew<typeof instanceWorkflow>({ ...input, state });
      }
    }
  }
}
