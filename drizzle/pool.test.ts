/**
 * The pool's guard against drizzle's pooled-transaction bugs (drizzle/pool.ts): a failed `begin` gives its
 * connection back, and a transaction whose connection timed out never hands it to the next caller. Each case
 * runs on a one-connection pool, where a lost or broken connection shows at once.
 */
import { sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/node-postgres';
import type pg from 'pg';
import { afterEach, expect, inject, it } from 'vitest';
import { createPool } from './pool';

const pools: pg.Pool[] = [];
afterEach(async () => {
  for (const p of pools.splice(0)) await p.end();
});
const onePool = (opts: { queryTimeoutMs?: number } = {}) => {
  const pool = createPool(inject('databaseUrl'), { max: 1, connectTimeoutMs: 2000, ...opts });
  pools.push(pool);
  return { pool, db: drizzle(pool) };
};

it('gives the connection back when a transaction cannot begin', async () => {
  const { pool, db } = onePool();
  // A `begin` Postgres refuses (drizzle puts the isolation level into it as given).
  const failed = await db
    .transaction(async () => {}, { isolationLevel: 'nonsense' as never })
    .then(
      () => null,
      (e: unknown) => e,
    );
  expect(String((failed as Error).cause ?? failed)).toMatch(/syntax error/);
  expect(pool.totalCount - pool.idleCount).toBe(0);
  // The only connection serves the next query (unguarded: it waits for a free connection, then times out).
  expect((await db.execute(sql`select 1 as one`)).rows).toEqual([{ one: 1 }]);
  await db.transaction(async (tx) => {
    await tx.execute(sql`select 1`);
  });
});

it('does not hand a timed-out transaction connection to the next caller', async () => {
  const { pool, db } = onePool({ queryTimeoutMs: 300 });
  const failed = await db
    .transaction(async (tx) => {
      await tx.execute(sql`select pg_sleep(2)`);
    })
    .then(
      () => null,
      (e: unknown) => e,
    );
  expect(String((failed as Error).cause ?? failed)).toMatch(/timeout/i);
  // Unguarded, this query would wait behind the sleep on the same connection and time out too.
  expect((await db.execute(sql`select 2 as two`)).rows).toEqual([{ two: 2 }]);
  expect(pool.totalCount - pool.idleCount).toBe(0);
});

it('keeps a connection whose transaction failed on an SQL error (the server answered)', async () => {
  const { pool, db } = onePool();
  await db.execute(sql`select 1`);
  const [before] = (await db.execute(sql`select pg_backend_pid() as pid`)).rows;
  await db
    .transaction(async (tx) => {
      await tx.execute(sql`select 1/0`);
    })
    .catch(() => {});
  const [after] = (await db.execute(sql`select pg_backend_pid() as pid`)).rows;
  expect(after).toEqual(before);
  expect(pool.totalCount).toBe(1);
});
