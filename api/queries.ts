/** Read-model queries the API answers from Postgres (fast, no Temporal round trip). */
import { and, desc, eq, ne, sql } from 'drizzle-orm';
import { type InstanceStatus, LIVE_STATUSES, type LiveStatus } from '../contracts/instance-status';
import type { ResourceMetadata } from '../contracts/resources';
import type { Db } from '../drizzle/client';
import { instanceEvents, instanceResources, instances, templates } from '../drizzle/schema';

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
