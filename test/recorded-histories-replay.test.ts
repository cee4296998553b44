/**
 * Histories recorded by earlier code replay against the current code without non-determinism: the patches in
 * workflows/instance/patches.ts and workflows/pool.ts keep their command sequences. Each fixture folder was
 * recorded once, on the commit before its patch:
 * - `pre-sweeper/`: instance histories from before the health sweeper (per-instance `checkHealth` and a timer
 *   every interval while idle and claimed, including a claimed instance that crashed and was restarted), from
 *   `test/operations.test.ts`;
 * - `pre-read-model-pool/`: pool histories from before the controller counted on the read model (a member map
 *   fed by every instance's reports: fills, claims, drains, a provider change with retirement, the breaker
 *   opening and closing), from `test/pool-settings.test.ts` and `test/lifecycle.test.ts`;
 * - `pre-up-front-patches/`: instance histories from before `Patch.allUpFront` and `provisionRecordsClaimed`
 *   (each patch asked where its change is, `claimed` written by its own local activity: claims, a join waiting for
 *   acceptance, accepted and timed out, a failed provision) and pool histories from before the pool's refresh gap,
 *   from `test/claims.test.ts` and `test/joins.test.ts`;
 * - `pre-pool-read-activity/`: pool histories from before the pool read the read model with an activity (a local
 *   activity per wake-up, Updates of settings and targets), from `test/pool-settings.test.ts`;
 * - `pre-claim-sleeps-through/`: instance histories from before `Patch.claimSleepsThrough` and `allUpFrontV2`
 *   (each claim woke the idle wait and cancelled its timer; claims bound, joins accepted and timed out, a failed
 *   provision, a crash with repeated claims, anonymous claims' quiet checks, a continue-as-new, an idle instance
 *   destroyed), from `test/claims.test.ts`, `test/joins.test.ts` and `test/anonymous-claims.test.ts`; and, with an
 *   idle TTL (a timer each claim cancelled, as in production), from the instance harness: bound and destroyed, the
 *   claimed TTL, quiet checks, a refused claim then a bound one, a failed provision, the idle TTL, a join accepted,
 *   a crash and restart.
 */
import fs from 'node:fs';
import path from 'node:path';
import proto from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import { expect, it } from 'vitest';
import { workflowsPath } from '../workers/create-worker';

const { temporal } = proto;
type History = proto.temporal.api.history.v1.History;

function load(folder: string): Array<{ workflowId: string; history: History }> {
  const dir = path.resolve(import.meta.dirname, 'fixtures', folder);
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.pb'))
    .map((file) => ({
      workflowId: file.split('__')[0]!,
      history: temporal.api.history.v1.History.decode(fs.readFileSync(path.join(dir, file))),
    }));
}

async function replayFailures(
  replayName: string,
  histories: Array<{ workflowId: string; history: History }>,
) {
  const failures: string[] = [];
  for await (const result of Worker.runReplayHistories({ workflowsPath, replayName }, histories)) {
    if (result.error) failures.push(`${result.workflowId}: ${result.error.message}`);
  }
  return failures;
}

const events = (histories: Array<{ history: History }>) => histories.flatMap((h) => h.history.events ?? []);

/** The patch ids the events' markers carry, as text (a patch marker's details hold its id as a JSON payload). */
const markerText = (all: ReturnType<typeof events>) =>
  all
    .flatMap((e) => Object.values(e.markerRecordedEventAttributes?.details ?? {}))
    .flatMap((details) => details.payloads ?? [])
    .map((payload) => Buffer.from(payload.data ?? []).toString('utf8'))
    .join('\n');

it('replays instance histories recorded before the health sweeper', async () => {
  const histories = load('pre-sweeper');
  const checks = events(histories).filter(
    (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'checkHealth',
  );
  expect(histories.length).toBe(3);
  expect(checks.length).toBeGreaterThan(10);
  expect(await replayFailures('pre-sweeper', histories)).toEqual([]);
}, 120_000);

it('replays pool histories recorded before the controller counted on the read model', async () => {
  const histories = load('pre-read-model-pool');
  const all = events(histories);
  const children = all.filter((e) => e.startChildWorkflowExecutionInitiatedEventAttributes);
  const signals = all.filter(
    (e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'instanceChanged',
  );
  const drains = all.filter(
    (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'drainInstances',
  );
  expect(histories.length).toBe(6);
  expect(children.length).toBeGreaterThan(10);
  expect(signals.length).toBeGreaterThan(20);
  expect(drains.length).toBeGreaterThan(0);
  // Recorded without the patch: none of them has its marker.
  expect(JSON.stringify(all.map((e) => e.markerRecordedEventAttributes ?? null))).not.toContain(
    'pool-counts-from-read-model',
  );
  expect(await replayFailures('pre-read-model-pool', histories)).toEqual([]);
}, 120_000);

it('replays instance and pool histories recorded before the up-front patches and the one-activity claim', async () => {
  const histories = load('pre-up-front-patches');
  const all = events(histories);
  const claims = all.filter(
    (e) => e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input?.name === 'claim',
  );
  const markers = markerText(all);
  expect(markers).toContain('deferred-claiming');
  expect(histories.filter((h) => h.workflowId.startsWith('instance-')).length).toBe(6);
  expect(histories.filter((h) => h.workflowId.startsWith('pool-')).length).toBe(2);
  expect(claims.length).toBe(5);
  // Recorded without the patches: none of them has their markers.
  for (const id of ['all-patches-up-front', 'provision-records-claimed', 'pool-refresh-gap']) {
    expect(markers).not.toContain(id);
  }
  expect(await replayFailures('pre-up-front-patches', histories)).toEqual([]);
}, 120_000);

it('replays pool histories recorded when the pool read the read model with a local activity', async () => {
  const histories = load('pre-pool-read-activity');
  const all = events(histories);
  const localReads = all.filter((e) => e.markerRecordedEventAttributes?.markerName === 'core_local_activity');
  const updates = all.filter((e) => e.workflowExecutionUpdateAcceptedEventAttributes);
  expect(histories.length).toBe(2);
  expect(localReads.length).toBeGreaterThan(10);
  expect(updates.length).toBeGreaterThan(5);
  expect(
    all.some((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'countPoolMembers'),
  ).toBe(false);
  expect(await replayFailures('pre-pool-read-activity', histories)).toEqual([]);
}, 120_000);

it('replays instance histories recorded before a claim slept through the live wait', async () => {
  const histories = load('pre-claim-sleeps-through');
  const all = events(histories);
  const claims = all.filter(
    (e) => e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input?.name === 'claim',
  );
  const markers = markerText(all);
  expect(histories.length).toBe(19);
  expect(claims.length).toBeGreaterThanOrEqual(10);
  // Each claim cancelled the idle wait's timer, and the quiet checks' timers fired.
  expect(all.filter((e) => e.timerCanceledEventAttributes).length).toBeGreaterThanOrEqual(10);
  expect(all.filter((e) => e.timerFiredEventAttributes).length).toBeGreaterThanOrEqual(4);
  // Recorded at the first up-front level, without the patch.
  expect(markers).toContain('all-patches-up-front');
  for (const id of ['claim-sleeps-through', 'all-patches-up-front-v2']) expect(markers).not.toContain(id);
  expect(await replayFailures('pre-claim-sleeps-through', histories)).toEqual([]);
}, 120_000);
