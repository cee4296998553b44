/**
 * `queryRows` reads rows the same way on both drivers, and on a Postgres pool runs the statement prepared
 * (one named statement per text, reused); a transaction's handle runs it unnamed.
 */
import { PGlite } from '@electric-sql/pglite';
import { sql } from 'drizzle-orm';
import { drizzle as drizzleNodePg } from 'drizzle-orm/node-postgres';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import pg from 'pg';
import { afterAll, describe, expect, inject, it } from 'vitest';
import type { Db } from './client';
import { queryRows, usePreparedStatements } from './statements';

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

  const prepared = async (pool: pg.Pool) =>
    (await pool.query('select statement from pg_prepared_statements')).rows.map((r) => String(r.statement));

  const onePool = () => {
    // One connection, so the prepared statements seen are the ones this test's statements made.
    const pool = new pg.Pool({ connectionString: inject('databaseUrl'), max: 1 });
    clients.push(pool);
    const db = drizzleNodePg(pool) as unknown as Db;
    usePreparedStatements(db, pool);
    return { pool, db };
  };

  it('returns the rows on Postgres, from a prepared statement', async () => {
    const { pool, db } = onePool();
    expect(await queryRows(db, statement(1))).toEqual([{ n: 1, tag: 'queryRows-probe' }]);
    expect(await queryRows(db, statement(2))).toEqual([{ n: 2, tag: 'queryRows-probe' }]);
    const probes = (await prepared(pool)).filter((s) => s.includes('queryRows-probe'));
    // The same text twice: one prepared statement, reused.
    expect(probes).toHaveLength(1);
  });

  it('runs a statement unnamed inside a transaction (its handle is not the pool)', async () => {
    const { pool, db } = onePool();
    const rows = await db.transaction((tx) => queryRows(tx as unknown as Db, statement(3)));
    expect(rows).toEqual([{ n: 3, tag: 'queryRows-probe' }]);
    expect((await prepared(pool)).filter((s) => s.includes('queryRows-probe'))).toEqual([]);
  });
});
