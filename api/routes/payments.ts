/**
 * Payments on an instance's behalf, authenticated by the instance's own token: the pool's one Bankr account
 * pays (its key never leaves the pool), in USDC on Base, within a per-instance cap over any rolling 24 hours.
 * A transfer above PAYMENTS_CONFIRM_ABOVE_USD is held until the one-time code its answer carries is said back
 * in the conversation. The `payments` table is the ledger the cap is counted on, under one lock per instance
 * (so concurrent requests on any replica cannot overrun it); every step is also an audit event (amount,
 * asset, destination; never the key or a code). A transfer whose answer was lost is `unknown`: it keeps
 * counting against the cap and is never resent (Bankr documents no idempotency key).
 */
import { createHash, randomInt, randomUUID, timingSafeEqual } from 'node:crypto';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { and, eq, gt, inArray, lt, sql } from 'drizzle-orm';
import {
  ADDRESS_PATTERN,
  AMOUNT_USD_PATTERN,
  CONFIRMATION_CODE_PATTERN,
  formatMicros,
  PAYMENT_ID_PATTERN,
  PAYMENT_STATUSES,
  type PaymentStatus,
  type PaymentView,
  parseAmountMicros,
} from '../../contracts/payments';
import {
  ProviderError,
  ProviderRateLimitedError,
  ProviderUnavailableError,
} from '../../contracts/provider-errors';
import type { PaymentsProvider } from '../../contracts/resources';
import type { Db } from '../../drizzle/client';
import { instanceEvents, payments } from '../../drizzle/schema';
import { instanceGuard } from '../auth';
import type { ApiContext } from '../context';
import { ApiError } from '../errors';
import { checksumHolds } from '../eth-address';
import { findInstance } from '../queries';
import { errorResponses, Nullable } from '../schemas';

const DAY_MS = 24 * 3600_000;
const HOUR_MS = 3600_000;
/** Transfer requests one instance may make per rolling hour, refused ones included (bounds the ledger). */
export const PAYMENT_REQUESTS_PER_HOUR = 30;
/** How long a held transfer's code can be said back, and how many wrong codes end it. */
export const CONFIRMATION_TTL_MS = 15 * 60_000;
export const CONFIRMATION_ATTEMPTS = 5;
/** What a client is told to wait when Bankr is down without saying how long. */
const BANKR_RETRY_AFTER_S = 10;
/** Rows that hold part of the cap: money that moved, may have moved, or will once confirmed. */
const COUNTED: PaymentStatus[] = ['pending', 'sending', 'sent', 'unknown'];

export const TransferBody = Type.Object(
  {
    to: Type.String({ pattern: ADDRESS_PATTERN, description: 'the recipient: one 0x address on Base' }),
    amountUsd: Type.String({
      pattern: AMOUNT_USD_PATTERN,
      maxLength: 14,
      description: 'dollars, paid as USDC: a decimal string with at most 6 decimals, e.g. "12.50"',
    }),
  },
  { additionalProperties: false },
);
const ConfirmBody = Type.Object(
  { code: Type.String({ pattern: CONFIRMATION_CODE_PATTERN, description: 'the six digits said back' }) },
  { additionalProperties: false },
);
const PaymentParams = Type.Object({ id: Type.String({ pattern: PAYMENT_ID_PATTERN }) });

const Payment = Type.Object({
  id: Type.String(),
  status: Type.Unsafe<PaymentStatus>({ type: 'string', enum: [...PAYMENT_STATUSES] }),
  amountUsd: Type.String(),
  to: Type.String(),
  txHash: Nullable(Type.String()),
  expiresAt: Nullable(Type.String({ format: 'date-time' })),
  confirmationCode: Type.Optional(Type.String()),
  message: Type.String(),
});
const Allowance = Type.Object({
  asset: Type.Literal('USDC'),
  chain: Type.Literal('base'),
  dailyCapUsd: Type.String(),
  spentUsd: Type.String(),
  remainingUsd: Type.String(),
  confirmAboveUsd: Type.String(),
  wallet: Type.Unknown({ description: "Bankr's portfolio answer for the pool's wallet, as it came" }),
});

type Row = typeof payments.$inferSelect;
type Tx = Parameters<Parameters<Db['transaction']>[0]>[0];

