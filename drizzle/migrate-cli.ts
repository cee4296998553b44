/** `npm run db:migrate`: apply the generated migrations to DATABASE_URL (or the embedded database). */
import { loadConfig } from '../config/env';
import { openDatabase } from './client';

const config = loadConfig();
const database = await openDatabase({ url: config.databaseUrl, dataDir: config.dataDir });
console.log(`migrations applied (${database.kind})`);
await database.close();
