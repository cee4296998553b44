/**
 * `POST /api/pool/claim`: validate, resolve the template, then hand over to the claim service. With
 * `Accept: text/event-stream` the same request streams `step` events and one `complete` event.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import {
  AGENT_NAME_PATTERN,
  IDEMPOTENCY_KEY_MAX,
  IDEMPOTENCY_KEY_PATTERN,
  INSTRUCTIONS_MAX,
  JOIN_URL_MAX,
  JOIN_URL_PATTERN,
  TEMPLATE_SLUG_MAX,
  TEMPLATE_SLUG_PATTERN,
  TEXT_PATTERN,
} from '../../contracts/claim';
import { type SkillAvailability, skillAvailability } from '../../contracts/template-skills';
import { apiKeyGuard } from '../auth';
import {
  type ClaimClient,
  type ClaimInput,
  type ClaimResponse,
  type ClaimService,
  normalizeRecipients,
  type StepListener,
} from '../claims';
import type { ApiContext } from '../context';
import { ApiError, unavailable } from '../errors';
import { checkJoinUrl } from '../join-url';
import { type ApiMetrics, claimOutcomeOf, countClaimRejection } from '../metrics';
import { findTemplate } from '../queries';
import { errorResponses, SkillAvailabilityList } from '../schemas';
import { deploymentMissing, instanceMissing } from '../skill-availability';
import { AllowedRecipients } from './self';

const DEFAULT_AGENT_NAME = 'Assistant';
const DEFAULT_INSTRUCTIONS =
  'You are a helpful assistant in a group chat. Be brief and friendly, answer whoever addresses you, ' +
  'and never share what one member told you privately with the others.';

// The claim contract (contracts/claim.ts), the same rules the site and the runtime apply.
const ClaimBody = Type.Object(
  {
    agentName: Type.Optional(
      Type.String({ pattern: AGENT_NAME_PATTERN, description: 'one line, 1–64 characters' }),
    ),
    instructions: Type.Optional(Type.String({ maxLength: INSTRUCTIONS_MAX, pattern: TEXT_PATTERN })),
    templateSlug: Type.Optional(
      Type.String({ minLength: 1, maxLength: TEMPLATE_SLUG_MAX, pattern: TEMPLATE_SLUG_PATTERN }),
    ),
    joinUrl: Type.Optional(Type.String({ minLength: 1, maxLength: JOIN_URL_MAX, pattern: JOIN_URL_PATTERN })),
    maxWaitMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 60_000 })),
    allowedRecipients: Type.Optional(AllowedRecipients),
  },
  { additionalProperties: false },
);

const ClaimHeaders = Type.Object({
  'idempotency-key': Type.String({
    minLength: 1,
    maxLength: IDEMPOTENCY_KEY_MAX,
    pattern: IDEMPOTENCY_KEY_PATTERN,
  }),
  'x-client-id': Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: IDEMPOTENCY_KEY_MAX,
      pattern: IDEMPOTENCY_KEY_PATTERN,
      description:
        "the end user this claim is for (e.g. the site's hashed visitor id): rate limits are per client",
    }),
  ),
  'x-client-anonymous': Type.Optional(
    Type.Union([Type.Literal('true'), Type.Literal('false')], {
      description: 'true: the end user is not authenticated (global budget, conversation lifetime apply)',
    }),
  ),
});

const ClaimResponseBody = Type.Object({
  instanceId: Type.String(),
  agentName: Type.String(),
  conversationId: Type.Union([Type.String(), Type.Null()]),
  inviteUrl: Type.Union([Type.String(), Type.Null()]),
  joined: Type.Boolean(),
  warm: Type.Boolean(),
  status: Type.String(),
  chatUrl: Type.Optional(Type.String()),
  skillAvailability: SkillAvailabilityList,
});

export const claimRoutes: FastifyPluginAsyncTypebox<
  ApiContext & { claims: ClaimService; claimMetrics: ApiMetrics }
> = async (app, ctx) => {
  app.addHook('onRequest', apiKeyGuard(ctx.apiKey));
  const metrics = ctx.claimMetrics;
  // Every error of a plain claim request passes here (authentication, the rate limit, validation, the claim
  // service); a streamed claim's are counted where it catches them.
  app.addHook('onError', async (_request, _reply, err) => countClaimRejection(metrics, err));

  /**
   * Runs the claim service, measured: in flight, waiting (in the reserve step, until an instance is reserved
   * or the claim ends) and its duration by outcome and warm/cold.
   */
  const measuredClaim = async (
    run: (onStep: StepListener) => Promise<ClaimResponse>,
    onStep: StepListener = () => {},
  ): Promise<ClaimResponse> => {
    const started = performance.now();
    const seconds = () => (performance.now() - started) / 1000;
    let waiting = false;
    const wait = (now: boolean) => {
      if (now !== waiting) metrics.claimsWaiting.inc(now ? 1 : -1);
      waiting = now;
    };
    metrics.claimsInFlight.inc();
    try {
      const result = await run((step, status, detail) => {
        if (step === 'reserve') wait(status === 'active');
        onStep(step, status, detail);
      });
      metrics.claimDuration.observe({ outcome: 'bound', warm: String(result.warm) }, seconds());
      return result;
    } catch (err) {
      metrics.claimDuration.observe({ outcome: claimOutcomeOf(err), warm: 'none' }, seconds());
      throw err;
    } finally {
      wait(false);
      metrics.claimsInFlight.dec();
    }
  };

  app.post(
    '/api/pool/claim',
    {
      config: {
        rateLimit: {
          max: ctx.config.api.claimRateLimitPerMinute,
          timeWindow: '1 minute',
          // Per end user when the caller names one (the site names each visitor), else per address.
          keyGenerator: (request) => {
            const client = request.headers['x-client-id'];
            return typeof client === 'string' && client ? `client:${client}` : `ip:${request.ip}`;
          },
        },
      },
      schema: {
        tags: ['claim'],
        description: 'Claim an idle agent. Idempotent by the Idempotency-Key header.',
        headers: ClaimHeaders,
        body: ClaimBody,
        response: { 200: ClaimResponseBody, ...errorResponses(400, 401, 409, 413, 429, 502, 503) },
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
        ...(body.allowedRecipients ? { allowedRecipients: normalizeRecipients(body.allowedRecipients) } : {}),
      };
      const maxWaitMs = body.maxWaitMs ?? ctx.config.api.claimMaxWaitMs;
      const client: ClaimClient = {
        clientId: request.headers['x-client-id'] ?? null,
        anonymous: request.headers['x-client-anonymous'] === 'true',
      };

      /**
       * The claim answer: the binding plus what this agent can do of its template's skills, from the resources
       * its start created (an instance started before a provider was configured has none). The read is
       * best-effort: the agent is already bound, so a failing read falls back to the deployment's providers.
       */
      const answer = async (result: ClaimResponse) => {
        const skills = template?.skills ?? [];
        const missing =
          skills.length === 0
            ? deploymentMissing(ctx.config)
            : await instanceMissing(ctx.db, result.instanceId).catch((err: unknown) => {
                request.log.warn(
                  { err, instanceId: result.instanceId },
                  'skill availability: resources unread',
                );
                return deploymentMissing(ctx.config);
              });
        const availability: SkillAvailability[] = skillAvailability(skills, missing);
        return { ...result, skillAvailability: availability };
      };

      if (!request.headers.accept?.includes('text/event-stream')) {
        const result = await measuredClaim((onStep) =>
          ctx.claims.claim(key, input, maxWaitMs, onStep, client, request.id),
        );
        request.log.info({ instanceId: result.instanceId, warm: result.warm }, 'claim bound');
        return answer(result);
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
        | { ok: true; result: ClaimResponse & { skillAvailability: SkillAvailability[] } }
        | { ok: false; statusCode: number; error: string; code: string };
      try {
        const result = await measuredClaim(
          (onStep) => ctx.claims.claim(key, input, maxWaitMs, onStep, client, request.id),
          (step, status, detail) => send('step', { step, status, ...(detail ? { detail } : {}) }),
        );
        outcome = { ok: true, result: await answer(result) };
        request.log.info({ instanceId: result.instanceId, warm: result.warm }, 'claim bound');
      } catch (thrown) {
        // Temporal or the database unavailable: a 503 with Retry-After, as in a plain response.
        const err = unavailable(thrown) ?? thrown;
        if (!(err instanceof ApiError)) request.log.error({ err }, 'claim failed');
        countClaimRejection(metrics, err);
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
