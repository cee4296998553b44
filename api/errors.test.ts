/**
 * What a client can only retry is a 503 with Retry-After, never a 500: Temporal unavailable and the database
 * unavailable (a refused connection, an admin shutdown, a connection exception), through drizzle's wrapper too.
 */
import { drizzle } from 'drizzle-orm/postgres-js';
import postgres from 'postgres';
import { describe, expect, it } from 'vitest';
import { freePort } from '../test/support/ports';
import { isDatabaseUnavailable, unavailable } from './errors';

describe('unavailable()', () => {
  it('makes a database that refuses connections a 503 DATABASE_UNAVAILABLE with Retry-After', async () => {
    const port = await freePort();
    const client = postgres(`postgres://postgres@127.0.0.1:${port}/none`, { max: 1, connect_timeout: 2 });
    const db = drizzle(client);
    const err = await db.execute('select 1').then(
      () => null,
      (e: unknown) => e,
    );
    await client.end({ timeout: 1 });
    expect(err).toBeTruthy();
    const mapped = unavailable(err);
    expect(mapped).toMatchObject({ statusCode: 503, code: 'DATABASE_UNAVAILABLE' });
    expect(mapped?.headers['retry-after']).toMatch(/^\d+$/);
  });

  it('knows the SQLSTATEs of a server going away or full, and nothing else', () => {
    for (const code of ['57P01', '57P02', '57P03', '08006', '08001', '53300', 'CONNECTION_CLOSED']) {
      expect(isDatabaseUnavailable({ cause: { code } }), code).toBe(true);
    }
    for (const code of ['23505', '22P05', '42601', '40001']) {
      expect(isDatabaseUnavailable({ cause: { code } }), code).toBe(false);
    }
    expect(unavailable(new Error('boom'))).toBeNull();
  });
});
