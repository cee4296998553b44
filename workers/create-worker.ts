/**
 * Builds the worker: workflows (pre-bundled or bundled from `workflows/`), the activities, and tuning.
 * `system/` builds it for every process that runs a worker (`main.ts`, `npm start`, the tests, the benchmarks),
 * each with its own activity deps.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { type ActivityDeps, createActivities } from '../activities';
import type { Config } from '../config/env';
import type { TemporalConnection } from '../config/temporal';
import { checkSearchAttributes } from '../config/temporal-namespace';
import { dataConverterOf } from '../system/payload-codec';
import { limitWorkflowStackTraces, WORKFLOW_STACK_FRAMES } from './workflow-stack-traces';

export const workflowsPath = path.join(
  path.dirname(fileURLToPath(import.meta.url)),
  '..',
  'workflows',
  'index.ts',
);

export interface WorkerSetup {
  /** Where and how to connect (`config.temporal.connection`). */
  temporal: TemporalConnection;
  namespace: string;
  taskQueue: string;
  deps: ActivityDeps;
  /** Payload encryption (PAYLOAD_ENCRYPTION_KEY); null: plaintext payloads. */
  payloadEncryption: Config['payloadEncryption'];
  /** A bundle built once by `bundleWorkflowCode` (tests, fast restarts); otherwise bundled at start. */
  workflowBundle?: WorkerOptions['workflowBundle'];
  /** Where a warning goes (the namespace's search attributes cannot be listed). */
  warn?: (message: string) => void;
  /** On shutdown, how long running activities may finish before they are cancelled (default 5 s). */
  shutdownGraceMs?: number;
  /** Workflows kept in memory (WORKER_MAX_CACHED_WORKFLOWS). */
  maxCachedWorkflows?: number;
  /** Frames a stack trace keeps in the workflow threads (WORKER_WORKFLOW_STACK_FRAMES). */
  workflowStackFrames?: number;
}

export async function createWorker(
  setup: WorkerSetup,
): Promise<{ worker: Worker; connection: NativeConnection }> {
  const connection = await NativeConnection.connect(setup.temporal.options());
  const dataConverter = dataConverterOf(setup);
  try {
    // A namespace without the search attributes fails every workflow task that sets one: refuse to start.
    await checkSearchAttributes(connection.operatorService, setup.namespace, setup.warn ?? console.warn);
  } catch (err) {
    await connection.close();
    throw err;
  }
  // Before the workflow threads exist: they start from the flag (./workflow-stack-traces.ts).
  limitWorkflowStackTraces(setup.workflowStackFrames ?? WORKFLOW_STACK_FRAMES);
  const worker = await Worker.create({
    connection,
    ...(dataConverter ? { dataConverter } : {}),
    namespace: setup.namespace,
    taskQueue: setup.taskQueue,
    ...(setup.workflowBundle ? { workflowBundle: setup.workflowBundle } : { workflowsPath }),
    activities: createActivities(setup.deps),
    // Many small, mostly waiting workflows: a large cache keeps them sticky and cheap to wake; a smaller one
    // trades memory for a replay of the (short) history when an evicted one wakes (docs/benchmarks.md, scale).
    maxCachedWorkflows: setup.maxCachedWorkflows ?? 2000,
    maxConcurrentActivityTaskExecutions: 200,
    maxConcurrentLocalActivityExecutions: 200,
    // A worker that dies should hand its sticky workflows over quickly.
    stickyQueueScheduleToStartTimeout: '3s',
    shutdownGraceTime: setup.shutdownGraceMs ?? '5s',
  });
  return { worker, connection };
}
