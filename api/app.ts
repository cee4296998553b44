/**
 * Builds the Fastify app: body limit, error format, OpenAPI (`/api/openapi.json`, docs at `/api/docs`),
 * rate limiting, and one encapsulated plugin per route group.
 */
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyBaseLogger } from 'fastify';
import { ClaimService } from './claims';
import type { ApiContext } from './context';
import { ApiError, registerErrorHandling } from './errors';
import { clientErrorResponse, registerInputGuard } from './input-guard';
import { claimRoutes } from './routes/claim';
import { codecRoutes } from './routes/codec';
import { instanceRoutes } from './routes/instances';
import { poolRoutes } from './routes/pool';
import { publicRoutes } from './routes/public';
import { selfRoutes } from './routes/self';
import { ErrorBody } from './schemas';

/** `logger`: the process's (redacting) logger, from `system/`; none by default. */
export async function buildApp(ctx: ApiContext, opts: { logger?: FastifyBaseLogger } = {}) {
  const app = Fastify({
    ...(opts.logger ? { loggerInstance: opts.logger } : { logger: false }),
    bodyLimit: 64 * 1024,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
    clientErrorHandler: (err, socket) => {
      if (socket.writable) socket.end(clientErrorResponse(err));
      else socket.destroy(err);
    },
  }).withTypeProvider<TypeBoxTypeProvider>();

  registerErrorHandling(app);
  registerInputGuard(app);
  // Bodies are JSON only: anything else is a 415, not a confusing schema error.
  app.removeContentTypeParser('text/plain');
  app.addSchema(ErrorBody);

  await app.register(swagger, {
    openapi: {
      info: { title: 'convos-agents pool API', version: ctx.config.version },
      components: {
        securitySchemes: { apiKey: { type: 'http', scheme: 'bearer' } },
      },
    },
    refResolver: { buildLocalReference: (json, _base, _fragment, i) => String(json.$id ?? `def-${i}`) },
  });
  await app.register(swaggerUi, { routePrefix: '/api/docs' });
  await app.register(rateLimit, {
    global: false,
    errorResponseBuilder: (_req, context) =>
      new ApiError(
        429,
        'RATE_LIMITED',
        `too many claims: at most ${context.max} per ${context.after}; retry later`,
        {
          'retry-after': String(Math.ceil(context.ttl / 1000)),
        },
      ),
  });

  app.get('/api/openapi.json', { schema: { hide: true } }, () => app.swagger());

  await app.register(publicRoutes, ctx);
  await app.register(instanceRoutes, ctx);
  await app.register(selfRoutes, ctx);
  await app.register(poolRoutes, ctx);
  await app.register(codecRoutes, ctx);
  // One claim service per API replica: it is the lease owner in the claims ledger.
  const claims = new ClaimService({
    db: ctx.db,
    temporal: ctx.temporal,
    secrets: ctx.secrets,
    poolName: ctx.config.pool.name,
    settings: {
      anonymousIdleTtlMs: ctx.config.api.anonymousIdleTtlMs,
      anonymousPerMinute: ctx.config.api.anonymousClaimsPerMinute,
    },
  });
  await app.register(claimRoutes, { ...ctx, claims });
  return app;
}
