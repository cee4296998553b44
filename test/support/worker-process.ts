/**
 * A worker in its own process, so tests can SIGKILL it mid-flight. Same worker as production (createWorker),
 * with the stand-in compute provider pointed at the test's stand-in server.
 */

import fs from 'node:fs';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { SecretStore, secretKeyFromBase64 } from '../../activities/secret-store';
import { openDatabase } from '../../drizzle/client';
import { createWorker } from '../../workers/create-worker';
import { StandinComputeProvider } from '../standins/standin-compute';

const env = (name: string) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
};

Runtime.install({ logger: new DefaultLogger('ERROR') });
const database = await openDatabase({ url: env('DATABASE_URL'), dataDir: '.data', poolSize: 10 });
const connection = await Connection.connect({ address: env('TEMPORAL_ADDRESS') });
const temporal = new Client({ connection });
const { worker } = await createWorker({
  address: env('TEMPORAL_ADDRESS'),
  namespace: 'default',
  taskQueue: env('TASK_QUEUE'),
  deps: {
    db: database.db,
    temporal,
    secrets: new SecretStore(database.db, secretKeyFromBase64(env('SECRETS_KEY'))),
    compute: { standin: new StandinComputeProvider(env('STANDIN_URL')) },
    resources: { enabled: {}, disabled: [] },
    runtimeEnv: { XMTP_ENV: 'off' },
  },
  workflowBundle: { code: fs.readFileSync(env('BUNDLE_PATH'), 'utf8') },
});
process.send?.('ready');
await worker.run();
