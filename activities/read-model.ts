/**
 * Read-model writes: the `instances` row and its audit event, in one transaction. Writes carry the
 * workflow's sequence number, so a retried or late older write never overwrites a newer one, and the
 * event key makes the audit insert idempotent.
 */
import { sql } from 'drizzle-orm';
import type { Db } from '../drizzle/client';
import { instanceEvents, instances } from '../drizzle/schema';
import type { Actor, InstanceStatus } from '../workflows/types';

export interface TransitionRecord {
  instanceId: string;
  poolName: string;
  provider: string;
  seq: number;
  from: InstanceStatus | null;
  to: InstanceStatus;
  actor: Actor;
  reason: string;
  /** When the transition happened in workflow time (ISO). */
  at: string;
  fields: {
    url?: string | null;
    agentName?: string | null;
    templateSlug?: string | null;
    conversationId?: string | null;
    inviteUrl?: string | null;
    joined?: boolean;
    claimKey?: string | null;
    lastError?: string | null;
    failedStep?: string | null;
    idleAt?: string | null;
    claimedAt?: string | null;
    destroyedAt?: string | null;
  };
  details?: Record<string, unknown>;
  /**
   * Audit events of transitions that were not written on their own (`claiming`, which always ends within
   * the same claim): recorded in the same transaction, before this one.
   */
  earlier?: AuditEvent[];
}

export interface AuditEvent {
  seq: number;
  from: InstanceStatus | null;
  to: InstanceStatus;
  actor: Actor;
  reason: string;
  at: string;
  details?: Record<string, unknown>;
}

const date = (iso: string | null | undefined) => (iso ? new Date(iso) : iso === null ? null : undefined);

export async function writeTransition(db: Db, t: TransitionRecord): Promise<void> {
  const f = t.fields;
  const columns = {
    status: t.to,
    seq: t.seq,
    provider: t.provider,
    url: f.url,
    agentName: f.agentName,
    templateSlug: f.templateSlug,
    conversationId: f.conversationId,
    inviteUrl: f.inviteUrl,
    joined: f.joined === undefined ? undefined : f.joined ? 1 : 0,
    claimKey: f.claimKey,
    lastError: f.lastError,
    failedStep: f.failedStep,
    idleAt: date(f.idleAt),
    claimedAt: date(f.claimedAt),
    destroyedAt: date(f.destroyedAt),
    updatedAt: new Date(t.at),
  };
  const set = Object.fromEntries(Object.entries(columns).filter(([, v]) => v !== undefined));
  await db.transaction(async (tx) => {
    await tx
      .insert(instances)
      .values({
        id: t.instanceId,
        pool: t.poolName,
        createdAt: new Date(t.at),
        ...set,
      } as typeof instances.$inferInsert)
      .onConflictDoUpdate({ target: instances.id, set, setWhere: sql`${instances.seq} < ${t.seq}` });
    await tx
      .insert(instanceEvents)
      .values(
        [...(t.earlier ?? []), t].map((e) => ({
          instanceId: t.instanceId,
          eventKey: String(e.seq),
          fromStatus: e.from,
          toStatus: e.to,
          actor: e.actor,
          reason: e.reason,
          details: e.details ?? {},
          at: new Date(e.at),
        })),
      )
      .onConflictDoNothing();
  });
}
