/**
 * Makes sure the pool exists and runs on the settings its environment declares: the controller workflow
 * (`pool-<name>`, created by update-with-start, so replicas starting together race harmlessly) and the reconcile
 * Schedule (created, or updated when its interval or task queue changed). Every worker start calls it; which
 * declared settings take effect on a running pool is the pool's rule (`applySettingsUpdate`, docs/deploy.md).
 */
import {
  type Client,
  ScheduleAlreadyRunning,
  ScheduleOverlapPolicy,
  WithStartWorkflowOperation,
  WorkflowUpdateFailedError,
} from '@temporalio/client';
import type { Config } from '../config/env';
import { healthSweeperWorkflowId, poolWorkflowId, reconcileScheduleId } from '../contracts/workflow-ids';
import type { healthSweeperWorkflow } from '../workflows/health-sweeper';
import { applySettingsUpdate, sweeperSettingsSignal } from '../workflows/messages';
import type { poolWorkflow } from '../workflows/pool';
import { PoolNameKey } from '../workflows/search-attributes';
import type { HealthSweeperSettings, PoolSettings, PoolSettingsReport } from '../workflows/types';

export function poolSettings(config: Config, overrides: Partial<PoolSettings> = {}): PoolSettings {
  return {
    poolName: config.pool.name,
    targetIdle: config.pool.targetIdle,
    maxTotal: config.pool.maxTotal,
    computeProvider: config.computeProvider,
    instanceTimings: config.instanceTimings,
    breakerThreshold: config.pool.breakerThreshold,
    breakerCooldownMs: config.pool.breakerCooldownMs,
    pollIntervalMs: 30_000,
    reconcileIntervalMs: config.reconcileIntervalMs,
    upgradeBatch: config.pool.upgradeBatch,
    ...overrides,
  };
}

/**
 * `apply: false` only creates what is missing and applies nothing (a process without a worker of the task queue:
 * an Update would wait for one). Answers the settings in force after applying, or null when not applied.
 */
export async function ensurePool(
  temporal: Client,
  config: Config,
  settings: PoolSettings = poolSettings(config),
  opts: { apply?: boolean } = {},
): Promise<PoolSettingsReport | null> {
  const start = {
    workflowId: poolWorkflowId(settings.poolName),
    taskQueue: config.temporal.taskQueue,
    args: [{ settings }] as Parameters<typeof poolWorkflow>,
    workflowIdConflictPolicy: 'USE_EXISTING' as const,
  };
  let report: PoolSettingsReport | null = null;
  if (opts.apply === false) await temporal.workflow.start<typeof poolWorkflow>('poolWorkflow', start);
  else {
    report = await temporal.workflow
      .executeUpdateWithStart(applySettingsUpdate, {
        args: [settings],
        startWorkflowOperation: new WithStartWorkflowOperation<typeof poolWorkflow>('poolWorkflow', start),
      })
      .catch((err) => {
        // The pool's validator refused them: say why, so the worker start fails with the reason.
        if (err instanceof WorkflowUpdateFailedError)
          throw new Error(`pool "${settings.poolName}" refused the declared settings: ${err.cause?.message}`);
        throw err;
      });
  }
  await ensureReconcileSchedule(temporal, config, settings);
  await ensureHealthSweeper(temporal, config, report?.settings ?? settings);
  return report;
}

/** Health checks in flight at once per shard: a pass over 500 runtimes that all hang takes 5 × 5 s. */
const HEALTH_CHECKS_IN_FLIGHT = 100;

/** The health sweeper's settings for a pool: the instance health settings, a shard per `shardSize` instances. */
export function healthSweeperSettings(config: Config, settings: PoolSettings): HealthSweeperSettings {
  return {
    poolName: settings.poolName,
    intervalMs: settings.instanceTimings.healthIntervalMs,
    failuresAllowed: settings.instanceTimings.healthFailuresAllowed,
    shards: Math.max(1, Math.ceil(settings.maxTotal / config.healthSweeperShardSize)),
    concurrency: HEALTH_CHECKS_IN_FLIGHT,
  };
}

/**
 * Starts the pool's health sweeper, or tells the running one the settings in force (signal-with-start: a
 * sweeper with the same settings ignores it; one with others restarts its shards on them).
 */
export async function ensureHealthSweeper(temporal: Client, config: Config, settings: PoolSettings) {
  const sweeper = healthSweeperSettings(config, settings);
  await temporal.workflow.signalWithStart<typeof healthSweeperWorkflow, [HealthSweeperSettings]>(
    'healthSweeperWorkflow',
    {
      workflowId: healthSweeperWorkflowId(settings.poolName),
      taskQueue: config.temporal.taskQueue,
      args: [{ settings: sweeper }],
      signal: sweeperSettingsSignal,
      signalArgs: [sweeper],
      typedSearchAttributes: [{ key: PoolNameKey, value: settings.poolName }],
    },
  );
}

async function ensureReconcileSchedule(temporal: Client, config: Config, settings: PoolSettings) {
  const scheduleId = reconcileScheduleId(settings.poolName);
  const every = settings.reconcileIntervalMs ?? config.reconcileIntervalMs;
  const action = {
    type: 'startWorkflow' as const,
    workflowType: 'reconcileWorkflow',
    args: [{ poolName: settings.poolName }],
    taskQueue: config.temporal.taskQueue,
    workflowId: scheduleId,
  };
  try {
    await temporal.schedule.create({
      scheduleId,
      spec: { intervals: [{ every }] },
      action,
      policies: { overlap: ScheduleOverlapPolicy.SKIP },
    });
    return;
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
  }
  const handle = temporal.schedule.getHandle(scheduleId);
  const current = await handle.describe();
  const interval = current.spec.intervals?.[0]?.every;
  const intervalMs = typeof interval === 'number' ? interval : Number.NaN;
  const taskQueue = current.action.type === 'startWorkflow' ? current.action.taskQueue : null;
  // The service keeps whole seconds.
  if (intervalMs === Math.round(every / 1000) * 1000 && taskQueue === config.temporal.taskQueue) return;
  await handle.update((previous) => ({
    ...previous,
    spec: { intervals: [{ every }] },
    action,
  }));
}
