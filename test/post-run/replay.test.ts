/**
 * Replays every workflow history the test run produced (exported by test/global-setup.ts) against the
 * current workflow code: any non-determinism fails here before it can break running workflows. Histories of
 * stacks that encrypted payloads are decrypted by the replayer with the run's key, as a worker would.
 */
import fs from 'node:fs';
import path from 'node:path';
import proto from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import { expect, it } from 'vitest';
import { workflowsPath } from '../../workers/create-worker';
import { runCodec } from '../support/payload-histories';

// @temporalio/proto is CommonJS: take the namespace from its default export.
const { temporal } = proto;

const dir = path.resolve(import.meta.dirname, '..', '..', 'test-artifacts', 'histories');

/** One line per event: id, type and the name it carries (workflow, activity, signal, Update, marker, timer). */
function outline(history: proto.temporal.api.history.v1.IHistory): string {
  return (history.events ?? [])
    .map((e) => {
      const type = temporal.api.enums.v1.EventType[e.eventType ?? 0]?.replace('EVENT_TYPE_', '');
      const name =
        e.activityTaskScheduledEventAttributes?.activityType?.name ??
        e.startChildWorkflowExecutionInitiatedEventAttributes?.workflowType?.name ??
        e.workflowExecutionSignaledEventAttributes?.signalName ??
        e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input?.name ??
        e.markerRecordedEventAttributes?.markerName ??
        (e.timerStartedEventAttributes ? `timer ${e.timerStartedEventAttributes.timerId}` : '');
      return `${e.eventId} ${type} ${name}`;
    })
    .join('\n');
}

it('replays every exported history without non-determinism', async () => {
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.pb'));
  const types = new Set<string>();
  const histories = files.map((file) => {
    const history = temporal.api.history.v1.History.decode(fs.readFileSync(path.join(dir, file)));
    const started = history.events?.[0]?.workflowExecutionStartedEventAttributes;
    if (started?.workflowType?.name) types.add(started.workflowType.name);
    return { workflowId: file.split('__')[0]!, history };
  });
  // The run must have exercised every workflow, with enough histories to mean something.
  expect(files.length).toBeGreaterThan(50);
  expect([...types].sort()).toEqual([
    'healthSweeperWorkflow',
    'inboundDeliveryWorkflow',
    'instanceWorkflow',
    'poolWorkflow',
    'reconcileWorkflow',
  ]);

  const failures: string[] = [];
  for await (const result of Worker.runReplayHistories(
    { workflowsPath, replayName: 'test-run', dataConverter: { payloadCodecs: [runCodec()] } },
    histories,
  )) {
    if (result.error) {
      failures.push(`${result.workflowId}: ${result.error.message}`);
      // The next one to read this CI log sees the history's shape (event types and names, no payloads).
      const failed = histories.find((h) => h.workflowId === result.workflowId);
      if (failed) console.error(`${result.workflowId}:\n${outline(failed.history)}`);
    }
  }
  expect(failures).toEqual([]);
}, 600_000);
