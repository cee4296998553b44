/**
 * Instance histories recorded by the code before the health sweeper (per-instance `checkHealth` and a timer every
 * interval while idle and claimed, including a claimed instance that crashed and was restarted) replay against the
 * current code without non-determinism: the `health-sweeper` patch keeps their command sequence
 * (workflows/instance/patches.ts). Recorded once from `test/operations.test.ts` on the commit before the patch.
 */
import fs from 'node:fs';
import path from 'node:path';
import proto from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import { expect, it } from 'vitest';
import { workflowsPath } from '../workers/create-worker';

const { temporal } = proto;
const dir = path.resolve(import.meta.dirname, 'fixtures', 'pre-sweeper');

it('replays instance histories recorded before the health sweeper', async () => {
  const histories = fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.pb'))
    .map((file) => ({
      workflowId: file.split('__')[0]!,
      history: temporal.api.history.v1.History.decode(fs.readFileSync(path.join(dir, file))),
    }));
  const checks = histories.flatMap((h) =>
    (h.history.events ?? []).filter(
      (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'checkHealth',
    ),
  );
  expect(histories.length).toBe(3);
  expect(checks.length).toBeGreaterThan(10);
  const failures: string[] = [];
  for await (const result of Worker.runReplayHistories(
    { workflowsPath, replayName: 'pre-sweeper' },
    histories,
  )) {
    if (result.error) failures.push(`${result.workflowId}: ${result.error.message}`);
  }
  expect(failures).toEqual([]);
}, 120_000);
