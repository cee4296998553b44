/**
 * Instance routes (API key): listing and inspecting, kill / dismiss / retry, allowed recipients. Self-service
 * is in `self.ts`.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyPluginAsyncTypebox, TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { WorkflowNotFoundError } from '@temporalio/client';
import { LIVE_STATUSES } from '../../contracts/instance-status';
import { INVITE_URL } from '../../contracts/secrets';
import { instanceWorkflowId } from '../../contracts/workflow-ids';
import { instanceEvents } from '../../drizzle/schema';
import { destroySignal, getStateQuery, retrySignal } from '../../workflows/messages';
import type { InstanceStatus, StatusChange } from '../../workflows/types';
import { apiKeyGuard } from '../auth';
import { normalizeRecipients, recipientsOf, replaceRecipients } from '../claims';
import type { ApiContext } from '../context';
import { ApiError } from '../errors';
import type { WithLlmUsage } from '../llm-usage';
import { activeLlmKey, agentSummary, findInstance, instanceDetail, liveInstances } from '../queries';
import {
  AgentSummary,
  errorResponses,
  InstanceIdParams,
  InstanceStatus as InstanceStatusSchema,
  LlmKeyUsage,
  Ok,
} from '../schemas';
import { AllowedRecipients } from './self';

const Recipients = Type.Object({
  instanceId: Type.String(),
  email: Type.Array(Type.String(), { description: 'lowercased, sorted' }),
  sms: Type.Array(Type.String(), { description: 'E.164, sorted' }),
});

/** Where a list of allowed recipients can be set: claimed (or about to be, or held by a crash), not gone. */
const RECIPIENTS_SETTABLE: readonly InstanceStatus[] = [
  'claiming',
  'pending_acceptance',
  'claimed',
  'crashed',
  'failed',
];

