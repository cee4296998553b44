/**
 * Raw statements (the claim's CTEs, the read-model write, the secret store's upsert) on either driver.
 *
 * - Rows: drizzle's `db.execute` answers with the rows themselves on postgres.js but with a result object
 *   (`{ rows, fields, … }`) on PGlite, so a caller that reads rows from it works on one driver only. Read them
 *   through `queryRows`.
 * - Prepared: drizzle runs every query as an unnamed statement (`unsafe(text, params, { prepare: false })`),
 *   so Postgres parses and plans the claim's statements anew every time. On postgres.js `queryRows` runs them
 *   prepared (postgres.js keeps them per connection, keyed by their text): measured on a 2-core machine, the
 *   ledger insert went from ≈ 1.2 to ≈ 0.7 CPU-ms in Postgres and ≈ 0.45 to ≈ 0.25 in Node. A client made with
 *   `prepare: false` (a transaction-mode pooler such as PgBouncer) keeps unnamed statements. Inside a
 *   transaction (whose handle has no client of its own) the statement goes through drizzle as usual.
 */
import type { SQL } from 'drizzle-orm';
import { PgDialect } from 'drizzle-orm/pg-core';
import type { Db } from './client';

const dialect = new PgDialect();

/** The part of a postgres.js client used here (drizzle exposes the client as `$client`). */
interface PostgresJsClient {
  unsafe(text: string, params: unknown[], options: { prepare: boolean }): Promise<unknown[]>;
  options?: { prepare?: boolean };
}

function postgresJsClient(db: Pick<Db, 'execute'>): PostgresJsClient | null {
  const client = (db as { $client?: Partial<PostgresJsClient> }).$client;
  return typeof client?.unsafe === 'function' ? (client as PostgresJsClient) : null;
}

/** Runs `statement` and returns its rows (column names as the statement spells them), on either driver. */
export async function queryRows<Row extends Record<string, unknown>>(
  db: Pick<Db, 'execute'>,
  statement: SQL,
): Promise<Row[]> {
  const client = postgresJsClient(db);
  if (client) {
    const query = dialect.sqlToQuery(statement);
    const prepare = client.options?.prepare !== false;
    return (await client.unsafe(query.sql, query.params, { prepare })) as Row[];
  }
  const result = (await db.execute(statement)) as unknown as { rows?: Row[] } | Row[];
  return Array.isArray(result) ? result : (result.rows ?? []);
}
