/**
 * The sweeper's activities: compare what providers hold, which instance workflows run, and what the read
 * model says; release orphans and repair the read model. Everything it does goes to the audit trail.
 */
import type { Client } from '@temporalio/client';
import { and, eq, isNotNull, lt, ne, sql } from 'drizzle-orm';
import { instanceWorkflowId, poolWorkflowId } from '../contracts/workflow-ids';
import type { Db } from '../drizzle/client';
import { instanceEvents, instanceResources, instances } from '../drizzle/schema';
import { getPoolStateQuery, getStateQuery, instanceChangedSignal } from '../workflows/messages';
import { InstanceStatusKey } from '../workflows/search-attributes';
import type { InstanceStatus } from '../workflows/types';
import type { ComputeProvider } from './compute/types';
import type { ActivityMetrics } from './metrics';
import { providerCall } from './providers/failures';
import { resourceName } from './providers/types';
import { writeTransition } from './read-model';
import type { ResourceProviders } from './resources';
import type { SecretStore } from './secret-store';

export interface ReconcileDeps {
  db: Db;
  secrets: SecretStore;
  temporal: Client;
  compute: Record<string, ComputeProvider>;
  resources: ResourceProviders;
  /** The worker's series (none: nothing is counted). */
  metrics?: ActivityMetrics;
}

export interface ReconcileReport {
  /** Instances whose orphaned compute was released. */
  orphansReleased: string[];
  /** Orphaned per-instance resources released (`kind:provider:ref` of instance). */
  resourcesReleased: Array<{ instanceId: string; kind: string; provider: string; ref: string }>;
  rowsRepaired: string[];
  membersDropped: string[];
  reservationsCleared: number;
  /** Providers that could not be swept this time, and why (the rest of the sweep still ran). */
  errors: string[];
}

/**
 * The running instance workflows and the status each last published (its `InstanceStatus` search attribute),
 * from one visibility listing. A listing is not a billable action; a Query to each workflow would be one per
 * instance per sweep, more than everything else a live instance costs (docs/architecture.md, "Liveness").
 */
async function runningInstances(temporal: Client): Promise<Map<string, string | undefined>> {
  const running = new Map<string, string | undefined>();
  for await (const wf of temporal.workflow.list({
    query: `WorkflowType = 'instanceWorkflow' AND ExecutionStatus = 'Running'`,
  })) {
    running.set(wf.workflowId.replace(/^instance-/, ''), wf.typedSearchAttributes.get(InstanceStatusKey));
  }
  return running;
}

/** Is the instance workflow still running? Asks Temporal directly (visibility can lag a moment). */
async function isRunning(temporal: Client, instanceId: string): Promise<boolean> {
  try {
    const d = await temporal.workflow.getHandle(instanceWorkflowId(instanceId)).describe();
    return d.status.name === 'RUNNING';
  } catch (err) {
    if ((err as Error).name === 'WorkflowNotFoundError') return false;
    throw err;
  }
}

async function audit(db: Db, instanceId: string, reason: string, details: Record<string, unknown>) {
  await db.insert(instanceEvents).values({
    instanceId,
    eventKey: `reconcile-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`,
    toStatus: 'destroyed',
    actor: 'reconcile',
    reason,
    details,
  });
}

