/**
 * The worker process: `npm run worker`. Runs the workflows and activities of one task queue until SIGINT/SIGTERM.
 */
import { buildComputeProviders, runtimeEnvironment } from '../activities/compute';
import { buildProviders } from '../activities/providers';
import { loadSecretKeys, SecretStore } from '../activities/secret-store';
import { loadConfig } from '../config/env';
import { connectClient } from '../config/temporal';
import { openDatabase } from '../drizzle/client';
import { createWorker } from './create-worker';

const config = loadConfig();
// Before connecting anywhere: outside local development a missing SECRETS_KEY refuses to start.
const secretKeys = loadSecretKeys(process.env, config.dataDir);
const database = await openDatabase({ url: config.databaseUrl, dataDir: config.dataDir });
const temporal = await connectClient(config);
const { worker, connection } = await createWorker({
  address: config.temporal.address,
  namespace: config.temporal.namespace,
  taskQueue: config.temporal.taskQueue,
  deps: {
    db: database.db,
    temporal,
    secrets: new SecretStore(database.db, secretKeys.current, secretKeys.old),
    compute: buildComputeProviders(config),
    resources: buildProviders(config, database.db).resources,
    runtimeEnv: runtimeEnvironment(config),
  },
});
console.log(`worker polling ${config.temporal.taskQueue} on ${config.temporal.address}`);
await worker.run(); // resolves after SIGINT/SIGTERM (the SDK installs the handlers) and a graceful drain
await connection.close();
await temporal.connection.close();
await database.close();
