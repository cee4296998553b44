/**
 * Claiming an instance, idempotently, from any API replica.
 *
 * 1. The `claims` ledger holds one row per Idempotency-Key (`ClaimLedger`): the first request inserts it and
 *    holds a lease on the database's clock, renewed while it works; concurrent or later requests with the same
 *    key wait for its outcome, and take over once the lease has run out (the replica died or stalled). Every
 *    write of a holder is fenced by its lease, so a holder that lost it can no longer send the claim anywhere.
 * 2. Candidates come from the read model: an idle row is reserved atomically (`FOR UPDATE SKIP LOCKED`), so
 *    concurrent claims spread over distinct instances. The instance workflow's claim Update is the arbiter:
 *    its synchronous validator admits only `idle` (or a repeat of the claim the instance already holds), and
 *    the Update id is the Idempotency-Key.
 * 3. No idle instance: wait for one until the caller's deadline (503 + Retry-After). Provisioning failed: the
 *    instance is destroyed by its workflow and the claim moves on to another one (502 if none succeeds). The
 *    runtime refused the request itself: the instance is back to idle and the claim is a 400, at once.
 */
import { createHash, randomUUID } from 'node:crypto';
import {
  type Client,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  WorkflowUpdateRPCTimeoutOrCancelledError,
} from '@temporalio/client';
import { and, asc, eq, lt, or, type SQL, sql } from 'drizzle-orm';
import { ClaimFailure } from '../contracts/failures';
import {
  CHAT_URL,
  INVITE_URL,
  type InstanceSecrets,
  joinUrlSecretName,
  type StoredSecretRow,
} from '../contracts/secrets';
import { instanceWorkflowId } from '../contracts/workflow-ids';
import type { Db } from '../drizzle/client';
import { claims, instanceRecipients, instances } from '../drizzle/schema';
import { queryRows } from '../drizzle/statements';
import { claimUpdate } from '../workflows/messages';
import type { ClaimBinding, ClaimRequest } from '../workflows/types';
import { ApiError, isTemporalUnavailable, isWorkflowTaskFailing } from './errors';

export interface ClaimInput {
  agentName: string;
  instructions: string;
  templateSlug: string | null;
  joinUrl: string | null;
  /**
   * Whom the agent may email / text through the pool (`normalizeRecipients`); absent: nobody until an
   * operator allows someone. Stored in `instance_recipients` once the claim binds, never sent to Temporal.
   */
  allowedRecipients?: AllowedRecipients;
}

/** Recipients allowed per channel: emails lowercased, numbers in E.164; both sorted, without repeats. */
export interface AllowedRecipients {
  email: string[];
  sms: string[];
}

/** The canonical form of a client's list: retries in another order or case fingerprint the same. */
export function normalizeRecipients(list: { email?: string[]; sms?: string[] }): AllowedRecipients {
  const unique = (values: string[]) => [...new Set(values)].sort();
  return { email: unique((list.email ?? []).map((a) => a.toLowerCase())), sms: unique(list.sms ?? []) };
}

/** The instance's allowed recipients. */
export async function recipientsOf(db: Db, instanceId: string): Promise<AllowedRecipients> {
  const rows = await db
    .select({ channel: instanceRecipients.channel, address: instanceRecipients.address })
    .from(instanceRecipients)
    .where(eq(instanceRecipients.instanceId, instanceId))
    .orderBy(asc(instanceRecipients.address));
  const of = (channel: string) => rows.filter((r) => r.channel === channel).map((r) => r.address);
  return { email: of('email'), sms: of('sms') };
}

/**
 * The statements that make the instance's allowed recipients `list` (already normalized), as CTEs of one
 * statement: the rows the list lacks go, the missing ones come. Sibling statements of one WITH see the same
 * snapshot, so a row in both is left alone (deleting and re-inserting it in one statement would lose it).
 * `onlyIf`: the name of an earlier CTE that must have returned a row for anything to change.
 */