const codeHash = (paymentId: string, code: string) =>
  createHash('sha256').update(`${paymentId}:${code}`).digest('hex');
const short = (address: string) => `${address.slice(0, 6)}…${address.slice(-4)}`;

/** A ledger row as the routes answer it (never its code hash). */
function view(row: Row, message: string, code?: string): PaymentView {
  return {
    id: row.id,
    status: row.status as PaymentStatus,
    amountUsd: formatMicros(row.amountMicros),
    to: row.destination,
    txHash: row.txHash,
    expiresAt: row.status === 'pending' ? (row.confirmExpiresAt?.toISOString() ?? null) : null,
    ...(code ? { confirmationCode: code } : {}),
    message,
  };
}

/** One audit event per step of a payment: what, how much, to whom; never the key or a code. */
function audit(db: Db | Tx, row: Row, action: string, reason: string, extra: Record<string, unknown> = {}) {
  const amount = formatMicros(row.amountMicros);
  return db.insert(instanceEvents).values({
    instanceId: row.instanceId,
    eventKey: `payment-${action}-${row.id}`,
    fromStatus: 'claimed',
    toStatus: 'claimed',
    actor: 'instance',
    at: new Date(),
    reason: `payment of ${amount} ${row.asset} to ${short(row.destination)} ${reason}`,
    details: {
      paymentId: row.id,
      action,
      amountUsd: amount,
      asset: row.asset,
      chain: row.chain,
      destination: row.destination,
      ...extra,
    },
  });
}

