/**
 * The live wait (./health.ts, `Patch.claimSleepsThrough`): `idle`, `claiming` and `claimed` are one wait, and a
 * claim does not wake it — no timer cancelled, no second wait started inside the claim's workflow task — while
 * what a claimed instance must act on sooner than the idle TTL's timer still wakes it. Real workflow, mocked
 * activities, the run's dev server.
 */

import type { WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import proto from '@temporalio/proto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  claimRequest,
  type Harness,
  ready,
  sleep,
  startHarness,
  waitForStatus,
} from '../../test/support/instance-harness';
import { expectPath } from '../../test/support/lifecycle-paths';
import { claimUpdate, destroySignal, getStateQuery } from '../messages';
import type { ClaimRequest } from '../types';

const { EventType } = proto.temporal.api.enums.v1;

let harness: Harness;
beforeAll(async () => {
  harness = await startHarness('live-wait-unit');
});
afterAll(async () => {
  await harness?.stop();
});

const HOUR = 3_600_000;
const operator = { actor: 'operator', reason: 'test' } as const;
/** The path of an instance started, idle and claimed. */
const BOUND = ['poolStarted', 'runtimeReady', 'claimAccepted', 'provisioned'] as const;
const claim = (handle: WorkflowHandle, request: ClaimRequest = claimRequest()) =>
  handle.executeUpdate(claimUpdate, { updateId: request.claimKey, args: [request] });

/** The history's event types from the (first) claim's acceptance on. */
async function eventsSinceClaim(handle: WorkflowHandle) {
  const events = (await handle.fetchHistory()).events ?? [];
  const at = events.findIndex((e) => e.eventType === EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED);
  expect(at).toBeGreaterThan(0);
  return events.slice(at).map((e) => e.eventType);
}

it('a claim leaves the idle wait asleep: its workflow task cancels no timer and starts none', async () => {
  const { handle } = await harness.start({ timings: { idleTtlMs: HOUR } });
  await waitForStatus(handle, 'idle');
  await claim(handle);
  expect((await handle.query(getStateQuery)).status).toBe('claimed');
  const since = await eventsSinceClaim(handle);
  expect(since).toContain(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED);
  expect(since).not.toContain(EventType.EVENT_TYPE_TIMER_CANCELED);
  expect(since).not.toContain(EventType.EVENT_TYPE_TIMER_STARTED);
  // The run began at the newest up-front level: one marker, no patch asked mid-run.
  const markers = JSON.stringify(
    (await handle.fetchHistory()).events?.map((e) => e.markerRecordedEventAttributes),
  );
  expect(markers).not.toContain('claim-sleeps-through');
  await handle.signal(destroySignal, operator);
  await handle.result();
});

it("the idle TTL's timer firing on a claimed instance changes nothing", async () => {
  const { instanceId, handle } = await harness.start({ timings: { idleTtlMs: 1500 } });
  await waitForStatus(handle, 'idle');
  await claim(handle);
  await sleep(2500);
  expect(await eventsSinceClaim(handle)).toContain(EventType.EVENT_TYPE_TIMER_FIRED);
  expect((await handle.query(getStateQuery)).status).toBe('claimed');
  await handle.signal(destroySignal, operator);
  await handle.result();
  await expectPath(harness, instanceId, [...BOUND, 'destroyRequested', 'resourcesReleased']);
});

it('a claimed TTL nearer than the idle timer wakes the wait at the claimed TTL', async () => {
  const { instanceId, handle } = await harness.start({ timings: { idleTtlMs: HOUR, claimedTtlMs: 700 } });
  await waitForStatus(handle, 'idle');
  await claim(handle);
  await handle.result();
  const path = await expectPath(harness, instanceId, [...BOUND, 'claimedTtlPassed', 'resourcesReleased']);
  expect(path[4]?.reason).toBe('claimed for longer than its TTL (700 ms)');
});

it("an anonymous claim's quiet check wakes the wait before the idle timer", async () => {
  const { instanceId, handle, script } = await harness.start({ timings: { idleTtlMs: HOUR } });
  await waitForStatus(handle, 'idle');
  let talking = true;
  script.health = () => ({ ...ready, lastActivityAt: talking ? new Date().toISOString() : null });
  await claim(handle, claimRequest('Quiet', { conversationIdleTtlMs: 700 }));
  // Checked once while messages go through (it stays), then reclaimed once they stop.
  await sleep(1500);
  expect((await handle.query(getStateQuery)).status).toBe('claimed');
  talking = false;
  await handle.result();
  await expectPath(harness, instanceId, [...BOUND, 'conversationQuiet', 'resourcesReleased']);
});

it('a refused claim leaves the idle TTL where it was: the instance ends at its time', async () => {
  const { instanceId, handle, script } = await harness.start({ timings: { idleTtlMs: 2000 } });
  await waitForStatus(handle, 'idle');
  script.provision = async () => {
    throw ApplicationFailure.nonRetryable('agentName must be a single line', 'ProvisionRefused');
  };
  await expect(claim(handle)).rejects.toMatchObject({ cause: { type: 'ClaimRefused' } });
  await handle.result();
  await expectPath(harness, instanceId, [
    'poolStarted',
    'runtimeReady',
    'claimAccepted',
    'provisionRefused',
    'idleTtlPassed',
    'resourcesReleased',
  ]);
  // The idle wait's one timer, started when the instance became idle, ended it: none other since the claim.
  const since = await eventsSinceClaim(handle);
  expect(since).toContain(EventType.EVENT_TYPE_TIMER_FIRED);
  expect(since).not.toContain(EventType.EVENT_TYPE_TIMER_STARTED);
  expect(since).not.toContain(EventType.EVENT_TYPE_TIMER_CANCELED);
});
