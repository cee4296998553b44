/** Postgres unavailable (worth waiting out) against Postgres refusing a statement (never worth it). */
import { describe, expect, it } from 'vitest';
import { isDatabaseUnavailable, whileDatabaseUnavailable } from './unavailable';

const refused = () =>
  Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });

describe('isDatabaseUnavailable()', () => {
  it('knows the SQLSTATEs of a server going away or full, and nothing else', () => {
    for (const code of ['57P01', '57P02', '57P03', '08006', '08001', '53300', 'ECONNRESET']) {
      expect(isDatabaseUnavailable({ cause: { code } }), code).toBe(true);
    }
    // node-postgres's own connection errors carry no code, only their message.
    for (const message of [
      'Connection terminated unexpectedly',
      'timeout exceeded when trying to connect',
      'Query read timeout',
    ]) {
      expect(isDatabaseUnavailable({ cause: new Error(message) }), message).toBe(true);
    }
    expect(isDatabaseUnavailable({ cause: new Error('relation "x" does not exist') })).toBe(false);
    for (const code of ['23505', '22P05', '42601', '40001']) {
      expect(isDatabaseUnavailable({ cause: { code } }), code).toBe(false);
    }
  });
});

describe('whileDatabaseUnavailable()', () => {
  it('runs the call again while the database is away, then returns its answer', async () => {
    let calls = 0;
    const waited: unknown[] = [];
    const answer = await whileDatabaseUnavailable(
      async () => {
        calls += 1;
        if (calls < 3) throw refused();
        return 'done';
      },
      { onWait: (err) => waited.push(err) },
    );
    expect(answer).toBe('done');
    expect(calls).toBe(3);
    expect(waited).toHaveLength(2);
  });

  it('throws any other failure at once', async () => {
    let calls = 0;
    const conflict = Object.assign(new Error('duplicate key'), { code: '23505' });
    await expect(
      whileDatabaseUnavailable(async () => {
        calls += 1;
        throw conflict;
      }),
    ).rejects.toBe(conflict);
    expect(calls).toBe(1);
  });

  it('gives up after its wait with the last failure', async () => {
    let calls = 0;
    const started = Date.now();
    await expect(
      whileDatabaseUnavailable(
        async () => {
          calls += 1;
          throw refused();
        },
        { waitMs: 700 },
      ),
    ).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    expect(Date.now() - started).toBeLessThan(1500);
    expect(calls).toBeGreaterThanOrEqual(2);
  });
});