export const paymentRoutes: FastifyPluginAsyncTypebox<ApiContext> = async (app, ctx) => {
  const { db, config } = ctx;
  // Sums of amounts are bigint (the column is bigint): the limits too.
  const dailyCapMicros = BigInt(config.payments.dailyCapMicros);
  const confirmAboveMicros = BigInt(config.payments.confirmAboveMicros);
  app.decorateRequest('instanceId', null);
  app.addHook('onRequest', instanceGuard(ctx.secrets));

  function enabled(): PaymentsProvider {
    if (!ctx.payments)
      throw new ApiError(
        409,
        'PAYMENTS_NOT_ENABLED',
        'payments are not configured on this pool (BANKR_API_KEY is not set)',
      );
    return ctx.payments;
  }

  async function requireClaimed(instanceId: string): Promise<void> {
    const row = await findInstance(db, instanceId);
    if (row?.status !== 'claimed')
      throw new ApiError(
        409,
        'NOT_CLAIMED',
        `instance is ${row?.status ?? 'unknown'}; only a claimed instance may make payments`,
      );
  }

  /** Held transfers past their deadline stop holding the cap (done under the instance's lock). */
  async function expireStale(tx: Tx, instanceId: string, now: Date): Promise<void> {
    const stale = await tx
      .update(payments)
      .set({ status: 'expired', confirmCodeHash: null, decidedAt: now, reason: 'not confirmed in time' })
      .where(
        and(
          eq(payments.instanceId, instanceId),
          eq(payments.status, 'pending'),
          lt(payments.confirmExpiresAt, now),
        ),
      )
      .returning();
    for (const row of stale) await audit(tx, row, 'expired', 'expired: its code was not said back in time');
  }

  /** What counts against the cap now: the last 24 hours of held, in-flight, sent and unknown payments. */
  async function spentMicros(tx: Db | Tx, instanceId: string, now: Date): Promise<bigint> {
    const [row] = await tx
      .select({ spent: sql<string>`coalesce(sum(${payments.amountMicros}), 0)::text` })
      .from(payments)
      .where(
        and(
          eq(payments.instanceId, instanceId),
          gt(payments.createdAt, new Date(now.getTime() - DAY_MS)),
          inArray(payments.status, COUNTED),
        ),
      );
    return BigInt(row?.spent ?? '0');
  }

  /** Serializes every ledger decision of one instance (across API replicas: the lock is Postgres's). */
  const lock = (tx: Tx, instanceId: string) =>
    tx.execute(sql`select pg_advisory_xact_lock(hashtext(${`payments:${instanceId}`}))`);

  /**
   * Sends a `sending` row through Bankr and records the outcome (row and audit event in one transaction).
   * Bankr's refusals and outages (it answered: nothing moved) end `failed` and free the cap; a lost answer
   * ends `unknown` and keeps holding it. Throws the API error to answer when it was not sent.
   */
  async function send(bankr: PaymentsProvider, row: Row, instanceId: string): Promise<Row> {
    const settle = async (set: Partial<Row>, action: string, reason: string, extra = {}) => {
      const changes = { ...set, decidedAt: new Date() };
      const updated = { ...row, ...changes };
      await db
        .transaction(async (tx) => {
          await tx.update(payments).set(changes).where(eq(payments.id, row.id));
          await audit(tx, updated, action, reason, extra);
        })
        // After Bankr answered, a database hiccup must not become an error the agent would retry.
        .catch((err: Error) =>
          app.log.error({ paymentId: row.id, error: err.message }, 'could not record a payment outcome'),
        );
      return updated;
    };
    let txHash: string | null;
    try {
      ({ txHash } = await bankr.transferUsdc(row.destination, formatMicros(row.amountMicros)));
    } catch (err) {
      const answered = err instanceof ProviderError && err.status !== null;
      const status = err instanceof ProviderError ? err.status : null;
      app.log.warn({ instanceId, paymentId: row.id, status, error: (err as Error).name }, 'payment failed');
      if (err instanceof ProviderRateLimitedError || status === 503) {
        const retryAfter =
          err instanceof ProviderRateLimitedError
            ? Math.max(1, Math.ceil(err.retryAfterMs / 1000))
            : BANKR_RETRY_AFTER_S;
        await settle(
          { status: 'failed', reason: 'Bankr unavailable' },
          'failed',
          'failed: Bankr unavailable',
        );
        throw new ApiError(
          503,
          'PAYMENTS_UNAVAILABLE',
          `the payments provider is unavailable; nothing was sent; retry in ${retryAfter} s`,
          { 'retry-after': String(retryAfter) },
        );
      }
      if (answered && status !== null && status >= 400 && status < 500 && status !== 408) {
        // Bankr's own refusal (its spend limits, allowed recipients, balance, a paused wallet): its reason
        // is short and ours to show (it names no key); 401 is the pool's key, not the agent's request.
        const detail = status === 401 ? 'the pool’s payments key was refused' : (err as ProviderError).detail;
        const reason = (detail ?? `Bankr answered ${status}`).slice(0, 200);
        await settle({ status: 'failed', reason }, 'failed', `refused by Bankr: ${reason}`, {
          bankrStatus: status,
        });
        if (status === 401)
          throw new ApiError(
            502,
            'PROVIDER_FAILED',
            'the payments provider refused the pool; nothing was sent',
          );
        throw new ApiError(422, 'PAYMENT_REJECTED', `the payments provider refused this transfer: ${reason}`);
      }
      // No answer, or one that does not say nothing happened (500, 502, 504, a timeout, a dropped
      // connection): the transfer may have gone out. Never resent; an operator settles it on-chain.
      await settle(
        {
          status: 'unknown',
          reason: err instanceof ProviderUnavailableError ? 'no answer from Bankr' : 'error',
        },
        'unknown',
        'outcome unknown: Bankr did not answer; not resent (check the wallet on-chain)',
      );
      throw new ApiError(
        502,
        'PAYMENT_OUTCOME_UNKNOWN',
        'the payments provider did not answer: the transfer may or may not have gone out. Do not send it ' +
          'again; it stays counted against your daily allowance until an operator checks it',
      );
    }
    return settle({ status: 'sent', txHash }, 'sent', `sent${txHash ? ` (tx ${txHash})` : ''}`, {
      txHash,
    });
  }

  app.get(
    '/api/pool/self/payments',
    {
      schema: {
        tags: ['instance'],
        description:
          "This instance's allowance (cap over any 24 hours, what it holds now, the confirmation threshold) and the pool wallet's balances as Bankr reports them.",
        response: { 200: Allowance, ...errorResponses(401, 403, 409, 503) },
      },
    },
    async (request) => {
      const id = request.instanceId as string;
      await requireClaimed(id);
      const bankr = enabled();
      let wallet: unknown;
      try {
        wallet = await bankr.portfolio();
      } catch (err) {
        app.log.warn({ instanceId: id, error: (err as Error).name }, 'portfolio read failed');
        const retryAfter =
          err instanceof ProviderRateLimitedError
            ? Math.max(1, Math.ceil(err.retryAfterMs / 1000))
            : BANKR_RETRY_AFTER_S;
        throw new ApiError(503, 'PAYMENTS_UNAVAILABLE', 'the payments provider is unavailable; retry later', {
          'retry-after': String(retryAfter),
        });
      }
      const spent = await spentMicros(db, id, new Date());
      const remaining = spent >= dailyCapMicros ? 0n : dailyCapMicros - spent;
      return {
        asset: 'USDC' as const,
        chain: 'base' as const,
        dailyCapUsd: formatMicros(dailyCapMicros),
        spentUsd: formatMicros(spent),
        remainingUsd: formatMicros(remaining),
        confirmAboveUsd: formatMicros(confirmAboveMicros),
        wallet,
      };
    },
  );

  app.post(
    '/api/pool/self/payments/transfers',
    {
      schema: {
        tags: ['instance'],
        description:
          'Pays `amountUsd` in USDC on Base to `to` from the pool’s wallet, within this instance’s daily cap (else 422 OVER_DAILY_CAP, nothing sent). Above the confirmation threshold it is held (202, `pending`, with a one-time `confirmationCode` to post in the conversation) until confirmed.',
        body: TransferBody,
        response: {
          200: Payment,
          202: Payment,
          ...errorResponses(400, 401, 403, 409, 422, 429, 502, 503),
        },
      },
    },
    async (request, reply) => {
      const id = request.instanceId as string;
      await requireClaimed(id);
      const bankr = enabled();
      const { to, amountUsd } = request.body;
      const amount = parseAmountMicros(amountUsd);
      if (amount === null || amount <= 0n)
        throw new ApiError(400, 'BAD_REQUEST', 'invalid body: amountUsd must be more than 0');
      if (!checksumHolds(to))
        throw new ApiError(
          400,
          'BAD_REQUEST',
          'invalid body: to fails its EIP-55 checksum (a mistyped address?)',
        );
      if (/^0x0{40}$/.test(to))
        throw new ApiError(400, 'BAD_REQUEST', 'invalid body: to is the zero address');

      const held = amount > confirmAboveMicros;
      const code = held ? String(randomInt(0, 1_000_000)).padStart(6, '0') : null;
      const decided = await db.transaction(async (tx) => {
        await lock(tx, id);
        const now = new Date();
        await expireStale(tx, id, now);
        const [recent] = await tx
          .select({ n: sql<number>`count(*)::int` })
          .from(payments)
          .where(and(eq(payments.instanceId, id), gt(payments.createdAt, new Date(now.getTime() - HOUR_MS))));
        if ((recent?.n ?? 0) >= PAYMENT_REQUESTS_PER_HOUR) return { limited: true as const };
        const spent = await spentMicros(tx, id, now);
        const paymentId = randomUUID();
        const over = spent + amount > dailyCapMicros;
        const status: PaymentStatus = over ? 'refused' : held ? 'pending' : 'sending';
        const [row] = await tx
          .insert(payments)
          .values({
            id: paymentId,
            instanceId: id,
            asset: 'USDC',
            chain: 'base',
            amountMicros: amount,
            destination: to.toLowerCase(),
            status,
            confirmCodeHash: code && !over ? codeHash(paymentId, code) : null,
            confirmExpiresAt: held && !over ? new Date(now.getTime() + CONFIRMATION_TTL_MS) : null,
            reason: over ? 'over the daily cap' : null,
            createdAt: now,
            decidedAt: over ? now : null,
          })
          .returning();
        const inserted = row as Row;
        await audit(tx, inserted, 'requested', 'requested');
        const remaining = spent >= dailyCapMicros ? 0n : dailyCapMicros - spent;
        if (over) {
          await audit(tx, inserted, 'refused', 'refused: over the daily cap', {
            dailyCapUsd: formatMicros(dailyCapMicros),
            remainingUsd: formatMicros(remaining),
          });
          return { limited: false as const, row: inserted, remaining };
        }
        if (held) await audit(tx, inserted, 'held', 'held until its code is said back in the conversation');
        return { limited: false as const, row: inserted, remaining };
      });
      if (decided.limited)
        throw new ApiError(
          429,
          'RATE_LIMITED',
          `this instance may ask for at most ${PAYMENT_REQUESTS_PER_HOUR} payments per hour`,
          { 'retry-after': '60' },
        );
      const { row, remaining } = decided;
      if (row.status === 'refused')
        throw new ApiError(
          422,
          'OVER_DAILY_CAP',
          `this payment would exceed this agent's daily allowance of ${formatMicros(dailyCapMicros)} USD ` +
            `(${formatMicros(remaining)} USD left in the last 24 hours); nothing was sent`,
        );
      if (row.status === 'pending')
        return reply
          .code(202)
          .send(
            view(
              row,
              `held: post the code ${code} in the conversation and ask a member to say it back; then confirm ` +
                `with that code before ${row.confirmExpiresAt?.toISOString()}`,
              code as string,
            ),
          );
      const sent = await send(bankr, row, id);
      return reply.code(200).send(view(sent, 'sent'));
    },
  );

  app.post(
    '/api/pool/self/payments/transfers/:id/confirm',
    {
      schema: {
        tags: ['instance'],
        description:
          'Sends a held transfer of this instance once its one-time code was said back in the conversation. A wrong code answers 403 CODE_WRONG; after 5 wrong codes, or past its deadline, the transfer ends (409).',
        params: PaymentParams,
        body: ConfirmBody,
        response: { 200: Payment, ...errorResponses(400, 401, 403, 404, 409, 422, 502, 503) },
      },
    },
    async (request, reply) => {
      const id = request.instanceId as string;
      await requireClaimed(id);
      const bankr = enabled();
      const { code } = request.body;
      const decided = await db.transaction(async (tx) => {
        await lock(tx, id);
        const now = new Date();
        await expireStale(tx, id, now);
        const [row] = await tx
          .select()
          .from(payments)
          .where(and(eq(payments.id, request.params.id), eq(payments.instanceId, id)));
        if (!row) return { outcome: 'missing' as const };
        if (row.status !== 'pending' || !row.confirmCodeHash) return { outcome: 'not-pending' as const, row };
        const expected = Buffer.from(row.confirmCodeHash, 'hex');
        const given = Buffer.from(codeHash(row.id, code), 'hex');
        if (!timingSafeEqual(expected, given)) {
          const attempts = row.confirmAttempts + 1;
          const spent = attempts >= CONFIRMATION_ATTEMPTS;
          const [updated] = await tx
            .update(payments)
            .set(
              spent
                ? {
                    confirmAttempts: attempts,
                    status: 'refused',
                    confirmCodeHash: null,
                    decidedAt: now,
                    reason: 'too many wrong codes',
                  }
                : { confirmAttempts: attempts },
            )
            .where(eq(payments.id, row.id))
            .returning();
          await audit(
            tx,
            updated as Row,
            `wrong-code-${attempts}`,
            `confirmation refused: wrong code (${attempts} of ${CONFIRMATION_ATTEMPTS})`,
          );
          if (spent) await audit(tx, updated as Row, 'refused', 'refused: too many wrong codes');
          return { outcome: 'wrong' as const, left: CONFIRMATION_ATTEMPTS - attempts };
        }
        const [updated] = await tx
          .update(payments)
          .set({ status: 'sending', confirmCodeHash: null })
          .where(eq(payments.id, row.id))
          .returning();
        await audit(tx, updated as Row, 'confirmed', 'confirmed with its code');
        return { outcome: 'confirmed' as const, row: updated as Row };
      });
      if (decided.outcome === 'missing')
        throw new ApiError(404, 'PAYMENT_NOT_FOUND', 'this instance has no such payment');
      if (decided.outcome === 'not-pending')
        throw new ApiError(
          409,
          'PAYMENT_NOT_PENDING',
          `this payment is ${decided.row.status}, not waiting for a code; nothing was sent`,
        );
      if (decided.outcome === 'wrong')
        throw new ApiError(
          403,
          'CODE_WRONG',
          decided.left > 0
            ? `that is not this payment's code (${decided.left} attempts left); nothing was sent`
            : "that is not this payment's code, and it was the last attempt: the payment is cancelled",
        );
      const sent = await send(bankr, decided.row, id);
      return reply.code(200).send(view(sent, 'sent'));
    },
  );
};
