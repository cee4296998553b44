// The console's environment switcher: remembers which configured pool (SITE_ENVIRONMENTS) the operator
// steers, by name, in a cookie. Session + CSRF; an unknown name is a 400 and changes nothing.
import type { APIRoute } from 'astro';
import { backTo, flash, requireSessionAndCsrf } from '../../lib/admin';
import { jsonError, readFormLimited } from '../../lib/body';
import { selectEnvironment } from '../../lib/environment';

export const POST: APIRoute = async ({ request, cookies, url, redirect }) => {
  const read = await readFormLimited(request);
  if (!read.ok) return read.response;
  const form = read.value;
  const gate = requireSessionAndCsrf(cookies, form.get('csrf') ?? request.headers.get('x-csrf-token'));
  if (!gate.ok) return gate.response;
  const name = form.get('environment');
  if (!selectEnvironment(cookies, url, name))
    return jsonError(400, 'BAD_ENVIRONMENT', 'That is not one of the configured environments.');
  flash(gate.session, 'ok', `Now showing environment ${name}.`);
  return redirect(backTo(form.get('back')), 303);
};
