/**
 * The pool controller's view of the read model: counts by status over every provider, idle and starting on the
 * provider in force, the unclaimed ones left on another provider (starting first, oldest first), which of the
 * instances it started have a row yet, and drain candidates (idle first). Destroyed rows and other pools count
 * for nothing.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type Database, openDatabase } from '../drizzle/client';
import { instances } from '../drizzle/schema';
import { createPoolMemberActivities } from './pool-members';

let database: Database;
beforeAll(async () => {
  database = await openDatabase({ url: inject('databaseUrl'), dataDir: '.data' });
});
afterAll(() => database?.close());

async function seed(pool: string, rows: Array<[status: string, provider: string, ageMinutes: number]>) {
  const ids = rows.map(() => randomUUID());
  await database.db.insert(instances).values(
    rows.map(([status, provider, age], i) => ({
      id: ids[i]!,
      pool,
      status,
      provider,
      createdAt: new Date(Date.now() - age * 60_000),
    })),
  );
  return ids;
}

describe('countPoolMembers', () => {
  it('counts the live rows of its pool and names what the controller acts on', async () => {
    const pool = `members-${randomUUID().slice(0, 8)}`;
    const [idleNew, startingNew, claimedNew, idleOldYoung, idleOldAged, startingOld, destroyed] = await seed(
      pool,
      [
        ['idle', 'docker', 1],
        ['starting', 'docker', 1],
        ['claimed', 'docker', 1],
        ['idle', 'local', 1],
        ['idle', 'local', 9],
        ['starting', 'local', 2],
        ['destroyed', 'docker', 1],
      ],
    );
    await seed(`${pool}-other`, [['idle', 'docker', 1]]);
    const { countPoolMembers } = createPoolMemberActivities({ db: database.db });
    const notYet = randomUUID();
    const view = await countPoolMembers({
      poolName: pool,
      provider: 'docker',
      launched: [startingNew!, notYet],
    });

    expect(view.counts).toMatchObject({ idle: 3, starting: 2, claimed: 1, destroyed: 0 });
    expect(Object.values(view.counts).reduce((a, b) => a + b, 0)).toBe(6);
    expect(view.current).toEqual({ idle: 1, starting: 1 });
    expect(view.retiring).toEqual([startingOld, idleOldAged, idleOldYoung]);
    expect(view.seen).toEqual([startingNew]);
    expect(view.unclaimed.sort((a, b) => a.provider.localeCompare(b.provider))).toEqual([
      { provider: 'docker', version: null, idle: 1, starting: 1 },
      { provider: 'local', version: null, idle: 2, starting: 1 },
    ]);
    expect([idleNew, claimedNew, destroyed].some((id) => view.retiring.includes(id!))).toBe(false);
  });

  it('offers idle instances to a drain before starting ones, never claimed or destroyed ones', async () => {
    const pool = `drain-${randomUUID().slice(0, 8)}`;
    const [starting, idleYoung, , idleAged] = await seed(pool, [
      ['starting', 'docker', 5],
      ['idle', 'docker', 1],
      ['claimed', 'docker', 9],
      ['idle', 'docker', 3],
      ['destroyed', 'docker', 9],
    ]);
    const { listDrainCandidates } = createPoolMemberActivities({ db: database.db });
    expect(await listDrainCandidates({ poolName: pool, limit: 10 })).toEqual([idleAged, idleYoung, starting]);
    expect(await listDrainCandidates({ poolName: pool, limit: 1 })).toEqual([idleAged]);
  });
});
