/**
 * A worker in its own process, so tests can SIGKILL it mid-flight. Same worker as production (`system/`),
 * with the stand-in compute provider pointed at the test's stand-in server.
 */

import fs from 'node:fs';
import { openSystem } from '../../system';
import { StandinComputeProvider } from '../../tools/runtime-standin/compute-provider';

const env = (name: string) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
};

const system = await openSystem({
  env: {
    DATABASE_URL: env('DATABASE_URL'),
    TEMPORAL_ADDRESS: env('TEMPORAL_ADDRESS'),
    TEMPORAL_TASK_QUEUE: env('TASK_QUEUE'),
    SECRETS_KEY: env('SECRETS_KEY'),
    COMPUTE_PROVIDER: 'standin',
  },
  log: { level: 'error' },
  compute: {
    standin: new StandinComputeProvider(env('STANDIN_URL'), {
      failureRate: Number(process.env.COMPUTE_FAILURE_RATE ?? 0),
    }),
  },
  resources: () => ({ enabled: {}, disabled: [] }),
  runtimeEnv: { XMTP_ENV: 'off' },
});
const worker = await system.startWorker({
  workflowBundle: { code: fs.readFileSync(env('BUNDLE_PATH'), 'utf8') },
});
process.send?.('ready');
await worker.finished;
