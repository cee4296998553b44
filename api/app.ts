/**
 * Builds the Fastify app: request ids, body limit, error format, OpenAPI (`/api/openapi.json`, docs at
 * `/api/docs`), rate limiting, the probes, and one encapsulated plugin per route group.
 */
import { randomUUID } from 'node:crypto';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyReply,
  type FastifyRequest,
  LogController,
} from 'fastify';
import { Registry } from 'prom-client';
import { poolWorkflowId } from '../contracts/workflow-ids';
import { getPoolStateQuery } from '../workflows/messages';
import { ClaimService } from './claims';
import type { ApiContext } from './context';
import { ApiError, registerErrorHandling } from './errors';
import { clientErrorResponse, registerInputGuard } from './input-guard';
import { LlmUsageCache } from './llm-usage';
import { apiMetrics, cached, registerPoolGauges } from './metrics';
import { poolCounts } from './queries';
import { claimRoutes } from './routes/claim';
import { codecRoutes } from './routes/codec';
import { costRoutes } from './routes/costs';
import { type ApiLifecycle, healthRoutes } from './routes/health';
import { instanceRoutes } from './routes/instances';
import { metricsRoutes } from './routes/metrics';
import { paymentRoutes } from './routes/payments';
import { poolRoutes } from './routes/pool';
import { publicRoutes } from './routes/public';
import { selfRoutes } from './routes/self';
import { webhookRoutes } from './routes/webhooks';
import { ErrorBody, markOptionalBodies } from './schemas';

/** An incoming `X-Request-Id` the API adopts: a plain token (anything else gets a fresh id instead). */
export const REQUEST_ID_PATTERN = /^[A-Za-z0-9._-]{1,128}$/;

/** The request's id: the caller's `X-Request-Id` when it is a plain token, else a new UUID. */
export function requestIdOf(header: string | string[] | undefined): string {
  return typeof header === 'string' && REQUEST_ID_PATTERN.test(header) ? header : randomUUID();
}

/**
 * One log line per request, when it ends (what it was and how it went), instead of Fastify's two: a claim is
 * a few lines in all, and each one costs CPU on its path. Errors keep Fastify's own line.
 */
class OneLinePerRequest extends LogController {
  override incomingRequest(): void {}
  override requestCompleted(
    error: Error | null | undefined,
    request: FastifyRequest,
    reply: FastifyReply,
    metadata?: Record<string, unknown>,
  ): void {
    if (error || this.isLogDisabled(request)) {
      super.requestCompleted(error, request, reply, metadata);
      return;
    }
    reply.log.info({ req: request, res: reply, responseTime: reply.elapsedTime }, 'request completed');
  }
}

/**
 * `logger`: the process's (redacting) logger, from `system/`; none by default. `lifecycle`: what `/readyz`
 * reports of the process (draining once it got SIGTERM); the process owns it.
 */
export async function buildApp(
  ctx: ApiContext,
  opts: { logger?: FastifyBaseLogger; lifecycle?: ApiLifecycle } = {},
) {
  const lifecycle = opts.lifecycle ?? { draining: false };
  const app = Fastify({
    ...(opts.logger ? { loggerInstance: opts.logger } : { logger: false }),
    // One id per request (per claim), in every log line of it (`requestId`), echoed as `X-Request-Id` and
    // carried to the worker with the claim.
    genReqId: (req) => requestIdOf(req.headers['x-request-id']),
    logController: new OneLinePerRequest({ requestIdLogLabel: 'requestId' }),
    bodyLimit: 64 * 1024,
    // A path parameter may be a message id (an RFC 5322 Message-ID, up to 255 characters, contracts/mail.ts),
    // percent-encoded up to three times as long; past this, 414.
    routerOptions: { maxParamLength: 800 },
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
    clientErrorHandler: (err, socket) => {
      if (socket.writable) socket.end(clientErrorResponse(err));
      else socket.destroy(err);
    },
  }).withTypeProvider<TypeBoxTypeProvider>();

  // On the raw response, so a streamed (hijacked) claim and an error carry it too.
  app.addHook('onRequest', async (request, reply) => {
    reply.raw.setHeader('x-request-id', request.id);
  });
  // Draining: every answer closes its connection, so clients reconnect (through the load balancer, elsewhere)
  // and the server can close once the requests in flight are answered.
  app.addHook('onSend', async (_request, reply) => {
    if (lifecycle.draining) reply.header('connection', 'close');
  });
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
    // @fastify/swagger marks every body required; a route that also takes none says so (`BODY_OPTIONAL`).
    transformObject: (doc) =>
      markOptionalBodies('openapiObject' in doc ? doc.openapiObject : doc.swaggerObject),
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

  await app.register(healthRoutes, { db: ctx.db, temporal: ctx.temporal, lifecycle });
  // Prometheus: the process's registry (an app of its own without one). The pool gauges are read on scrape,
  // cached: one `group by` on the read model every 5 s, one pool Query (billable) every 15 s at most.
  const registry = ctx.metrics ?? new Registry();
  registerPoolGauges(registry, {
    counts: cached(5_000, () => poolCounts(ctx.db, ctx.config.pool.name)),
    pool: cached(15_000, () =>
      ctx.temporal.workflow
        .getHandle(poolWorkflowId(ctx.config.pool.name))
        .query(getPoolStateQuery)
        .catch(() => null),
    ),
  });
  await app.register(metricsRoutes, { registry, bearer: ctx.config.metricsBearer });
  await app.register(publicRoutes, ctx);
  // One usage cache per API process, shared by the instance detail and the fleet totals.
  const llmUsage = ctx.llmKeys ? new LlmUsageCache(ctx.llmKeys) : null;
  await app.register(instanceRoutes, { ...ctx, llmUsage });
  await app.register(costRoutes, { ...ctx, llmUsage });
  await app.register(selfRoutes, ctx);
  await app.register(paymentRoutes, ctx);
  await app.register(poolRoutes, ctx);
  await app.register(codecRoutes, ctx);
  await app.register(webhookRoutes, ctx);
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
  await app.register(claimRoutes, { ...ctx, claims, claimMetrics: apiMetrics(registry) });
  return app;
}