function recipientsCtes(instanceId: string, list: AllowedRecipients, onlyIf?: string): SQL {
  const wanted = [
    ...list.email.map((address) => sql`(${'email'}, ${address})`),
    ...list.sms.map((address) => sql`(${'sms'}, ${address})`),
  ];
  const guard = onlyIf ? sql.raw(` and exists (select 1 from ${onlyIf})`) : sql``;
  const removed = sql`removed as (
    delete from instance_recipients
    where instance_id = ${instanceId}${guard}${
      wanted.length ? sql` and (channel, address) not in (values ${sql.join(wanted, sql`, `)})` : sql``
    }
  )`;
  if (wanted.length === 0) return removed;
  return sql`${removed}, added as (
    insert into instance_recipients (instance_id, channel, address)
    select ${instanceId}, v.channel, v.address from (values ${sql.join(wanted, sql`, `)}) as v(channel, address)
    where true${guard}
    on conflict do nothing
  )`;
}

/** Replaces the instance's allowed recipients with `list` (already normalized), in one statement. */
export async function replaceRecipients(db: Db, instanceId: string, list: AllowedRecipients): Promise<void> {
  await queryRows(db, sql`with ${recipientsCtes(instanceId, list)} select 1`);
}

/** Whether the instance may send to `to` (an email compared lowercased, a number as given). */
export async function isRecipientAllowed(
  db: Db,
  instanceId: string,
  channel: 'email' | 'sms',
  to: string,
): Promise<boolean> {
  const rows = await db
    .select({ address: instanceRecipients.address })
    .from(instanceRecipients)
    .where(
      and(
        eq(instanceRecipients.instanceId, instanceId),
        eq(instanceRecipients.channel, channel),
        eq(instanceRecipients.address, channel === 'email' ? to.toLowerCase() : to),
      ),
    )
    .limit(1);
  return rows.length > 0;
}

/** Who the claim is for: an end user named by the API-key holder, and whether that user is anonymous. */
export interface ClaimClient {
  clientId: string | null;
  anonymous: boolean;
}

export interface ClaimResponse {
  instanceId: string;
  agentName: string;
  conversationId: string | null;
  inviteUrl: string | null;
  joined: boolean;
  warm: boolean;
  status: ClaimBinding['status'];
  chatUrl?: string;
}

export type ClaimStep = 'reserve' | 'provision' | 'conversation';
export type StepListener = (step: ClaimStep, status: 'active' | 'ok' | 'fail', detail?: string) => void;

/** A claim's binding as the ledger keeps it. */
type BoundResult = ClaimBinding & { warm: boolean };

/** What the ledger keeps of a finished claim: never a bearer link (they stay in the secret store). */
interface StoredOutcome {
  result?: BoundResult;
  error?: { statusCode: number; code: string; message: string };
}

/** The secret-store names of the bearer links a binding's answer carries. */
const linkNamesOf = (result: BoundResult): string[] => [
  ...(result.hasInviteUrl ? [INVITE_URL] : []),
  ...(result.hasChatUrl ? [CHAT_URL] : []),
];

/** The answer to a claim: its binding, with the bearer links read from the secret store (`links`). */
function responseOf(bound: BoundResult, links: Record<string, string>): ClaimResponse {
  const { hasChatUrl, hasInviteUrl, ...result } = bound;
  // Ledger rows written before bearer links left it carry the invite URL itself.
  const legacyInvite = (bound as { inviteUrl?: unknown }).inviteUrl;
  const inviteUrl = hasInviteUrl
    ? (links[INVITE_URL] ?? null)
    : typeof legacyInvite === 'string'
      ? legacyInvite
      : null;
  const chatUrl = links[CHAT_URL] ?? null;
  return { ...result, inviteUrl, ...(chatUrl ? { chatUrl } : {}) };
}

export interface ClaimSettings {
  /** Reclaim an anonymous claim's instance once its conversation was quiet this long (0: never). */
  anonymousIdleTtlMs: number;
  /** Anonymous claims per minute across all replicas (the global budget). */
  anonymousPerMinute: number;
}

const LEASE_MS = 15_000;
const RESERVATION_MS = 30_000;
const POLL_MS = 100;
/**
 * How long a claim keeps asking an instance that has not answered its Update yet (a starved or restarting
 * worker, Temporal restarting), at least: past the caller's deadline when that is shorter, so a claim with a
 * short `maxWaitMs` is not cut off the moment it reached an instance. Then 503 CLAIM_PENDING.
 */
