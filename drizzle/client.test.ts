/**
 * The database handle through a Postgres crash: queries and transactions in flight when the server goes away
 * fail with an error the API answers 503 (none hangs, none escapes as an uncaught error), and once the server
 * is back the same handle serves again. (postgres.js, the driver before, left transactions waiting forever
 * after such a crash and threw from a timer inside itself.)
 */
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type PostgresCluster, startPostgresCluster } from '../test/support/postgres-cluster';
import { type Database, openDatabase } from './client';
import { queryRows } from './statements';
import { isDatabaseUnavailable } from './unavailable';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let cluster: PostgresCluster;
let database: Database;

beforeAll(async () => {
  cluster = await startPostgresCluster();
  database = await openDatabase({ url: cluster.adminUrl, dataDir: '', poolSize: 10 });
  await database.db.execute(sql`create table probe (n int)`);
}, 60_000);

afterAll(async () => {
  await database?.close();
  await cluster?.destroy();
});

it('fails what was in flight when Postgres crashed, hangs nothing, and serves again once it is back', async () => {
  const { db } = database;
  const kinds = [
    // A transaction holding its connection across statements, as the claim ledger's and the payments' do.
    () =>
      db.transaction(async (tx) => {
        await tx.execute(sql`select pg_sleep(0.05)`);
        await tx.execute(sql`insert into probe values (1)`);
      }),
    // A prepared raw statement, as the read-model write.
    () => queryRows(db, sql`select ${1}::int + 1 as x`),
    () => db.execute(sql`select pg_sleep(0.02)`),
  ];
  let stop = false;
  const started = new Map<number, number>();
  const failures: unknown[] = [];
  let succeeded = 0;
  let next = 0;
  const loop = async () => {
    while (!stop) {
      const id = next++;
      started.set(id, Date.now());
      try {
        await kinds[id % kinds.length]!();
        succeeded++;
      } catch (err) {
        failures.push(err);
        await sleep(50);
      }
      started.delete(id);
    }
  };
  // More loops than connections, so some wait for a pooled connection while the server is gone.
  const loops = Array.from({ length: 24 }, loop);

  for (let round = 0; round < 2; round++) {
    await sleep(1000);
    await cluster.crash();
    await sleep(1500);
    await cluster.start();
    const before = succeeded;
    // Back: work succeeds again, and nothing started before the crash is still waiting.
    for (let t = 0; t < 100 && succeeded < before + 30; t++) await sleep(100);
    expect(succeeded, `round ${round}: work after the restart`).toBeGreaterThanOrEqual(before + 30);
    const oldest = Math.min(...started.values());
    expect(Date.now() - oldest, `round ${round}: the oldest operation in flight`).toBeLessThan(5000);
  }
  stop = true;
  await Promise.all(loops);

  // Nothing is left checked out: the pool closes at once (a leaked connection makes it wait forever).
  const closed = database.close().then(() => 'closed');
  expect(await Promise.race([closed, sleep(10_000).then(() => 'still waiting')])).toBe('closed');
  database = undefined as unknown as Database;

  expect(failures.length).toBeGreaterThan(0);
  // Every failure is one the API turns into 503 DATABASE_UNAVAILABLE.
  for (const err of failures) expect(isDatabaseUnavailable(err), String(err)).toBe(true);
}, 60_000);
