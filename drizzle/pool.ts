/**
 * The Postgres connection pool (node-postgres), made to survive a server that goes away:
 *
 * - waiting for a free connection, connecting, and a query on a connection that went silent (a half-open socket
 *   after a failover) end in an error the caller retries, never in a request that hangs;
 * - the server ending a connection (a restart, a crash, a failover) fails the query on it and pg-pool drops the
 *   client; the 'error' event it also emits, on an idle or a checked-out client, never ends the process;
 * - drizzle's pooled `transaction()` (0.45) runs `begin` outside the try/finally that releases the client, and
 *   releases without the error (drizzle-team/drizzle-orm#6241, #6114): a `begin` that fails (the connection died
 *   after checkout) would keep the client checked out for good, and a transaction whose connection broke or
 *   timed out would hand the broken client to the next caller. A checked-out client here is released, and
 *   destroyed, by itself when its `begin` fails, and destroyed on release when any of its queries failed
 *   without the server's answer (a connection error or a client-side timeout, not an SQL error).
 */
import pg from 'pg';

export interface PoolOptions {
  max: number;
  /** How long a query waits for a free connection, and for a connection to Postgres. */
  connectTimeoutMs?: number;
  /** A query not answered in this long fails (the server's own `statement_timeout` cannot see a lost socket). */
  queryTimeoutMs?: number;
}

const isBegin = (query: unknown) => {
  const text = typeof query === 'string' ? query : (query as { text?: unknown } | null)?.text;
  return typeof text === 'string' && /^\s*begin\b/i.test(text);
};

class ResilientPool extends pg.Pool {
  // pool.query() checks out with a callback and releases with the error itself: only the promise form is wrapped.
  override connect(): Promise<pg.PoolClient>;
  override connect(
    callback: (
      err: Error | undefined,
      client: pg.PoolClient | undefined,
      done: (release?: unknown) => void,
    ) => void,
  ): void;
  override connect(callback?: Parameters<pg.Pool['connect']>[0]): Promise<pg.PoolClient> | undefined {
    if (callback) {
      super.connect(callback);
      return undefined;
    }
    return super.connect().then(guardCheckout);
  }
}

/** Wraps one checkout of `client`: see the module comment. Undone when the client is released. */
function guardCheckout(client: pg.PoolClient): pg.PoolClient {
  const query = client.query;
  const release = client.release;
  let broken: Error | undefined;
  client.release = (err?: Error | boolean) => {
    client.query = query;
    client.release = release;
    release.call(client, err ?? broken);
  };
  client.query = (async (...args: unknown[]) => {
    try {
      return await (query as (...a: unknown[]) => Promise<unknown>).apply(client, args);
    } catch (err) {
      // The server answered (an SQL error): the connection is fine. Anything else: it is not.
      if (!(err instanceof pg.DatabaseError)) broken ??= err as Error;
      // drizzle does not release a client whose `begin` failed: done here (and never twice, as it never will).
      if (isBegin(args[0])) client.release(err as Error);
      throw err;
    }
  }) as typeof client.query;
  return client;
}

export function createPool(url: string, opts: PoolOptions): pg.Pool {
  const pool = new ResilientPool({
    connectionString: url,
    max: opts.max,
    connectionTimeoutMillis: opts.connectTimeoutMs ?? 10_000,
    query_timeout: opts.queryTimeoutMs ?? 60_000,
    keepAlive: true,
  });
  pool.on('error', () => {});
  pool.on('connect', (client) => client.on('error', () => {}));
  return pool;
}