const InstanceDetail = Type.Composite([
  AgentSummary,
  Type.Object({
    provider: Type.String(),
    url: Type.Union([Type.String(), Type.Null()]),
    idleAt: Type.Union([Type.String(), Type.Null()]),
    destroyedAt: Type.Union([Type.String(), Type.Null()]),
    failedStep: Type.Union([Type.String(), Type.Null()]),
    inviteUrl: Type.Union([Type.String(), Type.Null()], {
      description: 'the conversation invite (a bearer link: only here and in the claim response)',
    }),
    resources: Type.Array(
      Type.Object({
        kind: Type.String(),
        provider: Type.String(),
        ref: Type.String(),
        status: Type.String({
          description: 'active, released, or skipped (the provider is off; see details.reason)',
        }),
        details: Type.Record(Type.String(), Type.String()),
        createdAt: Type.String(),
        releasedAt: Type.Union([Type.String(), Type.Null()]),
      }),
    ),
    usage: Type.Union([LlmKeyUsage, Type.Null()], {
      description:
        'what its own LLM key spent against its cap (read from the provider, kept ~60 s); null: it holds no key of its own',
    }),
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

export const instanceRoutes: FastifyPluginAsyncTypebox<ApiContext & WithLlmUsage> = async (app, ctx) => {
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

  await app.register(async (scope) => {
    const authed = scope.withTypeProvider<TypeBoxTypeProvider>();
    authed.addHook('onRequest', apiKeyGuard(ctx.apiKey));

    authed.get(
      '/api/pool/agents',
      {
        schema: {
          tags: ['instances'],
          response: {
            200: Type.Object(Object.fromEntries(LIVE_STATUSES.map((s) => [s, Type.Array(AgentSummary)]))),
            ...errorResponses(401),
          },
        },
      },
      async () => {
        const grouped = Object.fromEntries(
          LIVE_STATUSES.map((s) => [s, [] as ReturnType<typeof agentSummary>[]]),
        );
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
        const { id } = request.params;
        const detail = await instanceDetail(db, id);
        if (!detail) throw new ApiError(404, 'NOT_FOUND', `no instance ${id}`);
        const key = detail.resources.find((r) => r.kind === 'llmKey' && r.status === 'active');
        const [inviteUrl, usage] = await Promise.all([
          ctx.secrets.get(id, INVITE_URL),
          key && ctx.llmUsage ? ctx.llmUsage.usage(key.ref) : null,
        ]);
        return { ...detail, inviteUrl, usage };
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

    authed.put(
      '/api/pool/instances/:id/llm-limit',
      {
        schema: {
          tags: ['instances'],
          description: "Sets the monthly spending cap (USD) of the instance's own LLM key.",
          params: InstanceIdParams,
          body: Type.Object(
            { monthlyLimitUsd: Type.Number({ exclusiveMinimum: 0, maximum: 100_000 }) },
            { additionalProperties: false },
          ),
          response: {
            200: Type.Object({ instanceId: Type.String(), monthlyLimitUsd: Type.Number() }),
            ...errorResponses(400, 401, 404, 409, 502),
          },
        },
      },
      async (request) => {
        const { id } = request.params;
        await requireInstance(id);
        const ref = await activeLlmKey(db, id);
        if (!ctx.llmKeys || !ref)
          throw new ApiError(409, 'NO_LLM_KEY', 'this instance has no LLM key of its own to raise');
        const { monthlyLimitUsd } = request.body;
        let result: { limitUsd: number };
        try {
          result = await ctx.llmKeys.raiseLimit(ref, monthlyLimitUsd);
        } catch (err) {
          ctx.llmUsage?.forget(ref);
          request.log.warn({ err: (err as Error).name }, 'raising an LLM key cap failed');
          throw new ApiError(
            502,
            'PROVIDER_FAILED',
            'the LLM key provider did not accept the new cap; retry later',
          );
        }
        // The next look at its usage shows the new cap, not the one kept from before.
        ctx.llmUsage?.forget(ref);
        // The cap is changed at this point: a failed audit write is logged, not turned into an error.
        await db
          .insert(instanceEvents)
          .values({
            instanceId: id,
            eventKey: `llm-limit-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`,
            fromStatus: null,
            toStatus: (await requireInstance(id)).status,
            actor: 'operator',
            reason: `LLM key cap set to ${result.limitUsd} USD a month`,
            details: { monthlyLimitUsd: result.limitUsd },
          })
          .catch((err: Error) =>
            request.log.warn({ err: err.name }, 'audit write of an LLM cap change failed'),
          );
        return { instanceId: id, monthlyLimitUsd: result.limitUsd };
      },
    );

    authed.get(
      '/api/pool/instances/:id/recipients',
      {
        schema: {
          tags: ['instances'],
          description: 'Whom the instance may email and text through the pool.',
          params: InstanceIdParams,
          response: { 200: Recipients, ...errorResponses(401, 404) },
        },
      },
      async (request) => {
        const { id } = request.params;
        if (!(await findInstance(db, id))) throw new ApiError(404, 'NOT_FOUND', `no instance ${id}`);
        return { instanceId: id, ...(await recipientsOf(db, id)) };
      },
    );

    authed.put(
      '/api/pool/instances/:id/recipients',
      {
        schema: {
          tags: ['instances'],
          description:
            'Replaces whom the instance may email and text through the pool: a channel left out allows nobody.',
          params: InstanceIdParams,
          body: AllowedRecipients,
          response: { 200: Recipients, ...errorResponses(400, 401, 404, 409) },
        },
      },
      async (request) => {
        const { id } = request.params;
        const { status } = await requireInstance(id);
        if (!RECIPIENTS_SETTABLE.includes(status)) {
          throw new ApiError(
            409,
            'NOT_CLAIMED',
            `instance is ${status}; recipients are set for a claimed instance (or in its claim)`,
          );
        }
        const list = normalizeRecipients(request.body);
        await replaceRecipients(db, id, list);
        // The list is changed at this point: a failed audit write is logged, not turned into an error.
        // Counts only: the addresses are third parties' personal data.
        await db
          .insert(instanceEvents)
          .values({
            instanceId: id,
            eventKey: `recipients-${randomUUID()}`,
            fromStatus: null,
            toStatus: status,
            actor: 'operator',
            reason: `allowed recipients set: ${list.email.length} email, ${list.sms.length} SMS`,
            details: { email: list.email.length, sms: list.sms.length },
          })
          .catch((err: Error) =>
            request.log.warn({ err: err.name }, 'audit write of a recipients change failed'),
          );
        return { instanceId: id, ...list };
      },
    );
  });
};
