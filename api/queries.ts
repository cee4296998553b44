/** Read-model queries the API answers from Postgres (fast, no Temporal round trip). */
import { and, desc, eq, inArray, ne, sql } from 'drizzle-orm';
import { type InstanceStatus, LIVE_STATUSES, type LiveStatus } from '../contracts/instance-status';
import type { ResourceMetadata } from '../contracts/resources';
import type { Db } from '../drizzle/client';
import { instanceEvents, instanceResources, instances, phoneNumbers, templates } from '../drizzle/schema';

export async function poolCounts(db: Db, pool: string): Promise<Record<LiveStatus, number>> {
  const rows = await db
    .select({ status: instances.status, n: sql<number>`count(*)::int` })
    .from(instances)
    .where(and(eq(instances.pool, pool), ne(instances.status, 'destroyed')))
    .groupBy(instances.status);
  const counts = Object.fromEntries(LIVE_STATUSES.map((s) => [s, 0])) as Record<LiveStatus, number>;
  for (const row of rows) if (row.status in counts) counts[row.status as LiveStatus] = Number(row.n);
  return counts;
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);

export function agentSummary(row: typeof instances.$inferSelect) {
  return {
    id: row.id,
    status: row.status as InstanceStatus,
    agentName: row.agentName,
    templateSlug: row.templateSlug,
    conversationId: row.conversationId,
    createdAt: row.createdAt.toISOString(),
    claimedAt: iso(row.claimedAt),
    lastError: row.lastError,
    runtimeVersion: row.runtimeVersion,
  };
}

export async function liveInstances(db: Db, pool: string) {
  return db
    .select()
    .from(instances)
    .where(and(eq(instances.pool, pool), ne(instances.status, 'destroyed')))
    .orderBy(desc(instances.createdAt));
}

export async function findInstance(db: Db, id: string) {
  const [row] = await db.select().from(instances).where(eq(instances.id, id));
  return row ?? null;
}

/** Non-secret facts of a resource for operators: an inbox address, a number, why a provider was skipped. */
function resourceDetails(metadata: Record<string, unknown>): Record<string, string> {
  const meta = metadata as ResourceMetadata & { url?: string };
  return {
    ...(meta.facts ?? {}),
    ...(meta.url ? { url: meta.url } : {}),
    ...(meta.reason ? { reason: meta.reason } : {}),
  };
}

export async function instanceDetail(db: Db, id: string) {
  const row = await findInstance(db, id);
  if (!row) return null;
  const resources = await db.select().from(instanceResources).where(eq(instanceResources.instanceId, id));
  const events = await db
    .select()
    .from(instanceEvents)
    .where(eq(instanceEvents.instanceId, id))
    .orderBy(desc(instanceEvents.id))
    .limit(100);
  return {
    ...agentSummary(row),
    provider: row.provider,
    url: row.url,
    idleAt: iso(row.idleAt),
    destroyedAt: iso(row.destroyedAt),
    failedStep: row.failedStep,
    resources: resources.map((r) => ({
      kind: r.kind,
      provider: r.provider,
      ref: r.ref,
      status: r.status,
      details: resourceDetails(r.metadata),
      createdAt: r.createdAt.toISOString(),
      releasedAt: iso(r.releasedAt),
    })),
    events: events.map((e) => ({
      at: e.at.toISOString(),
      from: e.fromStatus as InstanceStatus | null,
      to: e.toStatus as InstanceStatus,
      actor: e.actor,
      reason: e.reason,
    })),
  };
}

export async function listTemplates(db: Db) {
  return db.select().from(templates).orderBy(templates.category, templates.name);
}

export async function findTemplate(db: Db, slug: string) {
  const [row] = await db.select().from(templates).where(eq(templates.slug, slug));
  return row ?? null;
}

/** The resource kinds the fleet totals count, under the names the costs route shows them by. */
const COUNTED_KINDS = { llmKey: 'keys', inbox: 'inboxes', phone: 'numbers' } as const;
export type CountedResources = Record<
  (typeof COUNTED_KINDS)[keyof typeof COUNTED_KINDS],
  { inUse: number; pooled: number; other: number }
>;
/** In use: held by a claimed (or being claimed) instance; pooled: by one waiting to be claimed. */
const IN_USE: readonly string[] = ['claiming', 'claimed'];
const POOLED: readonly string[] = ['starting', 'idle'];

/**
 * The pool's active per-instance resources by kind and by what their instance is doing, from the read
 * model (`other`: held by a crashed, failed or destroying instance, until its release).
 */
export async function resourceCounts(db: Db, pool: string): Promise<CountedResources> {
  const rows = await db
    .select({ kind: instanceResources.kind, status: instances.status, n: sql<number>`count(*)::int` })
    .from(instanceResources)
    .innerJoin(instances, eq(instances.id, instanceResources.instanceId))
    .where(
      and(
        eq(instances.pool, pool),
        eq(instanceResources.status, 'active'),
        inArray(instanceResources.kind, Object.keys(COUNTED_KINDS)),
      ),
    )
    .groupBy(instanceResources.kind, instances.status);
  const counts = Object.fromEntries(
    Object.values(COUNTED_KINDS).map((k) => [k, { inUse: 0, pooled: 0, other: 0 }]),
  ) as CountedResources;
  for (const row of rows) {
    const bucket = counts[COUNTED_KINDS[row.kind as keyof typeof COUNTED_KINDS]];
    const n = Number(row.n);
    if (IN_USE.includes(row.status)) bucket.inUse += n;
    else if (POOLED.includes(row.status)) bucket.pooled += n;
    else bucket.other += n;
  }
  return counts;
}

/** Numbers released by instances and kept for the next one (`phone_numbers`, shared by the deployment). */
export async function spareNumbers(db: Db): Promise<number> {
  const [row] = await db
    .select({ n: sql<number>`count(*)::int` })
    .from(phoneNumbers)
    .where(eq(phoneNumbers.status, 'available'));
  return Number(row?.n ?? 0);
}

/** The instance's own LLM key (its provider ref), while it holds one. */
export async function activeLlmKey(db: Db, id: string): Promise<string | null> {
  const [row] = await db
    .select({ ref: instanceResources.ref })
    .from(instanceResources)
    .where(
      and(
        eq(instanceResources.instanceId, id),
        eq(instanceResources.kind, 'llmKey'),
        eq(instanceResources.status, 'active'),
      ),
    );
  return row?.ref ?? null;
}
