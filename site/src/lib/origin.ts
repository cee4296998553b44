// The cross-site form check: Astro's own `security.checkOrigin` rules, made here because Astro runs its check
// before the site's middleware, so a 403 it gave never reached `settleUnreadBody` and the rest of a huge body was
// read to its end (src/lib/body.ts). Same rules: an unsafe method with a form-like content type, or with none,
// must come from the page's own origin.
const FORM_CONTENT_TYPES = ['application/x-www-form-urlencoded', 'multipart/form-data', 'text/plain'];
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** Whether `request` is a cross-site form submission (or a body-less one) to refuse with a 403. */
export function isForbiddenCrossOrigin(request: Request, url: URL): boolean {
  if (SAFE_METHODS.has(request.method)) return false;
  if (request.headers.get('origin') === url.origin) return false;
  const type = request.headers.get('content-type');
  if (type === null) return true;
  const lower = type.toLowerCase();
  return FORM_CONTENT_TYPES.some((t) => lower.includes(t));
}

export const crossOriginForbidden = (request: Request) =>
  new Response(`Cross-site ${request.method} form submissions are forbidden`, {
    status: 403,
    headers: { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' },
  });
