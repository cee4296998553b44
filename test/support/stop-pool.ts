/** Stops a test's pool on the shared dev server: its controller, its sweeper Schedule and every instance workflow. */
import type { Client } from '@temporalio/client';
import { poolWorkflowId, reconcileScheduleId } from '../../contracts/workflow-ids';

export async function stopPool(temporal: Client, poolName: string): Promise<void> {
  await temporal.workflow
    .getHandle(poolWorkflowId(poolName))
    .terminate('test finished')
    .catch(() => {});
  await temporal.schedule
    .getHandle(reconcileScheduleId(poolName))
    .delete()
    .catch(() => {});
  for await (const wf of temporal.workflow.list({
    query: `PoolName = '${poolName}' AND ExecutionStatus = 'Running'`,
  })) {
    await temporal.workflow
      .getHandle(wf.workflowId)
      .terminate('test finished')
      .catch(() => {});
  }
}
