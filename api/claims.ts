/**
 * Claiming an instance, idempotently, from any API replica.
 *
 * 1. The `claims` ledger holds one row per Idempotency-Key: the first request inserts it and holds a lease
 *    (renewed while it works); concurrent or later requests with the same key wait for its outcome, and take
 *    over once the lease has run out (the replica died). A different body with a used key is a 409.
 * 2. Candidates come from the read model: an idle row is reserved atomically (`FOR UPDATE SKIP LOCKED`), so
 *    concurrent claims spread over distinct instances. The instance workflow's claim Update is the arbiter:
 *    its synchronous validator admits only `idle`, and the Update id is the Idempotency-Key, so re-asking the
 *    same instance after a crash returns the first outcome instead of claiming twice.
 * 3. No idle instance: wait for one until the caller's deadline (503 + Retry-After). Provisioning failed: the
 *    instance is destroyed by its workflow and the claim moves on to another one (502 if none succeeds).
 */
import { createHash, randomUUID } from 'node:crypto';
import {
  type Client,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  WorkflowUpdateRPCTimeoutOrCancelledError,
} from '@temporalio/client';
import { and, asc, eq, isNull, lt, notInArray, or, sql } from 'drizzle-orm';
import { CHAT_URL } from '../activities';
import { instanceWorkflowId } from '../activities/reconcile';
import type { SecretStore } from '../activities/secret-store';
import type { Db } from '../drizzle/client';
import { claims, instances } from '../drizzle/schema';
import { claimUpdate } from '../workflows/messages';
import type { ClaimRequest, ClaimResult } from '../workflows/types';
import { ApiError } from './errors';

export interface ClaimInput {
  agentName: string;
  instructions: string;
  templateSlug: string | null;
  joinUrl: string | null;
}

export interface ClaimResponse {
  instanceId: string;
  agentName: string;
  conversationId: string | null;
  inviteUrl: string | null;
  joined: boolean;
  warm: boolean;
  status: ClaimResult['status'];
  chatUrl?: string;
}

export type ClaimStep = 'reserve' | 'provision' | 'conversation';
export type StepListener = (step: ClaimStep, status: 'active' | 'ok' | 'fail', detail?: string) => void;

interface StoredOutcome {
  result?: Omit<ClaimResponse, 'chatUrl'> & { hasChatUrl: boolean };
  error?: { statusCode: number; code: string; message: string };
}

const LEASE_MS = 15_000;
const RESERVATION_MS = 30_000;
const POLL_MS = 100;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function fingerprintOf(input: ClaimInput): string {
  return createHash('sha256')
    .update(JSON.stringify([input.agentName, input.instructions, input.templateSlug, input.joinUrl]))
    .digest('hex');
}

export class ClaimService {
  /** Identifies this API replica as a lease owner. */
  private readonly owner = `api-${randomUUID()}`;

  constructor(private readonly deps: { db: Db; temporal: Client; secrets: SecretStore; poolName: string }) {}