const UPDATE_MIN_WAIT_MS = 10_000;
/** Pause before asking an unanswered instance again (same Update id). */
const REASK_MS = 250;
/** gRPC RESOURCE_EXHAUSTED: Temporal refuses an 11th in-flight Update on one workflow. */
const GRPC_RESOURCE_EXHAUSTED = 8;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const leaseFromNow = () => sql`now() + ${LEASE_MS} * interval '1 millisecond'`;
const reservationFromNow = () => sql`now() + ${RESERVATION_MS} * interval '1 millisecond'`;

export function fingerprintOf(input: ClaimInput): string {
  const parts: unknown[] = [input.agentName, input.instructions, input.templateSlug, input.joinUrl];
  // Only when given, so the fingerprints of claims without it stay what they were.
  if (input.allowedRecipients) parts.push(input.allowedRecipients);
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex');
}

/** One run of a claim by the replica holding its lease. */
interface Attempt {
  key: string;
  input: ClaimInput;
  client: ClaimClient;
  /** When the search for an instance gives up (a provision already under way is never cut off). */
  deadline: number;
  /** The instance an earlier holder of the key sent it to: asked again first, with the same Update id. */
  askFirst: string | null;
  /** What the ledger insert reserved (and recorded) for a new key: tried first; undefined when not tried. */
  reserved?: string | null;
  onStep: StepListener;
  /** The API request's id, carried to the worker with the claim (for the logs). */
  requestId: string | undefined;
}

/** This replica lost the lease on a claim (it stalled past it and another replica took the claim over). */
class LeaseLost extends Error {}

/** The idempotency ledger: one row per key, a lease on the database clock, every write fenced by the lease. */
class ClaimLedger {
  /** Identifies this API replica as a lease owner. */
  readonly owner = `api-${randomUUID()}`;

  constructor(
    private readonly db: Db,
    private readonly anonymousPerMinute: number,
  ) {}

  private held(key: string) {
    return and(eq(claims.key, key), eq(claims.leaseOwner, this.owner), sql`${claims.leaseUntil} > now()`);
  }

  /**
   * Inserts a new key with our lease and, in the same statement, reserves the longest-idle unreserved instance
   * of `poolName` and records it on the row (as `reserveAndRecord` does for later attempts): a new claim's first
   * two round trips in one. `false` when the key exists (nothing reserved); `reserved` null when no instance
   * is idle. Anonymous claims count against the budget first.
   */
  async insert(
    key: string,
    fingerprint: string,
    client: ClaimClient,
    poolName: string,
  ): Promise<false | { reserved: string | null }> {
    const insertAndReserve = async (db: Pick<Db, 'execute'>) => {
      const rows = await queryRows<{ inserted: number; reserved: string | null }>(
        db,
        sql`
        with picked as (
          select i.id from instances i
          where i.pool = ${poolName} and i.status = 'idle'
            and (i.reserved_until is null or i.reserved_until < now())
          order by i.idle_at asc
          limit 1
          for update skip locked
        ), inserted as (
          insert into claims (key, fingerprint, status, lease_owner, lease_until, client_id, anonymous,
            instance_id, attempts)
          values (${key}, ${fingerprint}, 'pending', ${this.owner}, ${leaseFromNow()}, ${client.clientId},
            ${client.anonymous}, (select id from picked), (select count(*) from picked)::int)
          on conflict do nothing
          returning instance_id
        ), reserved as (
          update instances set reserved_by = ${key}, reserved_until = ${reservationFromNow()}
          where id = (select instance_id from inserted)
          returning id
        )
        select (select count(*) from inserted)::int as inserted, (select id from reserved) as reserved
      `,
      );
      const row = rows[0];
      return row && row.inserted > 0 ? { reserved: row.reserved ?? null } : (false as const);
    };
    // One statement, no transaction: nothing else to keep consistent with it.
    if (!client.anonymous) return insertAndReserve(this.db);
    return this.db.transaction(async (tx) => {
      // One lock for the budget, so replicas never admit more than it between them.
      await tx.execute(sql`select pg_advisory_xact_lock(hashtext('convos-agents:anonymous-claims'))`);
      const [row] = await tx
        .select({ n: sql<number>`count(*)::int` })
        .from(claims)
        .where(and(eq(claims.anonymous, true), sql`${claims.createdAt} > now() - interval '1 minute'`));
      const taken = await tx.select({ key: claims.key }).from(claims).where(eq(claims.key, key));
      if (!taken[0] && Number(row?.n ?? 0) >= this.anonymousPerMinute) {
        throw new ApiError(
          503,
          'ANONYMOUS_BUDGET_EXHAUSTED',
          'too many new agents for anonymous visitors right now; retry in a minute',
          { 'retry-after': '30' },
        );
      }
      return insertAndReserve(tx);
    });
  }

