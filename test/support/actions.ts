/**
 * Counting billable Temporal actions from a dev server's `action` metric (the counter Temporal Cloud bills by),
 * for the liveness test and `npm run bench -- actions`. Nothing here asks the instance workflows anything
 * during a window: a Query is an action too.
 */
import { reconcileScheduleId } from '../../contracts/workflow-ids';
import { readActions } from '../../scripts/temporal-dev';
import type { Stack } from '../stack';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Actions per second over `ms`. */
export async function actionRate(metricsPort: number, ms: number): Promise<number> {
  const before = await readActions(metricsPort);
  await sleep(ms);
  return ((await readActions(metricsPort)) - before) / (ms / 1000);
}

/**
 * Stops the pool's reconcile Schedule from firing by itself, so a run never lands in a window by chance (at
 * its interval it fires at fixed wall-clock times); `reconcileRunActions` then counts one run on demand.
 */
export async function pauseReconcileSchedule(stack: Stack): Promise<void> {
  await stack.temporal.schedule.getHandle(reconcileScheduleId(stack.poolName)).pause('counting actions');
}

/**
 * The action count once it stopped moving for 3 s: the dev server publishes the counter a moment after the
 * actions (up to seconds later), so a count read right after a run misses its last ones.
 */
async function settledActions(metricsPort: number): Promise<number> {
  let last = await readActions(metricsPort);
  let stableSince = Date.now();
  const deadline = Date.now() + 20_000;
  while (Date.now() - stableSince < 3000 && Date.now() < deadline) {
    await sleep(250);
    const now = await readActions(metricsPort);
    if (now !== last) {
      last = now;
      stableSince = Date.now();
    }
  }
  return last;
}

/** How often the pool's reconcile Schedule runs, as the Schedule itself says. */
export async function reconcileIntervalMs(stack: Stack): Promise<number> {
  const every = (await stack.temporal.schedule.getHandle(reconcileScheduleId(stack.poolName)).describe()).spec
    .intervals?.[0]?.every;
  if (typeof every !== 'number') throw new Error(`the reconcile Schedule has no interval (${String(every)})`);
  return every;
}

/**
 * The actions one run of the reconcile Schedule costs: triggered as the Schedule itself would start it, awaited,
 * with the pool's own background rate (`baselinePerSecond`) over the same time taken off.
 */
export async function reconcileRunActions(
  stack: Stack,
  metricsPort: number,
  baselinePerSecond: number,
): Promise<number> {
  const schedule = stack.temporal.schedule.getHandle(reconcileScheduleId(stack.poolName));
  const lastRun = async () =>
    (await schedule.describe()).info.recentActions.at(-1)?.action.workflow.workflowId;
  const previous = await lastRun();
  const before = await settledActions(metricsPort);
  const started = Date.now();
  await schedule.trigger();
  let workflowId: string | undefined;
  while (!workflowId) {
    if (Date.now() - started > 30_000) throw new Error('the triggered reconcile run did not start');
    const last = await lastRun();
    if (last !== previous) workflowId = last;
    else await sleep(100);
  }
  await stack.temporal.workflow.getHandle(workflowId).result();
  const actions = (await settledActions(metricsPort)) - before;
  return actions - (baselinePerSecond * (Date.now() - started)) / 1000;
}