  async claim(
    key: string,
    input: ClaimInput,
    maxWaitMs: number,
    onStep: StepListener = () => {},
  ): Promise<ClaimResponse> {
    const fingerprint = fingerprintOf(input);
    const deadline = Date.now() + maxWaitMs;
    const prior = await this.acquire(key, fingerprint, deadline);
    if ('outcome' in prior) return this.replay(prior.outcome);

    // We hold the lease: renew it while we work so no other replica starts the same claim.
    const renew = setInterval(() => {
      this.deps.db
        .update(claims)
        .set({ leaseUntil: new Date(Date.now() + LEASE_MS), updatedAt: new Date() })
        .where(and(eq(claims.key, key), eq(claims.leaseOwner, this.owner)))
        .catch(() => {});
    }, LEASE_MS / 3);
    try {
      const outcome = await this.attempt(key, input, deadline, prior.instanceId, onStep);
      await this.finish(key, outcome);
      return this.replay(outcome);
    } catch (err) {
      if (err instanceof ApiError) {
        await this.finish(key, {
          error: { statusCode: err.statusCode, code: err.code, message: err.message },
        });
      } else {
        // Unknown failure (Temporal or the database down): release the lease so a retry can go on at once.
        await this.deps.db
          .update(claims)
          .set({ leaseUntil: new Date(0) })
          .where(and(eq(claims.key, key), eq(claims.leaseOwner, this.owner)))
          .catch(() => {});
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
  ): Promise<{ outcome: StoredOutcome } | { instanceId: string | null }> {
    const { db } = this.deps;
    const leaseUntil = () => new Date(Date.now() + LEASE_MS);
    const inserted = await db
      .insert(claims)
      .values({ key, fingerprint, status: 'pending', leaseOwner: this.owner, leaseUntil: leaseUntil() })
      .onConflictDoNothing()
      .returning({ key: claims.key });
    if (inserted.length > 0) return { instanceId: null };

    for (;;) {
      const [row] = await db.select().from(claims).where(eq(claims.key, key));
      if (!row) throw new ApiError(409, 'IDEMPOTENCY_CONFLICT', 'claim row vanished; retry');
      if (row.fingerprint !== fingerprint) {
        throw new ApiError(
          409,
          'IDEMPOTENCY_KEY_REUSED',
          'this Idempotency-Key was already used with a different request body',
        );
      }
      if (row.status === 'succeeded') return { outcome: { result: row.result as StoredOutcome['result'] } };
      // A pending claim whose holder went away, or one that failed earlier: this request takes it over.
      const taken = await db
        .update(claims)
        .set({
          status: 'pending',
          leaseOwner: this.owner,
          leaseUntil: leaseUntil(),
          error: null,
          updatedAt: new Date(),
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
      if (taken[0]) return { instanceId: taken[0].instanceId };
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

  private async finish(key: string, outcome: StoredOutcome) {
    await this.deps.db
      .update(claims)
      .set(
        outcome.result
          ? {
              status: 'succeeded',
              result: outcome.result,
              instanceId: outcome.result.instanceId,
              leaseUntil: null,
              updatedAt: new Date(),
            }
          : { status: 'failed', error: outcome.error, leaseUntil: null, updatedAt: new Date() },
      )
      .where(and(eq(claims.key, key), eq(claims.leaseOwner, this.owner)));
  }

  /** Turns a stored outcome into the response (the chat link is fetched from the secret store). */
  private async replay(outcome: StoredOutcome): Promise<ClaimResponse> {
    if (!outcome.result) {
      const e = outcome.error!;
      throw new ApiError(e.statusCode, e.code, e.message);
    }
    const { hasChatUrl, ...result } = outcome.result;
    if (!hasChatUrl) return result;
    const chatUrl = await this.deps.secrets.get(result.instanceId, CHAT_URL);
    return chatUrl ? { ...result, chatUrl } : result;
  }

  private async attempt(
    key: string,
    input: ClaimInput,
    deadline: number,
    previousInstance: string | null,
    onStep: StepListener,
  ): Promise<StoredOutcome> {
    const request: ClaimRequest = { claimKey: key, ...input };
    const tried: string[] = [];
    let lastProvisionError: string | null = null;
    let warm = true;
    onStep('reserve', 'active');
    let unanswered = 0;
    for (;;) {
      // The deadline bounds the search; a provision already under way is never cut off.
      if (tried.length > 0 && Date.now() >= deadline && previousInstance === null) break;
      // An earlier holder of this key may have reached an instance: ask it first (same Update id).
      const instanceId = previousInstance ?? (await this.reserve(key, tried));
      previousInstance = null;
      if (!instanceId) {
        if (Date.now() >= deadline) break;
        warm = false;
        await sleep(POLL_MS);
        continue;
      }
      tried.push(instanceId);
      await this.deps.db
        .update(claims)
        .set({ instanceId, attempts: sql`${claims.attempts} + 1`, updatedAt: new Date() })
        .where(eq(claims.key, key));
      onStep('reserve', 'ok', instanceId);
      onStep('provision', 'active', instanceId);
      try {
        const result = await this.deps.temporal.workflow
          .getHandle(instanceWorkflowId(instanceId))
          .executeUpdate(claimUpdate, { updateId: key, args: [request] });
        onStep('provision', 'ok', instanceId);
        onStep('conversation', 'ok', result.conversationId ?? result.status);
        const { hasChatUrl, status, ...rest } = result;
        return { result: { ...rest, status, warm, hasChatUrl } };
      } catch (err) {
        if (
          err instanceof WorkflowUpdateFailedError &&
          (err.cause as { type?: string })?.type === 'ProvisionFailed'
        ) {
          lastProvisionError = err.cause?.message ?? 'provisioning failed';
          onStep('provision', 'fail', lastProvisionError);
          onStep('reserve', 'active');
          continue; // the workflow destroys that instance; try another within the deadline
        }
        if (err instanceof WorkflowUpdateRPCTimeoutOrCancelledError) {
          // The instance may have accepted the claim (a starved or restarting worker answers late): ask the
          // same instance again with the same Update id, whatever the deadline, so the claim is never half-bound.
          unanswered += 1;
          if (unanswered > 5) {
            throw new ApiError(
              503,
              'CLAIM_PENDING',
              'the claim is still being processed; retry with the same Idempotency-Key',
              {
                'retry-after': '5',
              },
            );
          }
          previousInstance = instanceId;
          continue;
        }
        if (
          err instanceof WorkflowUpdateFailedError ||
          err instanceof WorkflowNotFoundError ||
          isOverloaded(err)
        ) {
          onStep('reserve', 'active');
          continue; // not idle after all (claimed, drained, gone): pick another
        }
        throw err;
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

  /** Atomically reserves the longest-idle unreserved instance of the pool; null when there is none. */
  private async reserve(key: string, tried: string[]): Promise<string | null> {
    const { db, poolName } = this.deps;
    const candidate = db
      .select({ id: instances.id })
      .from(instances)
      .where(
        and(
          eq(instances.pool, poolName),
          eq(instances.status, 'idle'),
          or(isNull(instances.reservedUntil), lt(instances.reservedUntil, sql`now()`)),
          tried.length ? notInArray(instances.id, tried) : undefined,
        ),
      )
      .orderBy(asc(instances.idleAt))
      .limit(1)
      .for('update', { skipLocked: true });
    const rows = await db
      .update(instances)
      .set({ reservedBy: key, reservedUntil: new Date(Date.now() + RESERVATION_MS) })
      .where(eq(instances.id, sql`(${candidate})`))
      .returning({ id: instances.id });
    return rows[0]?.id ?? null;
  }
}

/** Temporal refuses more than 10 in-flight Updates per workflow: another instance will do. */
function isOverloaded(err: unknown): boolean {
  const e = err as { code?: number; name?: string };
  return e?.code === 8 || e?.name === 'ResourceExhausted';
}
