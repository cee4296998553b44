/**
 * The worker alone in its own process, for the memory benchmark: its RSS is then the worker's (workflow
 * cache, activities, the Temporal core bridge threads) and nothing else of the stack. It builds the same
 * worker as test/stack.ts (same activities, the shared stand-in as compute) from settings in BENCH_WORKER.
 * Started as `node --import tsx bench/worker-child.ts` so no wrapper process sits between us and the pid.
 */
import fs from 'node:fs';
import { SecretStore, secretKeyFromBase64 } from '../activities/secret-store';
import { loadConfig } from '../config/env';
import { connectClient } from '../config/temporal';
import { openDatabase } from '../drizzle/client';
import { StandinComputeProvider } from '../test/standins/standin-compute';
import { createWorker } from '../workers/create-worker';

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
const config = loadConfig({
  DATABASE_URL: settings.databaseUrl,
  TEMPORAL_ADDRESS: settings.temporalAddress,
  TEMPORAL_TASK_QUEUE: settings.taskQueue,
  POOL_NAME: settings.poolName,
  COMPUTE_PROVIDER: 'standin',
  XMTP_ENV: 'off',
  SECRETS_KEY: settings.secretsKey,
});
const database = await openDatabase({ url: settings.databaseUrl, dataDir: '.data', poolSize: 20 });
const temporal = await connectClient(config);
const { worker } = await createWorker({
  address: settings.temporalAddress,
  namespace: config.temporal.namespace,
  taskQueue: settings.taskQueue,
  deps: {
    db: database.db,
    temporal,
    secrets: new SecretStore(database.db, secretKeyFromBase64(settings.secretsKey)),
    compute: { standin: new StandinComputeProvider(settings.standinUrl) },
    // The benchmark measures the lifecycle and claims: no per-instance provider resources.
    resources: { enabled: {}, disabled: [] },
    runtimeEnv: { POOL_API_URL: config.api.publicUrl, XMTP_ENV: config.xmtpEnv },
  },
  // Pre-bundled by the parent: bundling here would leave webpack's garbage in the RSS we measure.
  workflowBundle: { code: fs.readFileSync(settings.bundlePath, 'utf8') },
});
process.on('SIGTERM', () => worker.shutdown());
// The parent reads this line to know the worker is polling.
process.stdout.write('worker-ready\n');
await worker.run();
await temporal.connection.close();
await database.close();
process.exit(0);
