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

/** The row's columns a transition may set, by the record's name for them (column names from the schema). */
const ROW_COLUMNS = (
  [
    'status',
    'seq',
    'provider',
    'runtimeVersion',
    'url',
    'agentName',
    'templateSlug',
    'conversationId',
    'joined',
    'claimKey',
    'lastError',
    'failedStep',
    'idleAt',
    'claimedAt',
    'destroyedAt',
    'updatedAt',
  ] as const
).map((key) => [key, instances[key].name] as const);

const EVENT_COLUMNS = [
  instanceEvents.instanceId,
  instanceEvents.eventKey,
  instanceEvents.fromStatus,
  instanceEvents.toStatus,
  instanceEvents.actor,
  instanceEvents.reason,
  instanceEvents.details,
  instanceEvents.at,
]
  .map((c) => c.name)
  .join(', ');

/**
 * The statement's text around its values, per set of columns written (a handful of shapes, so a handful of
 * prepared statements): built by hand rather than by drizzle's query builder, which cost ≈ 0.3 ms of CPU per
 * write, most of the read-model write's share of a claim.
 */
const upsertText = new Map<string, { head: SQL; tail: SQL }>();
function upsertParts(columns: string[]) {
  const key = columns.join(',');
  let parts = upsertText.get(key);
  if (!parts) {
    const set = columns.map((c) => `${c} = excluded.${c}`).join(', ');
    parts = {
      head: sql.raw(
        `with row_written as (insert into instances (id, pool, created_at, ${columns.join(', ')}) values (`,
      ),
      // Only a newer write lands: a retried or late older one changes nothing.
      tail: sql.raw(`) on conflict (id) do update set ${set} where instances.seq < excluded.seq)`),
    };
    upsertText.set(key, parts);
  }
  return parts;
}

/**
 * Writes the transition; `alongside`: other writes (data-modifying statements, e.g. a claim's links into the
 * secret store) made in the same statement, so in the same round trip and atomically with it.
 */
export async function writeTransition(db: Db, t: TransitionRecord, alongside: SQL[] = []): Promise<void> {
  const f = t.fields;
  const values: Record<(typeof ROW_COLUMNS)[number][0], unknown> = {
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
    // Timestamps as ISO text: Postgres reads them into the timestamptz columns.
    idleAt: f.idleAt,
    claimedAt: f.claimedAt,
    destroyedAt: f.destroyedAt,
    updatedAt: t.at,
  };
  // Undefined: not known to this write, left as it is (null is written: it clears the column).
  const present = ROW_COLUMNS.filter(([key]) => values[key] !== undefined);
  const { head, tail } = upsertParts(present.map(([, column]) => column));
  const rowValues = present.map(([key]) => sql`, ${values[key]}`);
  const events = [...(t.earlier ?? []), t].map(
    (e) =>
      sql`(${t.instanceId}, ${String(e.seq)}, ${e.from}, ${e.to}, ${e.actor}, ${e.reason}, ${JSON.stringify(e.details ?? {})}::text::jsonb, ${e.at})`,
  );
  // One statement, so one round trip and atomic without a transaction (BEGIN and COMMIT were two more).
  const others = alongside.flatMap((statement, i) => [sql.raw(`, alongside_${i} as (`), statement, sql`)`]);
  await queryRows(
    db,
    sql.join([
      head,
      sql`${t.instanceId}, ${t.poolName}, ${t.at}`,
      ...rowValues,
      tail,
      ...others,
      sql.raw(` insert into instance_events (${EVENT_COLUMNS}) values `),
      sql.join(events, sql`, `),
      sql` on conflict do nothing`,
    ]),
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
