/**
 * Opens the database: Postgres at DATABASE_URL, or embedded PGlite under the data dir when it is unset.
 * Both speak the same drizzle API. Migrations: `apply` (the default) applies pending ones here, under a lock,
 * so every entrypoint starts current; `verify` (a split deployment that runs `npm run db:migrate` as its
 * release step) applies nothing. Either way a process refuses a schema it does not know: one with migrations
 * still pending (verify) or with migrations newer than its code (an older release started on a newer schema).
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sql as rawSql } from 'drizzle-orm';
import { readMigrationFiles } from 'drizzle-orm/migrator';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import * as schema from './schema';
import { usePreparedStatements } from './statements';

export type MigrationMode = 'apply' | 'verify';

export type Db = PgDatabase<PgQueryResultHKT, typeof schema>;

export interface Database {
  db: Db;
  kind: 'postgres' | 'pglite';
  close(): Promise<void>;
}

/** Arbitrary, fixed key of the Postgres advisory lock that serializes migrations. */
const MIGRATION_LOCK = 7_245_080;

const migrationsFolder = path.join(path.dirname(fileURLToPath(import.meta.url)), 'migrations');

/** Why a process will not run on this database's schema. */
export class SchemaMismatchError extends Error {
  override name = 'SchemaMismatchError';
}

export interface SchemaStatus {
  /** Migrations recorded in the database. */
  applied: number;
  /** Migrations of this code the database does not have yet. */
  pending: number;
  /** Migrations recorded in the database that this code does not have (a newer release applied them). */
  unknown: number;
}

/** Compares the migrations recorded in the database with those of this code. */
export async function schemaStatus(db: Db): Promise<SchemaStatus> {
  const known = readMigrationFiles({ migrationsFolder });
  // No table yet (a new database): nothing applied.
  const result = (await db
    .execute(rawSql`select hash, created_at from drizzle.__drizzle_migrations`)
    .catch(() => [])) as unknown as { rows?: MigrationRow[] } | MigrationRow[];
  const rows = Array.isArray(result) ? result : (result.rows ?? []);
  const knownAt = new Map(known.map((m) => [m.folderMillis, m.hash]));
  const applied = new Set(rows.map((r) => Number(r.created_at)));
  return {
    applied: rows.length,
    pending: known.filter((m) => !applied.has(m.folderMillis)).length,
    unknown: rows.filter((r) => knownAt.get(Number(r.created_at)) !== r.hash).length,
  };
}
interface MigrationRow {
  hash: string;
  created_at: string;
}

/** Throws when this code must not run on the schema: newer than it knows, or (once migrated) still behind. */
function refuseUnknownSchema(status: SchemaStatus, { pendingToo }: { pendingToo: boolean }) {
  if (status.unknown > 0)
    throw new SchemaMismatchError(
      `the database has ${status.unknown} migration(s) this code does not know (a newer release migrated it): ` +
        'run the release that matches the schema',
    );
  if (pendingToo && status.pending > 0)
    throw new SchemaMismatchError(
      `the database is ${status.pending} migration(s) behind this code: run \`npm run db:migrate\` ` +
        '(or start with DATABASE_MIGRATIONS=apply)',
    );
}

/** Applies pending migrations (`apply`) and refuses a schema this code does not know. */
async function migrateOrVerify(db: Db, apply: boolean, migrate: () => Promise<void>) {
  refuseUnknownSchema(await schemaStatus(db), { pendingToo: !apply });
  if (!apply) return;
  await migrate();
  refuseUnknownSchema(await schemaStatus(db), { pendingToo: true });
}

export async function openDatabase(opts: {
  url: string | null;
  dataDir: string;
  poolSize?: number;
  /** `apply` (default): apply pending migrations; `verify`: only check (see the module comment). */
  migrations?: MigrationMode;
}): Promise<Database> {
  const apply = (opts.migrations ?? 'apply') === 'apply';
  if (opts.url) {
    const { createPool } = await import('./pool');
    const { drizzle } = await import('drizzle-orm/node-postgres');
    const { migrate } = await import('drizzle-orm/node-postgres/migrator');
    const pool = createPool(opts.url, { max: opts.poolSize ?? 10 });
    const db = drizzle(pool, { schema });
    usePreparedStatements(db as unknown as Db, pool);
    const close = () => pool.end();
    try {
      // Worker and API replicas start together: one migrates at a time (a session lock on a connection of its
      // own). A newer schema is refused before anything is applied.
      const migrateLocked = async () => {
        const lock = await pool.connect();
        try {
          await lock.query('select pg_advisory_lock($1)', [MIGRATION_LOCK]);
          await migrate(db, { migrationsFolder });
        } finally {
          await lock.query('select pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => {});
          lock.release();
        }
      };
      await migrateOrVerify(db as unknown as Db, apply, migrateLocked);
    } catch (err) {
      await close();
      throw err;
    }
    return { db: db as unknown as Db, kind: 'postgres', close };
  }
  const { PGlite } = await import('@electric-sql/pglite');
  const { drizzle } = await import('drizzle-orm/pglite');
  const { migrate } = await import('drizzle-orm/pglite/migrator');
  const client = new PGlite(path.resolve(opts.dataDir, 'pglite'));
  const db = drizzle(client, { schema });
  try {
    await migrateOrVerify(db as unknown as Db, apply, () => migrate(db, { migrationsFolder }));
  } catch (err) {
    await client.close();
    throw err;
  }
  return { db: db as unknown as Db, kind: 'pglite', close: () => client.close() };
}
