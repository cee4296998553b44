/**
 * `npm run db:migrate`: the one migration command — applies the pending migrations to DATABASE_URL (or the
 * embedded database), one process at a time, and refuses a schema newer than this code. A split deployment runs
 * it as its release step, with the processes on DATABASE_MIGRATIONS=verify.
 */
import { loadConfig } from '../config/env';
import { openDatabase, schemaStatus } from './client';

const config = loadConfig();
const database = await openDatabase({
  url: config.databaseUrl,
  dataDir: config.dataDir,
  migrations: 'apply',
});
const status = await schemaStatus(database.db);
console.log(`migrations applied (${database.kind}): ${status.applied} in the database, none pending`);
await database.close();
