/** What every route plugin gets: the database, Temporal, secrets and configuration. */
import type { Client } from '@temporalio/client';
import type { SecretStore } from '../activities/secret-store';
import type { Config } from '../config/env';
import type { Db } from '../drizzle/client';

export interface ApiContext {
  db: Db;
  temporal: Client;
  secrets: SecretStore;
  config: Config;
  apiKey: string;
}
