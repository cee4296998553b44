/** Small helpers shared by the end-to-end suites. */
import { type ChildProcess, fork } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { expect, inject } from 'vitest';
import type { ClaimResponse } from '../../api/claims';
import { poolWorkflowId } from '../../contracts/workflow-ids';
import { getPoolStateQuery } from '../../workflows/messages';
import type { Stack, StackOptions } from '../stack';

/** Stack options that reuse the run's dev server, database and workflow bundle (test/global-setup.ts). */
export function shared(opts: StackOptions = {}): StackOptions {
  return {
    temporalAddress: inject('temporalAddress'),
    databaseUrl: inject('databaseUrl'),
    workflowBundlePath: inject('workflowBundlePath'),
    ...opts,
  };
}

export const newKey = (prefix = 'k') => `${prefix}-${randomUUID()}`;

/** A claim's 200 body. */
export type ClaimBody = ClaimResponse;

export interface ErrorBody {
  error: string;
  code: string;
}

export async function json<T>(res: Response): Promise<T> {
  return (await res.json()) as T;
}

/** Claims one instance as `name` once one is idle; the claim must succeed. */
export async function claimOne(stack: Stack, name: string): Promise<ClaimBody> {
  await stack.waitFor('an idle instance', async () => (await stack.counts()).idle > 0);
  const res = await stack.api(
    'POST',
    '/api/pool/claim',
    { agentName: name },
    { 'idempotency-key': newKey(name) },
  );
  expect(res.status).toBe(200);
  return json<ClaimBody>(res);
}

/**
 * The stack's worker in its own process (test/support/worker-process.ts: the production worker on the stand-in
 * compute, failing `computeFailureRate` of its calls), so a test can SIGKILL or SIGSTOP it; resolves once it polls.
 */
/**
 * Waits until the pool's own view (its last read of the read model) counts `idle` idle instances: it reads at
 * most once a second while reports arrive, so it may trail the read model by that much.
 */
export async function poolSeesIdle(stack: Stack, idle: number): Promise<void> {
  const pool = stack.temporal.workflow.getHandle(poolWorkflowId(stack.poolName));
  await stack.waitFor(
    `the pool to count ${idle} idle`,
    async () => (await pool.query(getPoolStateQuery)).counts.idle === idle,
  );
}

export function forkWorker(stack: Stack, opts: { computeFailureRate?: number } = {}): Promise<ChildProcess> {
  const child = fork(path.join(import.meta.dirname, 'worker-process.ts'), [], {
    execArgv: ['--import', 'tsx'],
    env: {
      ...process.env,
      TEMPORAL_ADDRESS: stack.config.temporal.address,
      DATABASE_URL: stack.config.databaseUrl!,
      COMPUTE_FAILURE_RATE: String(opts.computeFailureRate ?? 0),
      BUNDLE_PATH: inject('workflowBundlePath'),
      TASK_QUEUE: stack.taskQueue,
      STANDIN_URL: stack.standinUrl,
      SECRETS_KEY: stack.secretsKey,
    },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  return new Promise((resolve, reject) => {
    child.once('message', () => resolve(child));
    child.once('exit', (code) => reject(new Error(`worker exited early (${code})`)));
  });
}
