/**
 * The sweeper: run by a Temporal Schedule (every 5 minutes by default) and by `POST /api/pool/reconcile`.
 * It releases orphaned provider resources and repairs the read model; the report is its result.
 */
import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { ReconcileReport } from '../activities/reconcile';

const { reconcilePool } = proxyActivities<Activities>({
  startToCloseTimeout: '5m',
  retry: { maximumAttempts: 3 },
});

export async function reconcileWorkflow(input: { poolName: string }): Promise<ReconcileReport> {
  return reconcilePool(input);
}