  async read(key: string) {
    const [row] = await this.db.select().from(claims).where(eq(claims.key, key));
    return row ?? null;
  }

  /**
   * Takes over a claim that failed earlier or whose holder's lease ran out; returns the instance it was last
   * sent to (to be asked again first), or undefined when someone else holds a live lease.
   */
  async takeOver(key: string): Promise<{ instanceId: string | null } | undefined> {
    const [taken] = await this.db
      .update(claims)
      .set({
        status: 'pending',
        leaseOwner: this.owner,
        leaseUntil: leaseFromNow(),
        error: null,
        updatedAt: sql`now()`,
      })
      .where(
        and(
          eq(claims.key, key),
          or(
            eq(claims.status, 'failed'),
            and(eq(claims.status, 'pending'), lt(claims.leaseUntil, sql`now()`)),
          ),
        ),
      )
      .returning({ instanceId: claims.instanceId });
    return taken;
  }

  /** Extends our lease; false once it is lost. */
  async renew(key: string): Promise<boolean> {
    const rows = await this.db
      .update(claims)
      .set({ leaseUntil: leaseFromNow(), updatedAt: sql`now()` })
      .where(this.held(key))
      .returning({ key: claims.key });
    return rows.length > 0;
  }

  /** Records the instance we are about to ask — only while we hold the lease, so a taker asks it first. */
  async recordInstance(key: string, instanceId: string): Promise<void> {
    const rows = await this.db
      .update(claims)
      .set({ instanceId, attempts: sql`${claims.attempts} + 1`, updatedAt: sql`now()` })
      .where(this.held(key))
      .returning({ key: claims.key });
    if (rows.length === 0) throw new LeaseLost();
  }

  /** Records a failed outcome (fenced by our ownership). */
  async fail(key: string, error: NonNullable<StoredOutcome['error']>): Promise<void> {
    await this.db
      .update(claims)
      .set({ status: 'failed', error, leaseUntil: null, updatedAt: sql`now()` })
      .where(and(eq(claims.key, key), eq(claims.leaseOwner, this.owner)));
  }

  /**
   * Records a binding (fenced by our ownership) and, in the same statement, replaces the instance's allowed
   * recipients with the claim's list — only if the outcome was ours to record, so a claim whose outcome is not
   * recorded leaves no list behind (its retry writes the same one) — and reads the instance's `linkNames`
   * secrets for the answer. Every claim pays this once: one round trip, plain SQL rather than the builder.
   */
  async succeed(
    key: string,
    result: NonNullable<StoredOutcome['result']>,
    recipients: AllowedRecipients | undefined,
    linkNames: string[],
  ): Promise<StoredSecretRow[]> {
    const list = recipients ?? { email: [], sms: [] };
    const links = linkNames.length
      ? sql`select s.name, s.ciphertext from instance_secrets s
          where s.instance_id = ${result.instanceId} and s.name in (${sql.join(
            linkNames.map((n) => sql`${n}`),
            sql`, `,
          )})`
      : sql`select null::text as name, null::text as ciphertext where false`;
    return queryRows<{ name: string; ciphertext: string }>(
      this.db,
      sql`
      with finished as (
        update claims set status = 'succeeded', result = ${JSON.stringify(result)}::text::jsonb,
          instance_id = ${result.instanceId}, lease_until = null, updated_at = now()
        where key = ${key} and lease_owner = ${this.owner}
        returning key
      ), ${recipientsCtes(result.instanceId, list, 'finished')}
      ${links}
    `,
    );
  }

  /** Lets a retry go on at once after an unknown failure (Temporal or the database down). */
  async release(key: string): Promise<void> {
    await this.db
      .update(claims)
      .set({ leaseUntil: sql`now() - interval '1 millisecond'` })
      .where(and(eq(claims.key, key), eq(claims.leaseOwner, this.owner)));
  }
}

/**
 * In one statement: reserves the longest-idle unreserved instance of the pool (`FOR UPDATE SKIP LOCKED`) and
 * records it on the claim's row — only while `owner` holds the key's lease, so a taker asks it first and a
 * holder that lost its lease reserves nothing. `lost`: the lease is gone; `null`: no idle instance.
 */
