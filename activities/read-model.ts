/**
 * Read-model writes: the `instances` row and its audit event, in one transaction. Writes carry the
 * workflow's sequence number, so a retried or late older write never overwrites a newer one, and the
 * event key makes the audit insert idempotent.
 */
import { ApplicationFailure } from '@temporalio/common';
import { type SQL, sql } from 'drizzle-orm';
import { FailureType } from '../contracts/failures';
import type { Db } from '../drizzle/client';
import { instanceEvents, instances } from '../drizzle/schema';
import { queryRows } from '../drizzle/statements';
import { type Actor, type ClaimBinding, type InstanceStatus, provisionedReason } from '../workflows/types';

export interface TransitionRecord {
  instanceId: string;
  poolName: string;
  provider: string;
  /** The runtime version its compute runs (absent: not known to this write). */
  runtimeVersion?: string | null;
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
  /** Once written, report the transition to the pool (`instanceChanged`, with `seq`) instead of the workflow. */
  reportToPool?: boolean;
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

/**
 * Writes the transition; `alongside`: other writes (data-modifying statements, e.g. a claim's links into the
 * secret store) made in the same statement, so in the same round trip and atomically with it.
 */
export async function writeTransition(db: Db, t: TransitionRecord, alongside: SQL[] = []): Promise<void> {
  const f = t.fields;
  const columns = {
    status: t.to,
    seq: t.seq,
    provider: t.provider,
    runtimeVersion: t.runtimeVersion,
    url: f.url,
    agentName: f.agentName,
    templateSlug: f.templateSlug,
    conversationId: f.conversationId,
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
  const row = db
    .insert(instances)
    .values({
      id: t.instanceId,
      pool: t.poolName,
      createdAt: new Date(t.at),
      ...set,
    } as typeof instances.$inferInsert)
    .onConflictDoUpdate({ target: instances.id, set, setWhere: sql`${instances.seq} < ${t.seq}` });
  const events = db
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
  // One statement, so one round trip and atomic without a transaction (BEGIN and COMMIT were two more).
  const others = alongside.flatMap((statement, i) => [sql.raw(`, alongside_${i} as (`), statement, sql`)`]);
  await queryRows(
    db,
    sql.join([sql`with row_written as (`, row.getSQL(), sql`)`, ...others, sql` `, events.getSQL()]),
  );
}

/**
 * A write the database refuses because of its data (SQLSTATE class 22, data exception: invalid text such as
 * U+0000; class 23, integrity constraint) fails the same way on every attempt: non-retryable, so the workflow
 * sees a clear failure instead of a local activity retrying forever. Anything else (connection refused or
 * reset, the server restarting, a timeout) is left to the retry policy.
 */
export function classifyDatabaseError(err: unknown): unknown {
  const e = err as { code?: unknown; message?: string; cause?: { code?: unknown; message?: string } };
  const code = typeof e?.code === 'string' ? e.code : typeof e?.cause?.code === 'string' ? e.cause.code : '';
  if (/^2[23][0-9A-Z]{3}$/.test(code)) {
    const message = e.cause?.message ?? e.message ?? 'refused';
    return ApplicationFailure.nonRetryable(
      `the read model refused the write (SQLSTATE ${code}): ${message}`,
      FailureType.ReadModelDataError,
    );
  }
  return err;
}

/**
 * The `claimed` write the instance workflow drafted (`draftClaimedRecord`) completed with the runtime's answer:
 * the provision activity makes it, at `at`, so a claim needs one local activity rather than two.
 */
export function completeClaimedRecord(
  draft: TransitionRecord,
  answer: Pick<ClaimBinding, 'status' | 'conversationId' | 'joined'>,
  at: string,
): TransitionRecord {
  return {
    ...draft,
    reason: provisionedReason(answer.status),
    at,
    fields: {
      ...draft.fields,
      conversationId: answer.conversationId,
      joined: answer.joined,
      claimedAt: draft.fields.claimedAt ?? at,
    },
  };
}
