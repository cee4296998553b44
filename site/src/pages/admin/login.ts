// Operator login: the operator key (= POOL_API_KEY) compared in constant time; creates a server session.
import type { APIRoute } from 'astro';
import { readFormLimited } from '../../lib/body';
import { visitorKey } from '../../lib/client';
import { config } from '../../lib/config';
import { ClaimRateLimiter } from '../../lib/rate-limit';
import {
  cookieOptions,
  createSession,
  LOGIN_CSRF_COOKIE,
  newToken,
  SESSION_COOKIE,
  safeEqual,
} from '../../lib/sessions';

// Slows down key guessing: 10 attempts per minute per client.
const attempts = new ClaimRateLimiter(10);

export const POST: APIRoute = async (ctx) => {
  const { request, cookies, url, redirect } = ctx;
  const read = await readFormLimited(request);
  if (!read.ok) return read.response;
  const form = read.value;
  const csrf = form.get('csrf');
  const expected = cookies.get(LOGIN_CSRF_COOKIE)?.value;
  if (typeof csrf !== 'string' || !expected || !safeEqual(csrf, expected)) {
    // Rejected: nothing happens; the form page explains (a stale tab, or a forged cross-site post).
    return redirect('/admin?error=expired', 303);
  }
  const cfg = config();
  const wait = attempts.check(visitorKey(ctx, cfg.trustedProxyHops), newToken());
  if (wait > 0) return redirect(`/admin?error=slow&wait=${wait}`, 303);
  const key = form.get('key');
  if (!cfg.apiKey) return redirect('/admin?error=disabled', 303);
  if (typeof key !== 'string' || !safeEqual(key, cfg.apiKey)) return redirect('/admin?error=key', 303);
  const session = createSession();
  cookies.delete(LOGIN_CSRF_COOKIE, { path: '/' });
  cookies.set(SESSION_COOKIE, session.id, cookieOptions(url, Math.floor(cfg.sessionTtlMs / 1000)));
  return redirect('/admin', 303);
};