async function reserveAndRecord(
  db: Db,
  poolName: string,
  key: string,
  owner: string,
  tried: string[],
): Promise<string | null | 'lost'> {
  const notTried = tried.length
    ? sql`and i.id not in (${sql.join(
        tried.map((t) => sql`${t}`),
        sql`, `,
      )})`
    : sql``;
  const rows = await queryRows<{ held: number; id: string | null; recorded: number }>(
    db,
    sql`
    with held as (
      select c.key from claims c
      where c.key = ${key} and c.lease_owner = ${owner} and c.lease_until > now()
      for update
    ), picked as (
      select i.id from instances i
      where i.pool = ${poolName} and i.status = 'idle'
        and (i.reserved_until is null or i.reserved_until < now()) ${notTried}
        and exists (select 1 from held)
      order by i.idle_at asc
      limit 1
      for update skip locked
    ), reserved as (
      update instances set reserved_by = ${key}, reserved_until = ${reservationFromNow()}
      where id = (select id from picked)
      returning id
    ), recorded as (
      update claims set instance_id = (select id from reserved), attempts = attempts + 1, updated_at = now()
      where key in (select key from held) and exists (select 1 from reserved)
      returning key
    )
    select (select count(*) from held)::int as held, (select id from reserved) as id,
      (select count(*) from recorded)::int as recorded
  `,
  );
  const row = rows[0];
  if (!row || row.held === 0) return 'lost';
  return row.id ?? null;
}

/** An instance that refused a claim is free for the next one at once. */
async function releaseReservation(db: Db, instanceId: string, key: string): Promise<void> {
  await db
    .update(instances)
    .set({ reservedBy: null, reservedUntil: null })
    .where(and(eq(instances.id, instanceId), eq(instances.reservedBy, key)));
}

/** What a failed claim Update means for the search. */
type UpdateOutcome = 'refused' | 'provision-failed' | 'unanswered' | 'not-idle' | 'busy';

function classifyUpdateError(err: unknown): UpdateOutcome | null {
  if (err instanceof WorkflowUpdateFailedError) {
    const type = (err.cause as { type?: string } | undefined)?.type;
    if (type === ClaimFailure.refused) return 'refused';
    if (type === ClaimFailure.provisionFailed) return 'provision-failed';
    return 'not-idle'; // the validator refused: claimed, drained, destroying
  }
  // The instance may have accepted the claim (a starved or restarting worker answers late), or Temporal is
  // unreachable or restarting: ask it again, same Update id.
  if (err instanceof WorkflowUpdateRPCTimeoutOrCancelledError) return 'unanswered';
  if (err instanceof WorkflowNotFoundError) return 'not-idle';
  const e = err as { code?: number; name?: string };
  if (e?.code === GRPC_RESOURCE_EXHAUSTED || e?.name === 'ResourceExhausted') return 'busy';
  // The instance's workflow task is failing (a starved worker's task timed out): ask again, same Update id.
  if (isWorkflowTaskFailing(err)) return 'unanswered';
  if (isTemporalUnavailable(err)) return 'unanswered';
  return null;
}

export class ClaimService {
  private readonly ledger: ClaimLedger;

  constructor(
    private readonly deps: {
      db: Db;
      temporal: Client;
      secrets: InstanceSecrets;
      poolName: string;
      settings: ClaimSettings;
    },
  ) {
    this.ledger = new ClaimLedger(deps.db, deps.settings.anonymousPerMinute);
  }

  async claim(
    key: string,
    input: ClaimInput,
    maxWaitMs: number,
    onStep: StepListener = () => {},
    client: ClaimClient = { clientId: null, anonymous: false },
    requestId?: string,
  ): Promise<ClaimResponse> {
    const deadline = Date.now() + maxWaitMs;
    for (;;) {
      const prior = await this.acquire(key, fingerprintOf(input), deadline, client);
      if ('outcome' in prior) return this.respond(prior.outcome);
      try {
        return await this.run({
          key,
          input,
          client,
          deadline,
          askFirst: prior.instanceId,
          reserved: prior.reserved,
          onStep,
          requestId,
        });
      } catch (err) {
        // Another replica took the claim over while we stalled: wait for its outcome like any repeat.
        if (!(err instanceof LeaseLost)) throw err;
      }
    }
  }

