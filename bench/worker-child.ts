/**
 * The worker alone in its own process, for the memory benchmark: its RSS is then the worker's (workflow
 * cache, activities, the Temporal core bridge threads) and nothing else of the stack. It builds the same
 * worker as test/stack.ts (`system/`, the shared stand-in as compute) from settings in BENCH_WORKER.
 * Started as `node --import tsx bench/worker-child.ts` so no wrapper process sits between us and the pid.
 */
// First: it must see the SDK's workflow threads start (SIGWINCH prints where the memory is).
import './memory-probe';
import fs from 'node:fs';
import { loadSettings, openSystem } from '../system';
import { StandinComputeProvider } from '../tools/runtime-standin/compute-provider';
import { reportCachedWorkflows } from './memory-probe';

export interface WorkerChildSettings {
  databaseUrl: string;
  temporalAddress: string;
  taskQueue: string;
  poolName: string;
  secretsKey: string;
  standinUrl: string;
  bundlePath: string;
}

const settings = JSON.parse(process.env.BENCH_WORKER ?? '{}') as WorkerChildSettings;
const loaded = loadSettings({
  DATABASE_URL: settings.databaseUrl,
  TEMPORAL_ADDRESS: settings.temporalAddress,
  TEMPORAL_TASK_QUEUE: settings.taskQueue,
  POOL_NAME: settings.poolName,
  COMPUTE_PROVIDER: 'standin',
  XMTP_ENV: 'off',
  SECRETS_KEY: settings.secretsKey,
  // The scale benchmark compares cache sizes: passed through from the bench's environment.
  ...(process.env.WORKER_MAX_CACHED_WORKFLOWS
    ? { WORKER_MAX_CACHED_WORKFLOWS: process.env.WORKER_MAX_CACHED_WORKFLOWS }
    : {}),
});
const { config } = loaded;
const system = await openSystem({
  settings: loaded,
  databasePoolSize: 20,
  compute: { standin: new StandinComputeProvider(settings.standinUrl) },
  // The benchmark measures the lifecycle and claims: no per-instance provider resources.
  resources: () => ({ enabled: {}, disabled: [] }),
  runtimeEnv: { POOL_API_URL: config.api.publicUrl, XMTP_ENV: config.xmtpEnv },
});
// Pre-bundled by the parent: bundling here would leave webpack's garbage in the RSS we measure.
const worker = await system.startWorker({
  workflowBundle: { code: fs.readFileSync(settings.bundlePath, 'utf8') },
});
reportCachedWorkflows(() => worker.worker.getStatus().numCachedWorkflows);
process.on('SIGTERM', () => void worker.stop());
// The parent reads this line to know the worker is polling.
process.stdout.write('worker-ready\n');
await worker.finished;
await system.close();
process.exit(0);
