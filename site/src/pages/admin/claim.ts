// Operator launch/join: same streaming claim as the public page, gated by session + CSRF header
// instead of the per-IP limit, into the console's environment.
import type { APIRoute } from 'astro';
import { requireSessionAndCsrf } from '../../lib/admin';
import { parseClaim } from '../../lib/claim-input';
import { proxyClaim } from '../../lib/claim-proxy';
import { consoleEnvironment } from '../../lib/environment';

export const POST: APIRoute = async ({ request, cookies }) => {
  const gate = requireSessionAndCsrf(cookies, request.headers.get('x-csrf-token'));
  if (!gate.ok) return gate.response;
  const parsed = await parseClaim(request);
  if (!parsed.ok) return parsed.response;
  // Into the pool of the environment the console shows.
  return proxyClaim(parsed.body, parsed.key, request.signal, {}, consoleEnvironment(cookies));
};
