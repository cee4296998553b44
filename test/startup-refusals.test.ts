/**
 * Processes that refuse to start rather than run wrong, through the real entrypoints. One migration command for
 * a split deployment, and a schema a process does not know: with DATABASE_MIGRATIONS=verify a process on an
 * unmigrated database refuses to start until `npm run db:migrate` ran; any process refuses a database that a
 * newer release migrated. A cloud pool whose instances could not reach the pool.
 */
import { spawn } from 'node:child_process';
import pg from 'pg';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { projectRoot } from '../scripts/temporal-dev';
import { createDatabase } from './support/databases';

const adminUrl = process.env.TEST_POSTGRES_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
let databaseUrl = '';
let dropDatabase = async () => {};
const databaseName = () => databaseUrl.slice(databaseUrl.lastIndexOf('/') + 1);

beforeAll(async () => {
  ({ url: databaseUrl, drop: dropDatabase } = await createDatabase(adminUrl, 'convos_schema'));
});
afterAll(() => dropDatabase());

/** Runs an npm script to its end (the worker would run forever, so a refusal is what ends it here). */
function run(script: string, env: Record<string, string>, timeoutMs = 60_000) {
  return new Promise<{ code: number | null; output: string }>((resolve) => {
    const child = spawn('npm', ['run', '-s', script], {
      cwd: projectRoot,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '',
        DATABASE_URL: databaseUrl,
        // The run's dev server: a worker that got past its database check would run (and be killed at the timeout).
        TEMPORAL_ADDRESS: inject('temporalAddress'),
        TEMPORAL_TASK_QUEUE: `schema-${databaseName()}`,
        POOL_NAME: `schema-${databaseName()}`,
        LOG_LEVEL: 'warn',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let output = '';
    for (const s of [child.stdout, child.stderr]) s.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

it('verify: a worker refuses an unmigrated database; npm run db:migrate makes it current', async () => {
  const refused = await run('worker', { DATABASE_MIGRATIONS: 'verify' });
  expect(refused.code).not.toBe(0);
  expect(refused.output).toMatch(/migration\(s\) behind this code: run `npm run db:migrate`/);
  // Nothing was applied by the refusing process.
  const db = new pg.Pool({ connectionString: databaseUrl, max: 1 });
  const tables = await db.query(
    `select count(*)::int as n from information_schema.tables where table_name = 'instances'`,
  );
  expect(tables.rows[0].n).toBe(0);

  const migrated = await run('db:migrate', {});
  expect(migrated.code).toBe(0);
  expect(migrated.output).toMatch(/migrations applied \(postgres\): \d+ in the database, none pending/);
  const again = await run('db:migrate', {});
  expect(again.code).toBe(0);

  // A database a newer release migrated: every process refuses it, in either mode.
  await db.query(
    `insert into drizzle.__drizzle_migrations (hash, created_at) values ('from-the-future', $1)`,
    [Date.now() + 86_400_000],
  );
  await db.end();
  for (const mode of ['apply', 'verify']) {
    const newer = await run('worker', { DATABASE_MIGRATIONS: mode });
    expect(newer.code).not.toBe(0);
    expect(newer.output).toMatch(/1 migration\(s\) this code does not know/);
  }
  const api = await run('api', { POOL_API_KEY: 'k'.repeat(32) });
  expect(api.code).not.toBe(0);
  expect(api.output).toMatch(/this code does not know/);
}, 180_000);

it('a railway pool refuses to start with a POOL_API_URL its instances cannot reach, naming the variable', async () => {
  const railway = {
    COMPUTE_PROVIDER: 'railway',
    RAILWAY_API_TOKEN: 'railway-token-not-used',
    XMTP_ENV: 'production',
    DATABASE_MIGRATIONS: 'apply',
  };
  const loopback = await run('worker', { ...railway, POOL_API_URL: 'http://127.0.0.1:3001' });
  expect(loopback.code).not.toBe(0);
  expect(loopback.output).toMatch(
    /POOL_API_URL must be reachable from railway instances, got a loopback address/,
  );
  const unset = await run('worker', railway);
  expect(unset.code).not.toBe(0);
  expect(unset.output).toMatch(/COMPUTE_PROVIDER=railway needs POOL_API_URL/);
  expect(loopback.output + unset.output).not.toContain('railway-token-not-used');
}, 120_000);
