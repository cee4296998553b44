/** Pool steering (API key): replenish, drain, set target, run the sweeper now. All go through the pool workflow. */

import { randomUUID } from 'node:crypto';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { poolWorkflowId, requestedReconcileWorkflowId } from '../../contracts/workflow-ids';
import { ensureHealthSweeper } from '../../workers/ensure-pool';
import { drainUpdate, getPoolStateQuery, replenishUpdate, setTargetUpdate } from '../../workflows/messages';
import { apiKeyGuard } from '../auth';
import type { ApiContext } from '../context';
import { poolCounts } from '../queries';
import { CountBody, Counts, errorResponses, Ok } from '../schemas';

export const poolRoutes: FastifyPluginAsyncTypebox<ApiContext> = async (app, ctx) => {
  const { temporal, db, config } = ctx;
  const pool = () => temporal.workflow.getHandle(poolWorkflowId(config.pool.name));
  app.addHook('onRequest', apiKeyGuard(ctx.apiKey));

  app.post(
    '/api/pool/replenish',
    {
      schema: {
        tags: ['pool'],
        body: CountBody,
        response: {
          202: Type.Object({ ok: Type.Boolean(), started: Type.Array(Type.String()), counts: Counts }),
          ...errorResponses(400, 401, 503),
        },
      },
    },
    async (request, reply) => {
      const started = await pool().executeUpdate(replenishUpdate, { args: [request.body.count] });
      return reply.code(202).send({ ok: true, started, counts: await poolCounts(db, config.pool.name) });
    },
  );

  app.post(
    '/api/pool/drain',
    {
      schema: {
        tags: ['pool'],
        body: CountBody,
        response: {
          202: Type.Object({ ok: Type.Boolean(), draining: Type.Array(Type.String()), counts: Counts }),
          ...errorResponses(400, 401, 503),
        },
      },
    },
    async (request, reply) => {
      const draining = await pool().executeUpdate(drainUpdate, { args: [request.body.count] });
      return reply.code(202).send({ ok: true, draining, counts: await poolCounts(db, config.pool.name) });
    },
  );

  app.put(
    '/api/pool/target',
    {
      schema: {
        tags: ['pool'],
        body: Type.Object(
          {
            targetIdle: Type.Integer({ minimum: 0, maximum: 1000 }),
            maxTotal: Type.Optional(Type.Integer({ minimum: 1, maximum: 10000 })),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({ targetIdle: Type.Integer(), maxTotal: Type.Integer() }),
          ...errorResponses(400, 401, 503),
        },
      },
    },
    async (request) => {
      const applied = await pool().executeUpdate(setTargetUpdate, { args: [request.body] });
      // The health sweeper's shards follow maxTotal (a shard per HEALTH_SWEEPER_SHARD_SIZE instances).
      if (request.body.maxTotal !== undefined) {
        const state = await pool().query(getPoolStateQuery);
        await ensureHealthSweeper(temporal, config, state.settings);
      }
      return applied;
    },
  );

  app.post(
    '/api/pool/reconcile',
    { schema: { tags: ['pool'], response: { 202: Ok, ...errorResponses(401, 503) } } },
    async (_request, reply) => {
      // A run of its own, started now: a run already under way may have read the state this caller wants swept
      // before it changed. Not the Schedule's trigger: the Schedule names its runs by the second, and a second
      // trigger within the second of a run that already finished starts nothing. The sweep is safe to run next
      // to a scheduled one (every release is checked again against Temporal first, and idempotent).
      await temporal.workflow.start('reconcileWorkflow', {
        taskQueue: config.temporal.taskQueue,
        workflowId: requestedReconcileWorkflowId(config.pool.name, randomUUID()),
        args: [{ poolName: config.pool.name }],
      });
      return reply.code(202).send({ ok: true });
    },
  );
};
