/** The API process on its own: `npm run api` (the local stack runs it in-process from scripts/start.ts). */
import { buildProviders } from '../activities/providers';
import { loadSecretKeys, SecretStore } from '../activities/secret-store';
import { seedCatalog } from '../catalog/seed';
import { loadConfig } from '../config/env';
import { connectClient } from '../config/temporal';
import { openDatabase } from '../drizzle/client';
import { buildApp } from './app';

const config = loadConfig();
const apiKey = process.env.POOL_API_KEY;
if (!apiKey) throw new Error('POOL_API_KEY is required');
// Before connecting anywhere: outside local development a missing SECRETS_KEY refuses to start.
const secretKeys = loadSecretKeys(process.env, config.dataDir);
const database = await openDatabase({ url: config.databaseUrl, dataDir: config.dataDir });
await seedCatalog(database.db);
const temporal = await connectClient(config);
const secrets = new SecretStore(database.db, secretKeys.current, secretKeys.old);
const { senders, llmKeys } = buildProviders(config, database.db);
const app = await buildApp(
  {
    db: database.db,
    temporal,
    secrets,
    config,
    apiKey,
    senders,
    ...(llmKeys ? { llmKeys } : {}),
  },
  { logger: { level: config.logLevel, redact: ['req.headers.authorization'] } },
);
await app.listen({ port: config.api.port, host: config.api.host });
const close = async () => {
  await app.close();
  await temporal.connection.close();
  await database.close();
  process.exit(0);
};
process.on('SIGINT', close);
process.on('SIGTERM', close);
