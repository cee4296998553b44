// Console actions (replenish, drain, target, kill, dismiss, retry, LLM cap) posted from HTML forms, run
// against the console's environment.
// Answers 303 back to the console with a flash message, or JSON when the caller asks for it.
import type { APIRoute } from 'astro';
import { backTo, flash, requireSessionAndCsrf, runAction } from '../../lib/admin';
import { ApiError } from '../../lib/api';
import { jsonError, readFormLimited } from '../../lib/body';
import { consoleEnvironment } from '../../lib/environment';

export const POST: APIRoute = async ({ request, cookies, redirect }) => {
  const read = await readFormLimited(request);
  if (!read.ok) return read.response;
  const form = read.value;
  const gate = requireSessionAndCsrf(cookies, form.get('csrf') ?? request.headers.get('x-csrf-token'));
  if (!gate.ok) return gate.response;
  const wantsJson = (request.headers.get('accept') ?? '').includes('application/json');
  const back = backTo(form.get('back'));
  try {
    const message = await runAction(form, consoleEnvironment(cookies));
    if (wantsJson)
      return new Response(JSON.stringify({ ok: true, message }), {
        headers: { 'content-type': 'application/json' },
      });
    flash(gate.session, 'ok', message);
  } catch (err) {
    const e = err instanceof ApiError ? err : new ApiError(500, 'INTERNAL', (err as Error).message);
    if (wantsJson) return jsonError(e.status >= 400 && e.status < 600 ? e.status : 502, e.code, e.message);
    flash(gate.session, 'error', `${e.message} (${e.code})`);
  }
  return redirect(back, 303);
};
