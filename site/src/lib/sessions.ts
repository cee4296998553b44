// Admin sessions: server-side, in memory, with a TTL; logout revokes immediately.
// The cookie carries only a random id; the CSRF token lives with the session.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { AstroCookies } from 'astro';
import { config } from './config';

export const SESSION_COOKIE = 'convos_admin';
/** Double-submit token for the login form, before a session exists. */
export const LOGIN_CSRF_COOKIE = 'convos_login_csrf';

export interface Session {
  id: string;
  csrf: string;
  expiresAt: number;
  flash?: { kind: 'ok' | 'error'; text: string };
}

const sessions = new Map<string, Session>();

export const newToken = () => randomBytes(32).toString('base64url');

/** Constant-time string comparison (hash first so lengths never leak through timing). */
export function safeEqual(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb) && a.length === b.length;
}

export function createSession(now = Date.now()): Session {
  for (const [id, s] of sessions) if (s.expiresAt <= now) sessions.delete(id);
  const s: Session = { id: newToken(), csrf: newToken(), expiresAt: now + config().sessionTtlMs };
  sessions.set(s.id, s);
  return s;
}

export function getSession(id: string | undefined, now = Date.now()): Session | undefined {
  if (!id) return undefined;
  const s = sessions.get(id);
  if (!s) return undefined;
  if (s.expiresAt <= now) {
    sessions.delete(id);
    return undefined;
  }
  return s;
}

export function revokeSession(id: string | undefined): void {
  if (id) sessions.delete(id);
}

/** Secure cookies everywhere except a site served from localhost over plain HTTP (local dev). */
export function cookieSecure(url: URL): boolean {
  const forced = config().cookieSecure;
  if (forced !== undefined) return forced;
  const local = ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname);
  return url.protocol === 'https:' || !local;
}

export function cookieOptions(url: URL, maxAgeSeconds?: number) {
  return {
    path: '/',
    httpOnly: true,
    sameSite: 'strict' as const,
    secure: cookieSecure(url),
    ...(maxAgeSeconds === undefined ? {} : { maxAge: maxAgeSeconds }),
  };
}

export function sessionFromCookies(cookies: AstroCookies): Session | undefined {
  return getSession(cookies.get(SESSION_COOKIE)?.value);
}

export function checkCsrf(session: Session, token: unknown): boolean {
  return typeof token === 'string' && token.length > 0 && safeEqual(token, session.csrf);
}
