/**
 * Liveness that costs nothing while nothing changes (docs/architecture.md, "Liveness"): a steady idle instance
 * costs at most 10 billable actions an hour, the health sweeper's own share included, read from a fresh dev
 * server's `action` metric (the counter Temporal Cloud bills by); and a dead runtime is acted on within
 * `healthIntervalMs × healthFailuresAllowed` (+ slack): idle → destroying (and replaced), claimed → crashed →
 * restarted → claimed.
 */
import { and, eq, inArray } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import { healthSweeperWorkflowId } from '../contracts/workflow-ids';
import { instanceEvents, instances } from '../drizzle/schema';
import { readDevServerSettings, startDevServer } from '../scripts/temporal-dev';
import { type Stack, startStack } from './stack';
import {
  actionRate,
  pauseReconcileSchedule,
  reconcileIntervalMs,
  reconcileRunActions,
} from './support/actions';
import { claimOne, shared } from './support/helpers';
import { freePort } from './support/ports';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const TARGET_ACTIONS_PER_INSTANCE_HOUR = 10;
/** The production default of config/env.ts (INSTANCE_HEALTH_INTERVAL_MS). */
const HEALTH_INTERVAL_MS = 15_000;

async function liveIds(stack: Stack, status: string): Promise<string[]> {
  const rows = await stack.database.db
    .select({ id: instances.id })
    .from(instances)
    .where(and(eq(instances.pool, stack.poolName), eq(instances.status, status)));
  return rows.map((r) => r.id);
}

/** The runtime stand-in's `/pool/health` requests between `from` and `until`: per instance, and the longest gap. */
async function healthChecks(stack: Stack, from: number, until: number) {
  const all = (await (await fetch(`${stack.standinUrl}/_standin/instances`)).json()) as Array<{
    healthCheckedAt: number[];
  }>;
  const within = all.map((i) => i.healthCheckedAt.filter((t) => t >= from && t <= until));
  const times = within.flat().sort((a, b) => a - b);
  let longestGapMs = 0;
  for (let i = 1; i < times.length; i++) longestGapMs = Math.max(longestGapMs, times[i]! - times[i - 1]!);
  return { all: times, perInstance: within.filter((t) => t.length > 0).map((t) => t.length), longestGapMs };
}

describe('the cost of a live instance', () => {
  it('a steady idle instance costs ≤ 10 billable actions an hour at the normal health and reconcile settings', async () => {
    const metricsPort = await freePort();
    const devServer = await startDevServer({
      ...readDevServerSettings(),
      port: await freePort(),
      headless: true,
      dbFilename: null,
      metricsPort,
    });
    const n = 20;
    const stack = await startStack({
      ...shared({ targetIdle: 0, maxTotal: n }),
      temporalAddress: devServer.address,
      // The defaults of config/env.ts: a check every 15 s, 3 misses, a reconcile run every 5 minutes. The
      // pool's own wake-up at its default.
      timings: { healthIntervalMs: HEALTH_INTERVAL_MS, healthFailuresAllowed: 3 },
      pool: { pollIntervalMs: 30_000 },
    });
    try {
      // The reconcile Schedule fires at fixed wall-clock times: paused, and one run counted on demand at each
      // size instead, so a run neither lands in a window by chance nor is left out.
      await pauseReconcileSchedule(stack);
      // Baseline: the pool with no instance and no health sweeper.
      await stack.temporal.workflow.getHandle(healthSweeperWorkflowId(stack.poolName)).terminate('baseline');
      await sleep(3000);
      const baseline = await actionRate(metricsPort, 30_000);
      const reconcileEmpty = await reconcileRunActions(stack, metricsPort, baseline);

      expect((await stack.api('PUT', '/api/pool/target', { targetIdle: n })).status).toBe(200);
      await stack.waitFor(`${n} idle`, async () => (await liveIds(stack, 'idle')).length === n, 60_000);
      await stack.declare(); // what a worker start does: starts the health sweeper again
      await sleep(10_000); // the last starts settle, the sweeper's first pass and heartbeat
      const steadyFrom = Date.now();
      const steady = await actionRate(metricsPort, 60_000);
      const steadyUntil = Date.now();
      const reconcileFull = await reconcileRunActions(stack, metricsPort, baseline);

      const reconcileRunsPerHour = 3_600_000 / (await reconcileIntervalMs(stack));
      const sweeperAndInstances = ((steady - baseline) * 3600) / n;
      const reconcileShare = ((reconcileFull - reconcileEmpty) * reconcileRunsPerHour) / n;
      const perInstanceHour = sweeperAndInstances + reconcileShare;
      console.log(
        `billable actions: baseline ${(baseline * 3600).toFixed(0)}/h, ${n} idle ${(steady * 3600).toFixed(0)}/h; ` +
          `a reconcile run ${reconcileEmpty.toFixed(1)} (empty) / ${reconcileFull.toFixed(1)} (${n} idle); ` +
          `${perInstanceHour.toFixed(2)} per idle instance-hour (sweeper ${sweeperAndInstances.toFixed(2)}, ` +
          `reconcile ${reconcileShare.toFixed(2)})`,
      );
      expect(perInstanceHour).toBeLessThanOrEqual(TARGET_ACTIONS_PER_INSTANCE_HOUR);
      // The sweeper's passes are spread over their interval (a few hundred checks at once would starve the claims
      // on the same worker for a moment and hit every runtime together): over the steady minute, each runtime was
      // checked once per interval, and no stretch without any check is anywhere near an interval long.
      const checks = await healthChecks(stack, steadyFrom, steadyUntil);
      expect(checks.perInstance).toHaveLength(n);
      for (const count of checks.perInstance) expect(count).toBeGreaterThanOrEqual(3);
      console.log(
        `health checks over the steady minute: ${checks.all.length}, the longest gap ${checks.longestGapMs} ms`,
      );
      expect(checks.longestGapMs).toBeLessThan(HEALTH_INTERVAL_MS / 2);
      // And nothing was lost on the way: every instance is still idle.
      expect(await liveIds(stack, 'idle')).toHaveLength(n);
    } finally {
      await stack.stop();
      await devServer.stop();
    }
  }, 300_000);
});

