/**
 * Workflow and Schedule ids: how the API, the worker bootstrap, the activities and the workflows name the
 * same Temporal executions. Plain TypeScript with no imports (the workflow bundle loads it too).
 */

/** An instance's lifecycle workflow. */
export const instanceWorkflowId = (instanceId: string) => `instance-${instanceId}`;
/** A pool's controller workflow. */
export const poolWorkflowId = (poolName: string) => `pool-${poolName}`;
/** The Schedule that runs a pool's sweeper, and the id of the workflows it starts. */
export const reconcileScheduleId = (poolName: string) => `reconcile-${poolName}`;
/** A sweep asked for through the API (`unique`: one per request, so no request is merged into another). */
export const requestedReconcileWorkflowId = (poolName: string, unique: string) =>
  `reconcile-${poolName}-requested-${unique}`;
/** A pool's health sweeper workflow (one long-running activity per shard of its live instances). */
export const healthSweeperWorkflowId = (poolName: string) => `health-${poolName}`;
/** The delivery of one inbound email or SMS to its instance (one per provider event: the id dedupes). */
export const inboundDeliveryWorkflowId = (provider: string, eventId: string) =>
  `inbound-${provider}-${eventId}`;
