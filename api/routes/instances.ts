/** Instance routes: listing and inspecting (API key), kill / dismiss / retry (API key), self-destruct (instance token). */
import type { FastifyPluginAsyncTypebox, TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { WorkflowNotFoundError } from '@temporalio/client';
import { INSTANCE_TOKEN } from '../../activities';
import { instanceWorkflowId } from '../../activities/reconcile';
import { destroySignal, getStateQuery, retrySignal } from '../../workflows/messages';
import type { InstanceStatus, StatusChange } from '../../workflows/types';
import { apiKeyGuard, bearer, safeEqual } from '../auth';
import type { ApiContext } from '../context';
import { ApiError } from '../errors';
import { agentSummary, findInstance, instanceDetail, liveInstances } from '../queries';
import {
  AgentSummary,
  errorResponses,
  InstanceIdParams,
  InstanceStatus as InstanceStatusSchema,
  Ok,
} from '../schemas';

const LISTED = ['claimed', 'crashed', 'idle', 'starting', 'failed', 'claiming', 'destroying'] as const;

const InstanceDetail = Type.Composite([
  AgentSummary,
  Type.Object({
    provider: Type.String(),
    url: Type.Union([Type.String(), Type.Null()]),
    idleAt: Type.Union([Type.String(), Type.Null()]),
    destroyedAt: Type.Union([Type.String(), Type.Null()]),
    failedStep: Type.Union([Type.String(), Type.Null()]),
    resources: Type.Array(
      Type.Object({
        kind: Type.String(),
        provider: Type.String(),
        ref: Type.String(),
        status: Type.String(),
        createdAt: Type.String(),
        releasedAt: Type.Union([Type.String(), Type.Null()]),
      }),
    ),
    events: Type.Array(
      Type.Object({
        at: Type.String(),
        from: Type.Union([InstanceStatusSchema, Type.Null()]),
        to: InstanceStatusSchema,
        actor: Type.String(),
        reason: Type.String(),
      }),
    ),
  }),
]);

export const instanceRoutes: FastifyPluginAsyncTypebox<ApiContext> = async (app, ctx) => {
  const { db, temporal } = ctx;

  /** The workflow's own status (authoritative); null when the workflow has finished or never existed. */
  async function liveStatus(id: string): Promise<InstanceStatus | null> {
    try {
      return (await temporal.workflow.getHandle(instanceWorkflowId(id)).query(getStateQuery)).status;
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return null;
      throw err;
    }
  }

  async function requireInstance(id: string) {
    const row = await findInstance(db, id);
    if (!row) throw new ApiError(404, 'NOT_FOUND', `no instance ${id}`);
    return { row, status: (await liveStatus(id)) ?? (row.status as InstanceStatus) };
  }

  const signalDestroy = (id: string, change: StatusChange) =>
    temporal.workflow.getHandle(instanceWorkflowId(id)).signal(destroySignal, change);

  // Self-destruct authenticates with the instance's own token, never with the API key.
  app.post(
    '/api/pool/self-destruct',
    { schema: { tags: ['instance'], response: { 202: Ok, ...errorResponses(401, 403) } } },
    async (request, reply) => {
      const credentials = bearer(request);
      if (!credentials)
        throw new ApiError(401, 'UNAUTHORIZED', 'missing instance credentials (Bearer <id>:<token>)');
      const sep = credentials.indexOf(':');
      const id = credentials.slice(0, sep);
      const token = credentials.slice(sep + 1);
      const expected =
        sep > 0 && /^[A-Za-z0-9-]{1,64}$/.test(id) ? await ctx.secrets.get(id, INSTANCE_TOKEN) : null;
      if (!expected || !safeEqual(token, expected)) {
        throw new ApiError(403, 'FORBIDDEN', 'wrong instance id or token');
      }
      await signalDestroy(id, { actor: 'instance', reason: 'self-destruct requested by the instance' });
      return reply.code(202).send({ ok: true });
    },
  );

  await app.register(async (scope) => {
    const authed = scope.withTypeProvider<TypeBoxTypeProvider>();
    authed.addHook('onRequest', apiKeyGuard(ctx.apiKey));

    authed.get(
      '/api/pool/agents',
      {
        schema: {
          tags: ['instances'],
          response: {
            200: Type.Object(Object.fromEntries(LISTED.map((s) => [s, Type.Array(AgentSummary)]))),
            ...errorResponses(401),
          },
        },
      },
      async () => {
        const grouped = Object.fromEntries(LISTED.map((s) => [s, [] as ReturnType<typeof agentSummary>[]]));
        for (const row of await liveInstances(db, ctx.config.pool.name))
          grouped[row.status]?.push(agentSummary(row));
        return grouped;
      },
    );

    authed.get(
      '/api/pool/instances/:id',
      {
        schema: {
          tags: ['instances'],
          params: InstanceIdParams,
          response: { 200: InstanceDetail, ...errorResponses(401, 404) },
        },
      },
      async (request) => {
        const detail = await instanceDetail(db, request.params.id);
        if (!detail) throw new ApiError(404, 'NOT_FOUND', `no instance ${request.params.id}`);
        return detail;
      },
    );

    authed.delete(
      '/api/pool/instances/:id',
      {
        schema: {
          tags: ['instances'],
          params: InstanceIdParams,
          response: { 202: Ok, ...errorResponses(401, 404, 409) },
        },
      },
      async (request, reply) => {
        const { status } = await requireInstance(request.params.id);
        if (status === 'destroyed')
          throw new ApiError(409, 'ALREADY_DESTROYED', 'instance is already destroyed');
        if (status === 'destroying') return reply.code(202).send({ ok: true });
        await signalDestroy(request.params.id, { actor: 'operator', reason: 'killed by an operator' });
        return reply.code(202).send({ ok: true });
      },
    );

    authed.delete(
      '/api/pool/crashed/:id',
      {
        schema: {
          tags: ['instances'],
          params: InstanceIdParams,
          response: { 202: Ok, ...errorResponses(401, 404, 409) },
        },
      },
      async (request, reply) => {
        const { status } = await requireInstance(request.params.id);
        if (status !== 'crashed' && status !== 'failed') {
          throw new ApiError(
            409,
            'NOT_CRASHED',
            `instance is ${status}; only crashed or failed instances are dismissed`,
          );
        }
        await signalDestroy(request.params.id, { actor: 'operator', reason: `dismissed while ${status}` });
        return reply.code(202).send({ ok: true });
      },
    );

    authed.post(
      '/api/pool/instances/:id/retry',
      {
        schema: {
          tags: ['instances'],
          params: InstanceIdParams,
          response: { 202: Ok, ...errorResponses(401, 404, 409) },
        },
      },
      async (request, reply) => {
        const { status } = await requireInstance(request.params.id);
        if (status !== 'failed')
          throw new ApiError(409, 'NOT_FAILED', `instance is ${status}; only failed instances are retried`);
        await temporal.workflow
          .getHandle(instanceWorkflowId(request.params.id))
          .signal(retrySignal, { actor: 'operator', reason: 'retry requested by an operator' });
        return reply.code(202).send({ ok: true });
      },
    );
  });
};