describe('a dead runtime', () => {
  const interval = 1000;
  const failures = 3;
  /** The bound: every check of the shard's pass, then the signal and the transition. */
  const bound = interval * failures + 2 * interval + 2000;

  it(`is acted on within interval × failures (+ slack): idle → destroying, claimed → crashed → claimed`, async () => {
    const stack = await startStack(
      shared({ targetIdle: 2, timings: { healthIntervalMs: interval, healthFailuresAllowed: failures } }),
    );
    try {
      const claimed = await claimOne(stack, 'Lazarus');
      await stack.waitFor('2 idle', async () => (await liveIds(stack, 'idle')).length === 2);
      const [idle] = await liveIds(stack, 'idle');
      const killedAt = Date.now();
      await stack.compute.setFaults(idle!, { down: true });
      await stack.compute.setFaults(claimed.instanceId, { down: true });

      const eventAt = async (id: string, toStatus: string) => {
        const [e] = await stack.database.db
          .select()
          .from(instanceEvents)
          .where(and(eq(instanceEvents.instanceId, id), eq(instanceEvents.toStatus, toStatus)));
        return e ? e.at.getTime() : null;
      };
      await stack.waitFor(
        'both detected',
        async () =>
          (await eventAt(idle!, 'destroying')) !== null &&
          (await eventAt(claimed.instanceId, 'crashed')) !== null,
        30_000,
      );
      const idleDetected = (await eventAt(idle!, 'destroying'))! - killedAt;
      const claimedDetected = (await eventAt(claimed.instanceId, 'crashed'))! - killedAt;
      console.log(`dead runtime acted on after ${idleDetected} ms (idle), ${claimedDetected} ms (claimed)`);
      expect(idleDetected).toBeLessThanOrEqual(bound);
      expect(claimedDetected).toBeLessThanOrEqual(bound);
      // Not before `failures` checks could have failed either.
      expect(Math.min(idleDetected, claimedDetected)).toBeGreaterThanOrEqual(interval * (failures - 1));

      // crashed → restarted → claimed, and then it is watched again like any other.
      await stack.waitFor('the claimed instance restarted', async () => {
        const [row] = await stack.database.db
          .select({ status: instances.status })
          .from(instances)
          .where(eq(instances.id, claimed.instanceId));
        return row?.status === 'claimed' && (await eventAt(claimed.instanceId, 'claimed')) !== null;
      });
      const restartedEvents = await stack.database.db
        .select()
        .from(instanceEvents)
        .where(
          and(
            eq(instanceEvents.instanceId, claimed.instanceId),
            inArray(instanceEvents.toStatus, ['crashed', 'claimed']),
          ),
        );
      expect(restartedEvents.map((e) => e.reason)).toContain('runtime restarted from its state');
      const crashedAgainAt = Date.now();
      await stack.compute.setFaults(claimed.instanceId, { down: true });
      await stack.waitFor('crashed a second time', async () => {
        const events = await stack.database.db
          .select()
          .from(instanceEvents)
          .where(
            and(eq(instanceEvents.instanceId, claimed.instanceId), eq(instanceEvents.toStatus, 'crashed')),
          );
        return events.length === 2;
      });
      expect(Date.now() - crashedAgainAt).toBeLessThanOrEqual(bound + 500);
      // The idle one is replaced: the pool is back to its target.
      await stack.waitFor('replaced', async () => (await liveIds(stack, 'idle')).length === 2, 30_000);
    } finally {
      await stack.stop();
    }
  });
});