  /** Runs the claim while holding its lease, and records the outcome. */
  private async run(attempt: Attempt): Promise<ClaimResponse> {
    const { key, input } = attempt;
    let leaseLost = false;
    const renew = setInterval(() => {
      this.ledger.renew(key).then(
        (held) => {
          if (!held) leaseLost = true;
        },
        () => {},
      );
    }, LEASE_MS / 3);
    try {
      const result = await this.search(attempt, () => leaseLost);
      // The allowed recipients go with the outcome (a repeat of a finished claim never rewrites them: an
      // operator may have changed them since). Always written, empty when the claim allows nobody, so nothing
      // can carry over to this instance's claimant. The links the answer carries are read in the same statement.
      const rows = await this.ledger.succeed(key, result, input.allowedRecipients, linkNamesOf(result));
      return responseOf(result, await this.deps.secrets.openRows(result.instanceId, rows));
    } catch (err) {
      if (err instanceof ApiError) {
        await this.ledger.fail(key, { statusCode: err.statusCode, code: err.code, message: err.message });
      } else if (!(err instanceof LeaseLost)) {
        await this.ledger.release(key).catch(() => {});
      }
      throw err;
    } finally {
      clearInterval(renew);
    }
  }

  /**
   * Takes the key's lease, or waits for whoever holds it. Returns the finished outcome of an earlier request,
   * or the instance an earlier holder was working on (to be asked again first).
   */
  private async acquire(
    key: string,
    fingerprint: string,
    deadline: number,
    client: ClaimClient,
  ): Promise<{ outcome: StoredOutcome } | { instanceId: string | null; reserved?: string | null }> {
    const inserted = await this.ledger.insert(key, fingerprint, client, this.deps.poolName);
    if (inserted) return { instanceId: null, reserved: inserted.reserved };
    for (;;) {
      const row = await this.ledger.read(key);
      if (!row) throw new ApiError(409, 'IDEMPOTENCY_CONFLICT', 'claim row vanished; retry');
      if (row.fingerprint !== fingerprint) {
        throw new ApiError(
          409,
          'IDEMPOTENCY_KEY_REUSED',
          'this Idempotency-Key was already used with a different request body',
        );
      }
      if (row.status === 'succeeded')
        return { outcome: { result: row.result as unknown as StoredOutcome['result'] } };
      const taken = await this.ledger.takeOver(key);
      if (taken) return { instanceId: taken.instanceId };
      // Someone is working on it right now: wait for its outcome (a bit past our own deadline, since the
      // holder may be finishing a provision it started before the deadline).
      if (Date.now() > deadline + 2 * LEASE_MS) {
        throw new ApiError(
          409,
          'CLAIM_IN_PROGRESS',
          'a claim with this Idempotency-Key is still in progress; retry',
          {
            'retry-after': '2',
          },
        );
      }
      await sleep(POLL_MS);
    }
  }

  /** Turns a stored outcome into the response: the bearer links come from the secret store. */
  private async respond(outcome: StoredOutcome): Promise<ClaimResponse> {
    if (!outcome.result) {
      const e = outcome.error!;
      throw new ApiError(e.statusCode, e.code, e.message);
    }
    const result = outcome.result;
    return responseOf(result, await this.deps.secrets.getMany(result.instanceId, linkNamesOf(result)));
  }

