/**
 * A pool's health sweeper (`health-<pool>`): runs one long-running `sweepHealth` activity per shard of the
 * pool's live instances (activities/health-sweeper.ts), each for an hour, then the next; it restarts them
 * when a worker start declares other settings (`sweeperSettings` signal) and continues as new once a day.
 * The activities heartbeat, so a crashed worker's shard is taken over by another worker within the heartbeat
 * timeout. Its cost is fixed per shard: one activity an hour plus one recorded heartbeat a minute.
 */
import {
  ActivityCancellationType,
  CancellationScope,
  condition,
  continueAsNew,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import { sweeperSettingsSignal } from './messages';
import type { HealthSweeperSettings } from './types';

/** How long one run of a shard's activity lasts. */
export const SWEEP_RUN_MS = 60 * 60_000;
/** A shard's activity records a heartbeat at most this often (each one is a billable action). */
export const SWEEP_HEARTBEAT_EVERY_MS = 60_000;
/** Runs before continuing as new (a day). */
const RUNS_PER_WORKFLOW = 24;

const { sweepHealth } = proxyActivities<Activities>({
  startToCloseTimeout: SWEEP_RUN_MS + 10 * 60_000,
  // Twice the heartbeat cadence: a dead worker's shard is retried on another worker within 2 minutes.
  heartbeatTimeout: 2 * SWEEP_HEARTBEAT_EVERY_MS,
  retry: { initialInterval: '1s', maximumInterval: '30s' },
  // New settings take effect at once: the old shards learn of their cancellation at their next recorded
  // heartbeat (up to a minute), and checking a runtime twice meanwhile is harmless.
  cancellationType: ActivityCancellationType.TRY_CANCEL,
});

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

export async function healthSweeperWorkflow(input: { settings: HealthSweeperSettings }): Promise<void> {
  let settings = input.settings;
  let declared: HealthSweeperSettings | null = null;
  setHandler(sweeperSettingsSignal, (next) => {
    declared = same(next, settings) ? null : next;
  });

  for (let run = 0; run < RUNS_PER_WORKFLOW && !workflowInfo().continueAsNewSuggested; run++) {
    const scope = new CancellationScope();
    const shards = scope.run(() =>
      Promise.all(
        Array.from({ length: settings.shards }, (_, shard) =>
          sweepHealth({
            ...settings,
            shard,
            runForMs: SWEEP_RUN_MS,
            heartbeatEveryMs: SWEEP_HEARTBEAT_EVERY_MS,
          }),
        ),
      ),
    );
    const changed = await Promise.race([
      shards.then(() => false),
      condition(() => declared !== null).then(() => true),
    ]);
    if (changed) {
      scope.cancel();
      await shards.catch(() => {});
      settings = declared!;
      declared = null;
    }
  }
  return continueAsNew<typeof healthSweeperWorkflow>({ settings: declared ?? settings });
}
