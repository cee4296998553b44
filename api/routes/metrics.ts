/**
 * `GET /metrics`: the process's Prometheus series in the text format (docs/operators.md, "Metrics"). Not in
 * the OpenAPI document (it is for the scraper, not for clients). Open by default (scraped from inside the
 * network; nothing in it is secret or per user); with METRICS_BEARER set it takes `Authorization: Bearer` with
 * that value. Not rate limited; the gauges it reads are cached, so a scrape costs at most one `group by` every
 * 5 s and one pool Query every 15 s.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { Registry } from 'prom-client';
import { bearer, safeEqual } from '../auth';
import { ApiError } from '../errors';

export const metricsRoutes: FastifyPluginAsync<{ registry: Registry; bearer: string | null }> = async (
  app,
  opts,
) => {
  app.get('/metrics', { schema: { hide: true } }, async (request, reply) => {
    if (opts.bearer) {
      const token = bearer(request);
      if (!token || !safeEqual(token, opts.bearer))
        throw new ApiError(
          401,
          'UNAUTHORIZED',
          'missing or wrong metrics token (Authorization: Bearer <METRICS_BEARER>)',
        );
    }
    const body = await opts.registry.metrics();
    return reply
      .header('content-type', opts.registry.contentType)
      .header('cache-control', 'no-store')
      .send(body);
  });
};
