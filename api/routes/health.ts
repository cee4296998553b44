/**
 * Probes (no auth, nothing secret in a body): `GET /healthz` is liveness — the process is up and serving, no
 * dependency asked; `GET /readyz` is readiness — the database answers a cheap query, Temporal answers a cheap
 * call, both within a short deadline, and the API is not draining (SIGTERM). Not ready is a 503 naming what
 * failed, with a Retry-After; never a 500.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { type Static, Type } from '@sinclair/typebox';
import type { Client } from '@temporalio/client';
import { sql } from 'drizzle-orm';
import type { Db } from '../../drizzle/client';

/** What the process tells its probes (draining: set when it starts draining), and what they leave behind. */
export interface ApiLifecycle {
  draining: boolean;
  /** When a Temporal check last failed: the client's gRPC retries may still be pending for a moment. */
  temporalFailedAt?: number;
}

/**
 * How long after a failed Temporal check the client's retry interceptor may still start an attempt (its
 * backoff within the 2 s deadline leaves at most ~1.7 s): closing the connection before then would make that
 * attempt throw in a timer (`Channel has been shut down`).
 */
const RETRY_TAIL_MS = 3_000;

/** Resolves once no retry of a failed Temporal check can be pending, so the connection may be closed. */
export async function checksSettled(lifecycle: ApiLifecycle): Promise<void> {
  const wait = (lifecycle.temporalFailedAt ?? 0) + RETRY_TAIL_MS - Date.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
}

/** How long one readiness check may take before it counts as failed. */
export const READY_CHECK_TIMEOUT_MS = 2_000;
/** Retry-After (seconds) of a 503 from /readyz. */
const READY_RETRY_AFTER_S = 5;

const ReadinessCheck = Type.Union([
  Type.Literal('database'),
  Type.Literal('temporal'),
  Type.Literal('draining'),
]);

export const Liveness = Type.Object({ ok: Type.Literal(true) }, { description: 'the process is up' });
const readiness = (description: string) =>
  Type.Object(
    {
      ok: Type.Boolean(),
      failing: Type.Array(ReadinessCheck, {
        description: 'the checks that failed: database, temporal (no answer within 2 s), draining (SIGTERM)',
      }),
    },
    { description },
  );
export const Ready = readiness('ready: every check passed (`failing` is empty)');
export const NotReady = readiness('not ready: `failing` names why; Retry-After says when to ask again');

/** Rejects after `ms`: a dependency that hangs is as unready as one that refuses. */
function within<T>(ms: number, work: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    work(),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Temporal answers a cheap call (the one the SDK makes when it connects) within `ms`. */
export function temporalReachable(
  connection: Pick<Client['connection'], 'withDeadline' | 'workflowService'>,
  ms = READY_CHECK_TIMEOUT_MS,
): Promise<unknown> {
  return within(ms, () =>
    connection.withDeadline(Date.now() + ms, () => connection.workflowService.getSystemInfo({})),
  );
}

export const healthRoutes: FastifyPluginAsyncTypebox<{
  db: Db;
  temporal: Client;
  lifecycle: ApiLifecycle;
}> = async (app, { db, temporal, lifecycle }) => {
  app.get(
    '/healthz',
    {
      schema: {
        tags: ['probes'],
        description: 'Liveness: the process is up. Checks no dependency (that is /readyz).',
        response: { 200: Liveness },
      },
    },
    async () => ({ ok: true as const }),
  );

  app.get(
    '/readyz',
    {
      schema: {
        tags: ['probes'],
        description:
          'Readiness: the database and Temporal answer within 2 s and the API is not draining; else 503 ' +
          'naming the failing checks, with Retry-After.',
        response: { 200: Ready, 503: NotReady },
      },
    },
    async (_request, reply) => {
      const failing: Array<Static<typeof ReadinessCheck>> = [];
      if (lifecycle.draining) failing.push('draining');
      const [database, temporalOk] = await Promise.allSettled([
        within(READY_CHECK_TIMEOUT_MS, () => db.execute(sql`select 1`)),
        temporalReachable(temporal.connection),
      ]);
      if (database.status === 'rejected') failing.push('database');
      if (temporalOk.status === 'rejected') {
        failing.push('temporal');
        lifecycle.temporalFailedAt = Date.now();
      }
      // Draining may have begun while the checks ran.
      if (lifecycle.draining && !failing.includes('draining')) failing.unshift('draining');
      if (failing.length === 0) return { ok: true, failing };
      return reply.code(503).header('retry-after', String(READY_RETRY_AFTER_S)).send({ ok: false, failing });
    },
  );
};
