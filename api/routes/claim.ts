/**
 * `POST /api/pool/claim`: validate, resolve the template, then hand over to the claim service. With
 * `Accept: text/event-stream` the same request streams `step` events and one `complete` event.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { apiKeyGuard } from '../auth';
import type { ClaimInput, ClaimResponse, ClaimService } from '../claims';
import type { ApiContext } from '../context';
import { ApiError } from '../errors';
import { checkJoinUrl } from '../join-url';
import { findTemplate } from '../queries';
import { errorResponses } from '../schemas';

const DEFAULT_AGENT_NAME = 'Assistant';
const DEFAULT_INSTRUCTIONS =
  'You are a helpful assistant in a group chat. Be brief and friendly, answer whoever addresses you, ' +
  'and never share what one member told you privately with the others.';

const ClaimBody = Type.Object(
  {
    agentName: Type.Optional(Type.String({ minLength: 1, maxLength: 64, pattern: '\\S' })),
    instructions: Type.Optional(Type.String({ maxLength: 32 * 1024 })),
    templateSlug: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    joinUrl: Type.Optional(Type.String({ minLength: 1, maxLength: 16 * 1024 })),
    maxWaitMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 60_000 })),
  },
  { additionalProperties: false },
);

const ClaimResult = Type.Object({
  instanceId: Type.String(),
  agentName: Type.String(),
  conversationId: Type.Union([Type.String(), Type.Null()]),
  inviteUrl: Type.Union([Type.String(), Type.Null()]),
  joined: Type.Boolean(),
  warm: Type.Boolean(),
  status: Type.String(),
  chatUrl: Type.Optional(Type.String()),
});

export const claimRoutes: FastifyPluginAsyncTypebox<ApiContext & { claims: ClaimService }> = async (
  app,
  ctx,
) => {
  app.addHook('onRequest', apiKeyGuard(ctx.apiKey));

  app.post(
    '/api/pool/claim',
    {
      config: {
        rateLimit: { max: ctx.config.api.claimRateLimitPerMinute, timeWindow: '1 minute' },
      },
      schema: {
        tags: ['claim'],
        description: 'Claim an idle agent. Idempotent by the Idempotency-Key header.',
        headers: Type.Object({
          'idempotency-key': Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9._:-]+$' }),
        }),
        body: ClaimBody,
        response: { 200: ClaimResult, ...errorResponses(400, 401, 409, 413, 429, 502, 503) },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const key = request.headers['idempotency-key'];
      const template = body.templateSlug ? await findTemplate(ctx.db, body.templateSlug) : null;
      if (body.templateSlug && !template) {
        throw new ApiError(400, 'UNKNOWN_TEMPLATE', `no template "${body.templateSlug}"`);
      }
      if (body.joinUrl) checkJoinUrl(body.joinUrl, ctx.config.xmtpEnv);
      const input: ClaimInput = {
        agentName: body.agentName?.trim() ?? template?.name ?? DEFAULT_AGENT_NAME,
        instructions: body.instructions ?? template?.instructions ?? DEFAULT_INSTRUCTIONS,
        templateSlug: template?.slug ?? null,
        joinUrl: body.joinUrl ?? null,
      };
      const maxWaitMs = body.maxWaitMs ?? ctx.config.api.claimMaxWaitMs;

      if (!request.headers.accept?.includes('text/event-stream')) {
        return ctx.claims.claim(key, input, maxWaitMs);
      }

      // Server-sent events: progress steps, then the outcome; the HTTP status is 200 from the start.
      reply.hijack();
      const raw = reply.raw;
      raw.writeHead(200, {
        'content-type': 'text/event-stream',
        'cache-control': 'no-cache',
        connection: 'keep-alive',
      });
      const send = (event: string, data: unknown) =>
        raw.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
      let outcome:
        | { ok: true; result: ClaimResponse }
        | { ok: false; statusCode: number; error: string; code: string };
      try {
        const result = await ctx.claims.claim(key, input, maxWaitMs, (step, status, detail) =>
          send('step', { step, status, ...(detail ? { detail } : {}) }),
        );
        outcome = { ok: true, result };
      } catch (err) {
        if (!(err instanceof ApiError)) request.log.error({ err }, 'claim failed');
        outcome =
          err instanceof ApiError
            ? {
                ok: false,
                statusCode: err.statusCode,
                error: err.message,
                code: err.code,
                // What the Retry-After header says in a plain response (seconds).
                ...(err.headers['retry-after'] ? { retryAfter: Number(err.headers['retry-after']) } : {}),
              }
            : { ok: false, statusCode: 500, error: 'internal error', code: 'INTERNAL' };
      }
      send('complete', outcome);
      raw.end();
    },
  );
};
