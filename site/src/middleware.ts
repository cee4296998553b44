// Security headers on every response (the CSP itself is emitted by Astro as a hashed <meta> tag), and no
// request body left half-read: a route that answered without reading it (a 4xx before the body mattered, a
// page posted to) gets it discarded for a moment and the connection closed, never read to its end.
import { defineMiddleware } from 'astro:middleware';
import { settleUnreadBody } from './lib/body';

export const onRequest = defineMiddleware(async (ctx, next) => {
  const res = await next();
  settleUnreadBody(ctx.request);
  res.headers.set('x-content-type-options', 'nosniff');
  res.headers.set('x-frame-options', 'DENY');
  res.headers.set('referrer-policy', 'strict-origin-when-cross-origin');
  res.headers.set('permissions-policy', 'camera=(), microphone=(), geolocation=()');
  return res;
});
