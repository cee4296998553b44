/** Public routes (no auth): pool counts and info, the template catalog (the probes: ./health.ts). */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { skillAvailability } from '../../contracts/template-skills';
import { poolWorkflowId } from '../../contracts/workflow-ids';
import { getPoolStateQuery } from '../../workflows/messages';
import type { PoolState } from '../../workflows/types';
import type { ApiContext } from '../context';
import { ApiError } from '../errors';
import { findTemplate, listTemplates, poolCounts } from '../queries';
import { Counts, errorResponses, Nullable, PoolConfig, SkillAvailabilityList } from '../schemas';
import { deploymentMissing } from '../skill-availability';

const TemplateSummary = Type.Object({
  slug: Type.String(),
  name: Type.String(),
  description: Type.String(),
  category: Type.String(),
  emoji: Type.String(),
  skills: Type.Array(Type.String()),
  skillAvailability: SkillAvailabilityList,
});

export const publicRoutes: FastifyPluginAsyncTypebox<ApiContext> = async (app, ctx) => {
  const { db, temporal, config } = ctx;
  // `/api/pool/info` is public: one pool Query (a billable action) per replica every 2 s at most, however many ask.
  let cached: { at: number; state: Promise<PoolState | null> } | null = null;
  const poolState = () => {
    if (!cached || Date.now() - cached.at > 2000) {
      const state = temporal.workflow
        .getHandle(poolWorkflowId(config.pool.name))
        .query(getPoolStateQuery)
        .catch(() => null);
      cached = { at: Date.now(), state };
    }
    return cached.state;
  };

  app.get('/api/pool/counts', { schema: { tags: ['public'], response: { 200: Counts } } }, () =>
    poolCounts(db, config.pool.name),
  );

  app.get(
    '/api/pool/info',
    {
      schema: {
        tags: ['public'],
        response: {
          200: Type.Object({
            environment: Type.String(),
            version: Type.String(),
            computeProvider: Type.String(),
            xmtpEnv: Type.String(),
            model: Type.String(),
            targetIdle: Type.Integer(),
            maxTotal: Type.Integer(),
            providers: Type.Object({
              openrouter: Type.Boolean(),
              agentmail: Type.Boolean(),
              telnyx: Type.Boolean(),
              bankr: Type.Boolean(),
            }),
            breaker: Type.Object({ open: Type.Boolean(), consecutiveFailures: Type.Integer() }),
            config: Nullable(PoolConfig),
          }),
        },
      },
    },
    async () => {
      // The pool workflow holds the settings in force (declared by the workers' environment, targets changed by
      // operators); this process's configuration is only the fallback while it does not exist.
      const state = await poolState();
      return {
        environment: config.environment,
        version: config.version,
        computeProvider: state?.settings.computeProvider ?? config.computeProvider,
        xmtpEnv: config.xmtpEnv,
        model: config.model,
        targetIdle: state?.settings.targetIdle ?? config.pool.targetIdle,
        maxTotal: state?.settings.maxTotal ?? config.pool.maxTotal,
        providers: {
          openrouter: config.providers.openrouter !== null,
          agentmail: config.providers.agentmail !== null,
          telnyx: config.providers.telnyx !== null,
          bankr: config.providers.bankr !== null,
        },
        breaker: {
          open: state?.breaker.open ?? false,
          consecutiveFailures: state?.breaker.consecutiveFailures ?? 0,
        },
        config: state?.config ?? null,
      };
    },
  );

  app.get(
    '/api/pool/templates',
    { schema: { tags: ['public'], response: { 200: Type.Array(TemplateSummary) } } },
    async () => {
      const missing = deploymentMissing(config);
      return (await listTemplates(db)).map((t) => ({
        ...t,
        skillAvailability: skillAvailability(t.skills, missing),
      }));
    },
  );

  app.get(
    '/api/pool/templates/:slug',
    {
      schema: {
        tags: ['public'],
        params: Type.Object({ slug: Type.String({ minLength: 1, maxLength: 64 }) }),
        response: {
          200: Type.Composite([TemplateSummary, Type.Object({ instructions: Type.String() })]),
          ...errorResponses(404),
        },
      },
    },
    async (request) => {
      const template = await findTemplate(db, request.params.slug);
      if (!template) throw new ApiError(404, 'NOT_FOUND', `no template "${request.params.slug}"`);
      return {
        ...template,
        skillAvailability: skillAvailability(template.skills, deploymentMissing(config)),
      };
    },
  );
};
