/**
 * `queryRows` reads rows the same way on both drivers (PGlite answers `db.execute` with a result object, not
 * the rows), and on Postgres runs the statement prepared unless the client was made with `prepare: false`.
 */
import { PGlite } from '@electric-sql/pglite';
import { sql } from 'drizzle-orm';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { drizzle as drizzlePostgres } from 'drizzle-orm/postgres-js';
import postgres from 'postgres';
import { afterAll, describe, expect, inject, it } from 'vitest';
import type { Db } from './client';
import { queryRows } from './statements';

const statement = (n: number) => sql`select ${n}::int as n, 'queryRows-probe' as tag`;

describe('queryRows', () => {
  const clients: Array<{ end(): Promise<void> }> = [];
  afterAll(async () => {
    for (const c of clients) await c.end();
  });

  it('returns the rows on PGlite', async () => {
    const pglite = new PGlite();
    clients.push({ end: () => pglite.close() });
    const db = drizzlePglite(pglite) as unknown as Db;
    expect(await queryRows(db, statement(7))).toEqual([{ n: 7, tag: 'queryRows-probe' }]);
    // Also what the claim's ledger reads: a data-modifying CTE's own select.
    await db.execute(sql`create table probe (k text primary key)`);
    const rows = await queryRows<{ inserted: number }>(
      db,
      sql`with ins as (insert into probe values ('a') on conflict do nothing returning k)
          select (select count(*) from ins)::int as inserted`,
    );
    expect(rows).toEqual([{ inserted: 1 }]);
  });

  const prepared = async (client: postgres.Sql) =>
    (await client`select statement from pg_prepared_statements`).map((r) => String(r.statement));

  it('returns the rows on Postgres, from a prepared statement', async () => {
    // One connection, so the prepared statements seen are the ones this test's statement made.
    const client = postgres(inject('databaseUrl'), { max: 1, onnotice: () => {} });
    clients.push(client);
    const db = drizzlePostgres(client) as unknown as Db;
    expect(await queryRows(db, statement(1))).toEqual([{ n: 1, tag: 'queryRows-probe' }]);
    expect(await queryRows(db, statement(2))).toEqual([{ n: 2, tag: 'queryRows-probe' }]);
    const probes = (await prepared(client)).filter((s) => s.includes('queryRows-probe'));
    // The same text twice: one prepared statement, reused.
    expect(probes).toHaveLength(1);
  });

  it('keeps unnamed statements for a client made with prepare: false (a transaction-mode pooler)', async () => {
    const client = postgres(inject('databaseUrl'), { max: 1, prepare: false, onnotice: () => {} });
    clients.push(client);
    const db = drizzlePostgres(client) as unknown as Db;
    expect(await queryRows(db, statement(3))).toEqual([{ n: 3, tag: 'queryRows-probe' }]);
    expect((await prepared(client)).filter((s) => s.includes('queryRows-probe'))).toEqual([]);
  });
});