  /** Tries instances until one is bound, the request is refused, or the deadline passes. */
  private async search(attempt: Attempt, leaseLost: () => boolean): Promise<BoundResult> {
    const { key, input, client, deadline, askFirst, onStep, requestId } = attempt;
    let insertReserved = attempt.reserved;
    const request: ClaimRequest = {
      claimKey: key,
      agentName: input.agentName,
      instructions: input.instructions,
      templateSlug: input.templateSlug,
      hasJoinUrl: input.joinUrl !== null,
      ...(client.anonymous && this.deps.settings.anonymousIdleTtlMs > 0
        ? { conversationIdleTtlMs: this.deps.settings.anonymousIdleTtlMs }
        : {}),
      ...(requestId ? { requestId } : {}),
    };
    const tried: string[] = [];
    let lastProvisionError: string | null = null;
    let warm = true;
    // Until when an instance that has not answered is asked again; set on the first ask of each instance.
    let askUntil = 0;
    // Whether the instance being asked may hold our Update already (an earlier holder's, or one unanswered).
    let maybeAdmitted = askFirst !== null;
    // An earlier holder of this key may have reached an instance: ask it first (same Update id).
    let next = askFirst;
    onStep('reserve', 'active');
    for (;;) {
      // The deadline bounds the search; a provision already under way is never cut off.
      if (tried.length > 0 && Date.now() >= deadline && next === null) break;
      const reask = next !== null && tried.includes(next);
      const asked = next;
      next = null;
      if (leaseLost()) throw new LeaseLost();
      let instanceId: string | null;
      if (asked !== null) {
        instanceId = asked;
        if (!reask) await this.ledger.recordInstance(key, asked);
      } else if (insertReserved !== undefined) {
        // The ledger insert reserved it and recorded it on our new row already.
        instanceId = insertReserved;
        insertReserved = undefined;
      } else {
        // Reserved and recorded on our claim row in one round trip (fenced by our lease).
        const reserved = await reserveAndRecord(
          this.deps.db,
          this.deps.poolName,
          key,
          this.ledger.owner,
          tried,
        );
        if (reserved === 'lost') throw new LeaseLost();
        instanceId = reserved;
      }
      if (!instanceId) {
        if (Date.now() >= deadline) break;
        warm = false;
        await sleep(POLL_MS);
        continue;
      }
      if (!reask) {
        if (!tried.includes(instanceId)) tried.push(instanceId);
        if (input.joinUrl) await this.deps.secrets.put(instanceId, joinUrlSecretName(key), input.joinUrl);
        askUntil = Math.max(deadline, Date.now() + UPDATE_MIN_WAIT_MS);
        onStep('reserve', 'ok', instanceId);
        onStep('provision', 'active', instanceId);
      }
      try {
        // The RPC is bounded by `askUntil`: a worker that never answers ends in 503 CLAIM_PENDING, not a hang.
        const result = await this.deps.temporal.withDeadline(askUntil, () =>
          this.deps.temporal.workflow
            .getHandle(instanceWorkflowId(instanceId))
            .executeUpdate(claimUpdate, { updateId: key, args: [request] }),
        );
        onStep('provision', 'ok', instanceId);
        onStep('conversation', 'ok', result.conversationId ?? result.status);
        return { ...result, warm };
      } catch (err) {
        let outcome = classifyUpdateError(err);
        if (outcome === null) throw err;
        // Too many Updates in flight on the instance: another instance, unless it may hold ours already.
        if (outcome === 'busy') outcome = maybeAdmitted ? 'unanswered' : 'not-idle';
        if (input.joinUrl && outcome !== 'unanswered') {
          await this.deps.secrets.delete(instanceId, joinUrlSecretName(key));
        }
        if (outcome === 'refused') {
          await releaseReservation(this.deps.db, instanceId, key);
          const message = (err as WorkflowUpdateFailedError).cause?.message ?? 'the claim was refused';
          onStep('provision', 'fail', message);
          throw new ApiError(400, 'CLAIM_REFUSED', `the agent refused this claim: ${message}`);
        }
        if (outcome === 'provision-failed') {
          lastProvisionError = (err as WorkflowUpdateFailedError).cause?.message ?? 'provisioning failed';
          onStep('provision', 'fail', lastProvisionError);
        } else if (outcome === 'unanswered') {
          // Ask the same instance again with the same Update id until `askUntil`, never another one: it may
          // hold the claim already. Then 503: the ledger keeps the instance, so a retry of the key asks it
          // again first and gets the binding.
          maybeAdmitted = true;
          if (Date.now() + REASK_MS >= askUntil) {
            throw new ApiError(
              503,
              'CLAIM_PENDING',
              'the claim is still being processed; retry with the same Idempotency-Key',
              { 'retry-after': '5' },
            );
          }
          await sleep(REASK_MS);
          if (leaseLost()) throw new LeaseLost();
          next = instanceId;
          continue;
        }
        maybeAdmitted = false;
        onStep('reserve', 'active');
      }
    }
    if (lastProvisionError) {
      throw new ApiError(
        502,
        'PROVISION_FAILED',
        `provisioning failed on every instance tried: ${lastProvisionError}`,
      );
    }
    throw new ApiError(503, 'NO_IDLE_INSTANCE', 'no idle agent is available right now; retry shortly', {
      'retry-after': '5',
    });
  }
}
