// Logout revokes the server-side session at once (the cookie alone is worthless afterwards).
import type { APIRoute } from 'astro';
import { requireSessionAndCsrf } from '../../lib/admin';
import { readFormLimited } from '../../lib/body';
import { revokeSession, SESSION_COOKIE } from '../../lib/sessions';

export const POST: APIRoute = async ({ request, cookies, redirect }) => {
  const read = await readFormLimited(request);
  if (!read.ok) return read.response;
  const gate = requireSessionAndCsrf(cookies, read.value.get('csrf'));
  if (!gate.ok) return gate.response;
  revokeSession(gate.session.id);
  cookies.delete(SESSION_COOKIE, { path: '/' });
  return redirect('/admin', 303);
};
