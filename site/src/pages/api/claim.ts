// Public claim endpoint: validates, rate-limits per visitor, then streams the API's progress. The API is told
// which anonymous visitor the claim is for (an opaque id), so its own per-client limit is per visitor too.
import type { APIRoute } from 'astro';
import { jsonError } from '../../lib/body';
import { parseClaim } from '../../lib/claim-input';
import { proxyClaim } from '../../lib/claim-proxy';
import { clientId, visitorHeaders, visitorKey } from '../../lib/client';
import { config } from '../../lib/config';
import { ClaimRateLimiter } from '../../lib/rate-limit';

let limiter: ClaimRateLimiter | undefined;

export const POST: APIRoute = async (ctx) => {
  const { request } = ctx;
  const parsed = await parseClaim(request);
  if (!parsed.ok) return parsed.response;
  const cfg = config();
  limiter ??= new ClaimRateLimiter(cfg.claimRateLimit);
  const visitor = visitorKey(ctx, cfg.trustedProxyHops);
  const wait = limiter.check(visitor, parsed.key);
  if (wait > 0) {
    return jsonError(429, 'RATE_LIMITED', `Too many new agents from your network. Try again in ${wait} s.`, {
      'retry-after': String(wait),
    });
  }
  return proxyClaim(
    parsed.body,
    parsed.key,
    request.signal,
    visitorHeaders(clientId(visitor, cfg.clientIdSalt)),
  );
};