export function createReconcileActivities(deps: ReconcileDeps) {
  return {
    /** One sweep, counted in `convos_reconcile_runs_total` (ok, partial: a provider was skipped, failed). */
    async reconcilePool(input: { poolName: string }): Promise<ReconcileReport> {
      try {
        const report = await sweep(input);
        deps.metrics?.reconcileRuns.inc({ outcome: report.errors.length > 0 ? 'partial' : 'ok' });
        return report;
      } catch (err) {
        deps.metrics?.reconcileRuns.inc({ outcome: 'failed' });
        throw err;
      }
    },
  };

  async function sweep(input: { poolName: string }): Promise<ReconcileReport> {
    const { db, temporal } = deps;
    const report: ReconcileReport = {
      orphansReleased: [],
      resourcesReleased: [],
      rowsRepaired: [],
      membersDropped: [],
      reservationsCleared: 0,
      errors: [],
    };
    const running = await runningInstances(temporal);

    /**
     * Ours to release: the instance is this deployment's (it has a read-model row in this pool: every
     * instance writes one before it creates anything) and its workflow no longer runs. Another deployment
     * sharing a provider account and a pool name never loses its resources to this sweeper.
     */
    const orphaned = async (instanceId: string) => {
      if (running.has(instanceId) || (await isRunning(temporal, instanceId))) return false;
      const [row] = await db
        .select({ id: instances.id })
        .from(instances)
        .where(and(eq(instances.id, instanceId), eq(instances.pool, input.poolName)));
      return row !== undefined;
    };
    /** One provider failing (an outage, a revoked key) is reported and the sweep goes on. */
    const guarded = async (what: string, fn: () => Promise<void>) => {
      try {
        await fn();
      } catch (err) {
        report.errors.push(`${what}: ${(err as Error).message}`);
      }
    };

    // 1. Orphans: compute held at a provider for an instance whose workflow no longer runs.
    for (const [providerName, provider] of Object.entries(deps.compute)) {
      await guarded(`${providerName} compute`, async () => {
        const labels = (step: 'list' | 'destroy') => ({
          metrics: deps.metrics,
          provider: providerName,
          step,
        });
        for (const instanceId of await providerCall(() => provider.list(input.poolName), labels('list'))) {
          if (!(await orphaned(instanceId))) continue;
          await providerCall(() => provider.destroy(instanceId, input.poolName), labels('destroy'));
          await db
            .update(instanceResources)
            .set({ status: 'released', releasedAt: new Date() })
            .where(and(eq(instanceResources.instanceId, instanceId), eq(instanceResources.kind, 'compute')));
          await deps.secrets.deleteAll(instanceId);
          await audit(db, instanceId, `released orphaned ${providerName} compute`, {
            provider: providerName,
          });
          report.orphansReleased.push(instanceId);
        }
      });
    }

    // 1b. The same for every per-instance resource (keys, inboxes, numbers), found by the pool's name prefix.
    for (const [kind, provider] of Object.entries(deps.resources.enabled)) {
      await guarded(`${provider.name} ${kind}`, async () => {
        const labels = (step: 'list' | 'destroy') => ({
          metrics: deps.metrics,
          provider: provider.name,
          step,
        });
        for (const held of await providerCall(() => provider.list(input.poolName), labels('list'))) {
          const instanceId = held.instanceId;
          if (!instanceId || !(await orphaned(instanceId))) continue;
          const ctx = {
            instanceId,
            poolName: input.poolName,
            name: resourceName(input.poolName, instanceId),
            idempotencyKey: `reconcile:${instanceId}:${kind}`,
          };
          await providerCall(() => provider.destroy(ctx, held.ref), labels('destroy'));
          await db
            .update(instanceResources)
            .set({ status: 'released', releasedAt: new Date() })
            .where(
              and(
                eq(instanceResources.instanceId, instanceId),
                eq(instanceResources.kind, kind),
                eq(instanceResources.status, 'active'),
              ),
            );
          await deps.secrets.deleteAll(instanceId);
          await audit(db, instanceId, `released orphaned ${provider.name} ${kind} ${held.ref}`, {
            provider: provider.name,
            kind,
            ref: held.ref,
          });
          report.resourcesReleased.push({ instanceId, kind, provider: provider.name, ref: held.ref });
        }
      });
    }

    // 2. Read model: rows of live-looking instances whose workflow is gone, or whose status drifted.
    const rows = await db
      .select({
        id: instances.id,
        status: instances.status,
        seq: instances.seq,
        provider: instances.provider,
      })
      .from(instances)
      .where(and(eq(instances.pool, input.poolName), ne(instances.status, 'destroyed')));
    for (const row of rows) {
      if (!running.has(row.id) && !(await isRunning(temporal, row.id))) {
        await writeTransition(db, {
          instanceId: row.id,
          poolName: input.poolName,
          provider: row.provider,
          seq: row.seq + 1,
          from: row.status as InstanceStatus,
          to: 'destroyed',
          actor: 'reconcile',
          reason: 'instance workflow is no longer running',
          at: new Date().toISOString(),
          fields: { destroyedAt: new Date().toISOString() },
        });
        // Its secrets (instance token, LLM key, wallet key) die with it.
        await deps.secrets.deleteAll(row.id);
        report.rowsRepaired.push(row.id);
        continue;
      }
      // The status it published agrees with the row: no drift, and no Query (each one is a billable action).
      // Visibility lags a transition by a moment, so a disagreement is confirmed with the workflow itself.
      if (running.get(row.id) === row.status) continue;
      const state = await temporal.workflow.getHandle(instanceWorkflowId(row.id)).query(getStateQuery);
      // `claiming` is written together with the claim's outcome, within moments: not a drift.
      if (state.status === 'claiming') continue;
      if (state.status !== row.status && state.seq >= row.seq) {
        await writeTransition(db, {
          instanceId: row.id,
          poolName: input.poolName,
          provider: row.provider,
          seq: Math.max(state.seq, row.seq + 1),
          from: row.status as InstanceStatus,
          to: state.status,
          actor: 'reconcile',
          reason: `read model said ${row.status}, workflow says ${state.status}`,
          at: new Date().toISOString(),
          fields: { url: state.url, lastError: state.lastError },
        });
        report.rowsRepaired.push(row.id);
      }
    }

    // 3. Pool membership: members whose workflow is gone no longer count towards the pool.
    const pool = temporal.workflow.getHandle(poolWorkflowId(input.poolName));
    try {
      const poolState = await pool.query(getPoolStateQuery);
      for (const id of Object.keys(poolState.members)) {
        if (running.has(id) || (await isRunning(temporal, id))) continue;
        await pool.signal(instanceChangedSignal, { instanceId: id, status: 'destroyed' });
        report.membersDropped.push(id);
      }
    } catch (err) {
      if ((err as Error).name !== 'WorkflowNotFoundError') throw err;
    }

    // 4. Reservations left by an API that died mid-claim expire on their own; tidy them for readers.
    const cleared = await db
      .update(instances)
      .set({ reservedBy: null, reservedUntil: null })
      .where(and(isNotNull(instances.reservedUntil), lt(instances.reservedUntil, sql`now()`)))
      .returning({ id: instances.id });
    report.reservationsCleared = cleared.length;
    return report;
  }
}
