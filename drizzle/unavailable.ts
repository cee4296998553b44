/**
 * Postgres that cannot serve now (gone, restarting, full), told apart from Postgres refusing a statement: the
 * first is worth waiting out, the second never is. The API answers it 503 with Retry-After; the activities whose
 * failure would cost more than a wait (the claim's provision) wait it out.
 */
import { setTimeout as sleep } from 'node:timers/promises';

/** Socket-level codes of a connection that failed, closed or timed out. */
const DB_CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/**
 * node-postgres's own errors for a connection that ended, timed out or cannot be had (they carry no code): the
 * server went away mid-query, connecting or waiting for a pooled connection took too long, a query was not
 * answered within `query_timeout`, a client broken by one of these, a pool that is shutting down.
 */
const DB_CONNECTION_MESSAGES =
  /^(Connection terminated|timeout exceeded when trying to connect|Query read timeout|Client has encountered a connection error|Client was closed|Cannot use a pool after calling end)/;

/**
 * Postgres cannot serve this now: the connection failed (refused, reset, ended, timed out), SQLSTATE class 08
 * (connection exception), 57P01–57P03 (admin or crash shutdown, cannot connect now) or 53 (insufficient
 * resources: too many connections). Looks through drizzle's wrapper (`cause`) and an AggregateError.
 */
export function isDatabaseUnavailable(err: unknown, depth = 0): boolean {
  if (!err || typeof err !== 'object' || depth > 4) return false;
  const e = err as { code?: unknown; errno?: unknown; cause?: unknown; errors?: unknown; message?: unknown };
  const code = typeof e.code === 'string' ? e.code : typeof e.errno === 'string' ? e.errno : '';
  if (DB_CONNECTION_CODES.has(code) || /^08[0-9A-Z]{3}$/.test(code) || /^57P0[123]$/.test(code)) return true;
  if (/^53[0-9A-Z]{3}$/.test(code)) return true;
  if (!code && typeof e.message === 'string' && DB_CONNECTION_MESSAGES.test(e.message)) return true;
  if (Array.isArray(e.errors) && e.errors.some((x) => isDatabaseUnavailable(x, depth + 1))) return true;
  return isDatabaseUnavailable(e.cause, depth + 1);
}

/** How long `whileDatabaseUnavailable` waits by default: a crashed Postgres comes back well within it. */
const DATABASE_WAIT_MS = 60_000;

/**
 * Runs `fn` again (backing off 200 ms → 2 s) while it fails because the database is unavailable, for up to
 * `waitMs`; any other failure, or the last one, is thrown as it is. `fn` must be safe to run again.
 */
export async function whileDatabaseUnavailable<T>(
  fn: () => Promise<T>,
  { waitMs = DATABASE_WAIT_MS, onWait }: { waitMs?: number; onWait?: (err: unknown) => void } = {},
): Promise<T> {
  const until = Date.now() + waitMs;
  for (let delay = 200; ; delay = Math.min(delay * 2, 2000)) {
    try {
      return await fn();
    } catch (err) {
      if (!isDatabaseUnavailable(err) || Date.now() + delay > until) throw err;
      onWait?.(err);
      await sleep(delay);
    }
  }
}
