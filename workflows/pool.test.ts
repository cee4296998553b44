/**
 * The pool workflow on its own, with mocked activities, against the run's dev server: histories it writes
 * while Updates arrive mid-decision must replay (a nondeterminism error here would stall every running pool
 * on the next worker deploy).
 */
import { randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Activities } from '../activities';
import type { PoolMemberCounts } from '../activities/pool-members';
import { INSTANCE_STATUSES } from '../contracts/instance-status';
import { startMockWorker } from '../test/support/mock-worker';
import { workflowsPath } from '../workers/create-worker';
import { applySettingsUpdate, instanceChangedSignal } from './messages';
import type { PoolSettings } from './types';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** How long the next read of the read model takes (a slow database). */
let readDelayMs = 0;
const reads: number[] = [];
const activities: Partial<Activities> = {
  countPoolMembers: async (): Promise<PoolMemberCounts> => {
    reads.push(Date.now());
    await sleep(readDelayMs);
    return {
      counts: Object.fromEntries(INSTANCE_STATUSES.map((s) => [s, 0])) as PoolMemberCounts['counts'],
      current: { idle: 0, starting: 0 },
      retiring: [],
      seen: [],
      unclaimed: [],
    };
  },
  drainInstances: async () => [],
  // What the instances the pool starts need to reach idle quietly (terminated at the end).
  recordTransition: async () => {},
  planResources: async () => [],
  createCompute: async (input) => ({ ref: input.instanceId, url: 'http://mock.invalid' }),
  destroyCompute: async () => {},
  checkHealth: async () => ({ reachable: true, ready: true }),
};

let client: Client;
let taskQueue: string;
let stopWorker: () => Promise<void>;

beforeAll(async () => {
  ({ client, taskQueue, stop: stopWorker } = await startMockWorker('pool-unit', activities));
});
afterAll(() => stopWorker?.());

const settings = (poolName: string, targetIdle: number): PoolSettings => ({
  poolName,
  targetIdle,
  maxTotal: 5,
  computeProvider: 'mock',
  instanceTimings: {
    startDeadlineMs: 10_000,
    healthIntervalMs: 60_000,
    healthFailuresAllowed: 2,
    idleTtlMs: 0,
    claimedTtlMs: 0,
    maxRestarts: 0,
    stepMaxAttempts: 1,
    maxHistoryEvents: 10_000,
  },
  breakerThreshold: 3,
  breakerCooldownMs: 60_000,
  pollIntervalMs: 60_000,
});

it('replays a history where an Update arrived while a slow read of the read model spanned workflow tasks', async () => {
  const poolName = `unit-${randomUUID().slice(0, 8)}`;
  const handle = await client.workflow.start('poolWorkflow', {
    workflowId: `pool-${poolName}`,
    taskQueue,
    args: [{ settings: settings(poolName, 0) }],
    // A short task timeout: a read as a local activity (runs before the pool-read-activity patch) held the task
    // open and the worker heartbeat it after 80 % of this; the Update then came in the next task.
    workflowTaskTimeout: '2s',
  });
  await expect.poll(() => reads.length, { timeout: 10_000 }).toBeGreaterThanOrEqual(1);

  // The next read ends about when such a heartbeat would be sent; an Update lands in the middle of it.
  readDelayMs = 1650;
  const before = reads.length;
  await handle.signal(instanceChangedSignal, { instanceId: randomUUID(), status: 'idle', from: 'starting' });
  await expect.poll(() => reads.length, { timeout: 10_000 }).toBeGreaterThan(before);
  await sleep(500);
  const report = await handle.executeUpdate(applySettingsUpdate, { args: [settings(poolName, 1)] });
  expect(report.changed).toEqual(['targetIdle']);
  readDelayMs = 0;
  // The read after the Update (the target changed) ends the decision that started a child.
  await expect
    .poll(
      async () => {
        const history = await handle.fetchHistory();
        return history.events?.some((e) => e.startChildWorkflowExecutionInitiatedEventAttributes) ?? false;
      },
      { timeout: 20_000 },
    )
    .toBe(true);
  const history = await handle.fetchHistory();
  await handle.terminate('test over');
  // The read is an activity: its result is an event, and no local-activity marker is left to place on replay.
  const events = history.events ?? [];
  expect(
    events.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'countPoolMembers')
      .length,
  ).toBeGreaterThanOrEqual(2);
  expect(events.some((e) => e.markerRecordedEventAttributes?.markerName === 'core_local_activity')).toBe(
    false,
  );
  for (const e of history.events ?? []) {
    const child = e.startChildWorkflowExecutionInitiatedEventAttributes?.workflowId;
    if (child)
      await client.workflow
        .getHandle(child)
        .terminate('test over')
        .catch(() => {});
  }

  await expect(
    Worker.runReplayHistory({ workflowsPath, replayName: 'pool-unit' }, history, handle.workflowId),
  ).resolves.toBeUndefined();
}, 60_000);
