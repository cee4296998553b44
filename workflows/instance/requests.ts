/**
 * The state query and the requests from outside that the loop picks up: destroy (signal), retry (signal) and the
 * pool's drain (an Update, so the pool knows whether it was admitted), and the runtime's report that a join was
 * accepted (signal). Handlers only leave a request; the phase
 * that is running takes it (./health.ts, ./starting.ts, ./crashed.ts, ./failed.ts).
 */
import { setHandler } from '@temporalio/workflow';
import {
  destroySignal,
  drainInstanceUpdate,
  getStateQuery,
  joinAcceptedSignal,
  retrySignal,
} from '../messages';
import type { StatusChange } from '../types';
import { transition } from './record';
import type { InstanceContext } from './state';

export function registerRequestHandlers(ctx: InstanceContext): void {
  const { state, requests } = ctx;

  setHandler(getStateQuery, () => state);

  setHandler(destroySignal, (change) => {
    if (state.status === 'destroying' || state.status === 'destroyed') return;
    requests.destroy ??= change;
  });

  setHandler(retrySignal, (change) => {
    if (state.status === 'failed') requests.retry ??= change;
  });

  // Kept while the claim is still provisioning too: the runtime may hear of the acceptance before the
  // provision's answer is back. Only about this instance's claim, and only a conversation id.
  setHandler(joinAcceptedSignal, (report) => {
    if (state.status !== 'claiming' && state.status !== 'pending_acceptance') return;
    if (report?.requestId !== state.claim?.claimKey || typeof report.conversationId !== 'string') return;
    requests.accepted ??= report.conversationId;
  });

  setHandler(
    drainInstanceUpdate,
    (change) => {
      requests.destroy ??= change;
    },
    {
      validator: (_change: StatusChange) => {
        if ((state.status !== 'idle' && state.status !== 'starting') || requests.destroy) {
          throw new Error(`instance is ${state.status}: only idle or starting instances are drained`);
        }
      },
    },
  );
}

/** Takes the pending destroy request: → destroying, with the requester's actor and reason. */
export function takeDestroyRequest(ctx: InstanceContext): void {
  const change = ctx.requests.destroy!;
  ctx.requests.destroy = null;
  transition(ctx, 'destroying', 'destroyRequested', change);
}
