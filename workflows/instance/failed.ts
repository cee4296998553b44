/**
 * The `failed` phase: a step ran out of retries (a restart or the teardown) and the instance waits for an
 * operator. It says why in `lastError` and which step in `failedStep`.
 *
 *   retry, failedStep 'restart'  → crashed     (retryRestart: restarts again, the count reset)
 *   retry, failedStep 'destroy'  → destroying  (retryTeardown: resumes the teardown where it stopped)
 *   destroy                      → destroying  (destroyRequested)
 */
import { condition } from '@temporalio/workflow';
import { transition } from './record';
import type { InstanceContext } from './state';

export async function runFailed(ctx: InstanceContext): Promise<void> {
  const { state, requests } = ctx;
  await condition(() => requests.retry !== null || requests.destroy !== null);
  const retry = requests.retry;
  requests.retry = null;
  if (retry && state.failedStep === 'restart') {
    state.failedStep = null;
    state.restarts = 0;
    return transition(ctx, 'crashed', 'retryRestart', retry);
  }
  const change = retry ?? requests.destroy!;
  requests.destroy = null;
  state.failedStep = null;
  transition(ctx, 'destroying', retry ? 'retryTeardown' : 'destroyRequested', change);
}
