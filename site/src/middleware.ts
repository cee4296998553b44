// Every request: its path and query may not carry control characters or lone surrogates (a 400 that names the
// parameter, before any route sees them); a cross-site form submission is a 403 (src/lib/origin.ts); security
// headers on every response (the CSP itself is emitted by Astro as a hashed <meta> tag); and no request body
// left half-read: a route that answered without reading it (a 4xx before the body mattered, a page posted to)
// gets it discarded for a moment and the connection closed, never read to its end.
import { defineMiddleware } from 'astro:middleware';
import { settleUnreadBody } from './lib/body';
import { crossOriginForbidden, isForbiddenCrossOrigin } from './lib/origin';
import { controlCharacterProblem } from './lib/validate';

const printable = (s: string) => s.replace(/[^\x20-\x7E]/g, '?').slice(0, 40);

/** Why the URL is refused, or null. Astro itself answers 400 for escapes that do not decode. */
function urlProblem(url: URL): string | null {
  let path: string;
  try {
    path = decodeURIComponent(url.pathname);
  } catch {
    return 'The path is not valid percent-encoded UTF-8.';
  }
  const inPath = controlCharacterProblem(path, false);
  if (inPath) return `The path ${inPath}.`;
  for (const [name, value] of url.searchParams) {
    const problem = controlCharacterProblem(name, false) ?? controlCharacterProblem(value, false);
    if (problem) return `Query parameter "${printable(name)}" ${problem}.`;
  }
  return null;
}

export const onRequest = defineMiddleware(async (ctx, next) => {
  const problem = urlProblem(ctx.url);
  const res = problem
    ? new Response(`${problem}\n`, {
        status: 400,
        headers: { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' },
      })
    : isForbiddenCrossOrigin(ctx.request, ctx.url)
      ? crossOriginForbidden(ctx.request)
      : await next();
  settleUnreadBody(ctx.request);
  res.headers.set('x-content-type-options', 'nosniff');
  res.headers.set('x-frame-options', 'DENY');
  res.headers.set('referrer-policy', 'strict-origin-when-cross-origin');
  res.headers.set('permissions-policy', 'camera=(), microphone=(), geolocation=()');
  return res;
});
