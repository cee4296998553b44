// Public claim endpoint: validates, rate-limits per client IP, then streams the API's progress.
import type { APIRoute } from 'astro';
import { clientIp, jsonError, parseClaim } from '../../lib/claim-input';
import { proxyClaim } from '../../lib/claim-proxy';
import { config } from '../../lib/config';
import { ClaimRateLimiter } from '../../lib/rate-limit';

let limiter: ClaimRateLimiter | undefined;

export const POST: APIRoute = async ({ request, clientAddress }) => {
  const parsed = await parseClaim(request);
  if (!parsed.ok) return parsed.response;
  const cfg = config();
  limiter ??= new ClaimRateLimiter(cfg.claimRateLimit);
  const wait = limiter.check(clientIp(request, clientAddress, cfg.trustProxy), parsed.key);
  if (wait > 0) {
    return jsonError(429, 'RATE_LIMITED', `Too many new agents from your network. Try again in ${wait} s.`, {
      'retry-after': String(wait),
    });
  }
  return proxyClaim(parsed.body, parsed.key, request.signal);
};
