/**
 * Makes sure the pool exists: its controller workflow (`pool-<name>`) and the reconcile Schedule.
 * Safe to call on every start; an existing pool keeps the targets operators gave it.
 */
import { type Client, ScheduleAlreadyRunning, ScheduleOverlapPolicy } from '@temporalio/client';
import type { Config } from '../config/env';
import { poolWorkflowId, reconcileScheduleId } from '../contracts/workflow-ids';
import type { PoolSettings } from '../workflows/types';

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
    ...overrides,
  };
}

export async function ensurePool(
  temporal: Client,
  config: Config,
  settings: PoolSettings = poolSettings(config),
) {
  await temporal.workflow.start('poolWorkflow', {
    workflowId: poolWorkflowId(settings.poolName),
    taskQueue: config.temporal.taskQueue,
    args: [{ settings }],
    workflowIdConflictPolicy: 'USE_EXISTING',
  });
  try {
    await temporal.schedule.create({
      scheduleId: reconcileScheduleId(settings.poolName),
      spec: { intervals: [{ every: config.reconcileIntervalMs }] },
      action: {
        type: 'startWorkflow',
        workflowType: 'reconcileWorkflow',
        args: [{ poolName: settings.poolName }],
        taskQueue: config.temporal.taskQueue,
        workflowId: reconcileScheduleId(settings.poolName),
      },
      policies: { overlap: ScheduleOverlapPolicy.SKIP },
    });
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
  }
}
