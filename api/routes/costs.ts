/**
 * Fleet totals for the console (API key): the LLM key provider's credits left, and the per-instance
 * resources the pool holds, by whether their instance is in use (claimed) or pooled (starting, idle).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { apiKeyGuard } from '../auth';
import type { ApiContext } from '../context';
import type { WithLlmUsage } from '../llm-usage';
import { resourceCounts, spareNumbers } from '../queries';
import { errorResponses, Unavailable } from '../schemas';

const Held = Type.Object({
  inUse: Type.Integer({ description: 'held by claimed (or being claimed) instances' }),
  pooled: Type.Integer({ description: 'held by starting and idle instances' }),
  other: Type.Integer({ description: 'held by crashed, failed or destroying instances, until released' }),
});

const Costs = Type.Object({
  credits: Type.Union(
    [
      Type.Object({
        available: Type.Literal(true),
        totalUsd: Type.Number({ description: 'credits bought' }),
        usedUsd: Type.Number({ description: 'spent by every key of the account' }),
        remainingUsd: Type.Number({ description: 'credits left: bought minus spent' }),
        fetchedAt: Type.String({ format: 'date-time', description: 'when it was read (kept ~60 s)' }),
      }),
      Unavailable,
      Type.Null(),
    ],
    { description: "the LLM key provider's account; null: no LLM key provider is configured" },
  ),
  keys: Held,
  inboxes: Held,
  numbers: Type.Composite([
    Held,
    Type.Object({ spare: Type.Integer({ description: 'released numbers kept for the next instance' }) }),
  ]),
});

export const costRoutes: FastifyPluginAsyncTypebox<ApiContext & WithLlmUsage> = async (app, ctx) => {
  app.addHook('onRequest', apiKeyGuard(ctx.apiKey));

  app.get(
    '/api/pool/costs',
    {
      schema: {
        tags: ['pool'],
        description:
          'Credits left at the LLM key provider, and the keys, inboxes and numbers in use and pooled.',
        response: { 200: Costs, ...errorResponses(401) },
      },
    },
    async () => {
      const [credits, held, spare] = await Promise.all([
        ctx.llmUsage ? ctx.llmUsage.credits() : null,
        resourceCounts(ctx.db, ctx.config.pool.name),
        spareNumbers(ctx.db),
      ]);
      return {
        credits:
          credits?.available === true
            ? {
                available: true as const,
                totalUsd: credits.totalUsd,
                usedUsd: credits.usedUsd,
                // Rounded to a millionth of a dollar: floating-point subtraction would show 0.30000000000000004.
                remainingUsd: Math.round((credits.totalUsd - credits.usedUsd) * 1e6) / 1e6,
                fetchedAt: credits.fetchedAt,
              }
            : credits,
        ...held,
        numbers: { ...held.numbers, spare },
      };
    },
  );
};
