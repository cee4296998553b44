/**
 * `npm run replay -- <workflowId> [runId]`: fetch a workflow's history from Temporal (the TEMPORAL_* variables
 * and profile of config/temporal.ts, as the worker connects) and replay it against the workflow code in this checkout. Exits non-zero and says
 * why when the code is not deterministic for that history. `--file <history.json|.pb>` replays a saved one.
 * With PAYLOAD_ENCRYPTION_KEY (and PAYLOAD_ENCRYPTION_OLD_KEYS) set, encrypted payloads are decrypted with
 * them, as the worker does.
 */
import fs from 'node:fs';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import proto from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import { loadConfig } from '../config/env';
import { connectClient } from '../config/temporal';
import { installTemporalLogging } from '../system/logging';
import { dataConverterOf } from '../system/payload-codec';
import { workflowsPath } from '../workers/create-worker';

// @temporalio/proto is CommonJS: take the namespace from its default export.
const { temporal } = proto;

installTemporalLogging('WARN');
const args = process.argv.slice(2);
const fileIndex = args.indexOf('--file');

async function loadHistory() {
  if (fileIndex >= 0) {
    const file = args[fileIndex + 1];
    if (!file) throw new Error('--file needs a path');
    const bytes = fs.readFileSync(file);
    return file.endsWith('.pb')
      ? temporal.api.history.v1.History.decode(bytes)
      : historyFromJSON(JSON.parse(bytes.toString('utf8')));
  }
  const [workflowId, runId] = args;
  if (!workflowId)
    throw new Error('usage: npm run replay -- <workflowId> [runId] | --file <history.json|.pb>');
  const client = await connectClient(config);
  const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
  await client.connection.close();
  return history;
}

const config = loadConfig();
const history = await loadHistory();
const workflowId = fileIndex >= 0 ? 'from-file' : args[0]!;
try {
  // REPLAY_WORKFLOWS_PATH replays against another tree's workflows (e.g. a branch checked out elsewhere).
  const path = process.env.REPLAY_WORKFLOWS_PATH ?? workflowsPath;
  const dataConverter = dataConverterOf(config);
  await Worker.runReplayHistory(
    { workflowsPath: path, replayName: 'replay-cli', ...(dataConverter ? { dataConverter } : {}) },
    history,
    workflowId,
  );
  console.log(
    `✓ ${workflowId}: ${history.events?.length ?? 0} events replayed deterministically with this code`,
  );
} catch (err) {
  console.error(`✗ ${workflowId}: replay failed — ${(err as Error).message}`);
  process.exit(1);
}
