/**
 * What the pool controller decides on, read from the read model instead of a member map inside the pool
 * workflow (docs/architecture.md, "The pool controller"): counts by status, the unclaimed instances still on a
 * provider that is no longer in force, the drain candidates. One indexed `group by` per decision, whatever the
 * fleet's size, and nothing per member in the pool's history, continue-as-new input or Query answer.
 */
import { and, asc, eq, inArray, sql } from 'drizzle-orm';
import type { Db } from '../drizzle/client';
import { instances } from '../drizzle/schema';
import { INSTANCE_STATUSES, type InstanceStatus } from '../workflows/types';

const LIVE_STATUSES = INSTANCE_STATUSES.filter((s) => s !== 'destroyed');

/** At most this many retiring instances are named per decision (they are drained a few at a time anyway). */
const RETIRING_LIMIT = 100;

export interface PoolMemberCounts {
  /** Live rows (not destroyed) by status, every provider. */
  counts: Record<InstanceStatus, number>;
  /** Idle and starting on the compute provider and runtime version in force. */
  current: { idle: number; starting: number };
  /**
   * Unclaimed (idle, starting) on another provider or another known runtime version: starting ones first, oldest
   * first. A row or a declaration without a version (unknown) is never taken for another version.
   */
  retiring: string[];
  /** Of the ids the pool started and has not seen yet, those the read model has now. */
  seen: string[];
  /**
   * Idle and starting by provider and runtime version: what a declaration of another provider or version would
   * retire, counted in the workflow at once (an Update handler must not run a local activity: see pool.ts).
   */
  unclaimed: Array<{ provider: string; version: string | null; idle: number; starting: number }>;
}

export function createPoolMemberActivities(deps: { db: Db }) {
  return {
    async countPoolMembers(input: {
      poolName: string;
      provider: string;
      /** The declared runtime version; null: unknown (only the provider decides). */
      runtimeVersion?: string | null;
      launched: string[];
    }): Promise<PoolMemberCounts> {
      const { db } = deps;
      // Seen first, counted after: a row is never removed, so every instance seen here is in the counts below
      // (the other order could drop a start from both and let the pool start one too many).
      const seen =
        input.launched.length === 0
          ? []
          : await db
              .select({ id: instances.id })
              .from(instances)
              .where(inArray(instances.id, input.launched));
      const counts = Object.fromEntries(INSTANCE_STATUSES.map((s) => [s, 0])) as Record<
        InstanceStatus,
        number
      >;
      const current = { idle: 0, starting: 0 };
      const version = input.runtimeVersion ?? null;
      const onCurrent = version
        ? sql`(${instances.provider} = ${input.provider} and (${instances.runtimeVersion} is null or ${instances.runtimeVersion} = ${version}))`
        : sql`${instances.provider} = ${input.provider}`;
      const rows = await db
        .select({
          status: instances.status,
          onCurrent: sql<boolean>`${onCurrent}`,
          n: sql<number>`count(*)::int`,
        })
        .from(instances)
        // The live statuses by name (not `<> 'destroyed'`): destroyed rows pile up, and an IN list is an index
        // range scan on (pool, status) that never reads them.
        .where(and(eq(instances.pool, input.poolName), inArray(instances.status, LIVE_STATUSES)))
        .groupBy(instances.status, sql`2`);
      for (const row of rows) {
        const status = row.status as InstanceStatus;
        counts[status] = (counts[status] ?? 0) + row.n;
        if (row.onCurrent && (status === 'idle' || status === 'starting')) current[status] += row.n;
      }
      const retiring = await db
        .select({ id: instances.id })
        .from(instances)
        .where(
          and(
            eq(instances.pool, input.poolName),
            sql`not ${onCurrent}`,
            inArray(instances.status, ['idle', 'starting']),
          ),
        )
        .orderBy(sql`${instances.status} = 'starting' desc`, asc(instances.createdAt))
        .limit(RETIRING_LIMIT);
      const groups = await db
        .select({
          provider: instances.provider,
          version: instances.runtimeVersion,
          status: instances.status,
          n: sql<number>`count(*)::int`,
        })
        .from(instances)
        .where(and(eq(instances.pool, input.poolName), inArray(instances.status, ['idle', 'starting'])))
        .groupBy(instances.provider, instances.runtimeVersion, instances.status);
      const unclaimed = new Map<string, PoolMemberCounts['unclaimed'][number]>();
      for (const g of groups) {
        const key = `${g.provider}\0${g.version ?? ''}`;
        const entry = unclaimed.get(key) ?? {
          provider: g.provider,
          version: g.version,
          idle: 0,
          starting: 0,
        };
        entry[g.status as 'idle' | 'starting'] += g.n;
        unclaimed.set(key, entry);
      }
      return {
        counts,
        current,
        retiring: retiring.map((r) => r.id),
        seen: seen.map((r) => r.id),
        unclaimed: [...unclaimed.values()],
      };
    },

    /** Unclaimed instances to offer a drain: idle first (they cost money and nobody waits), then starting. */
    async listDrainCandidates(input: { poolName: string; limit: number }): Promise<string[]> {
      const rows = await deps.db
        .select({ id: instances.id })
        .from(instances)
        .where(and(eq(instances.pool, input.poolName), inArray(instances.status, ['idle', 'starting'])))
        .orderBy(sql`${instances.status} = 'idle' desc`, asc(instances.createdAt))
        .limit(input.limit);
      return rows.map((r) => r.id);
    },
  };
}
