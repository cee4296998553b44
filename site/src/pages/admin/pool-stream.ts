// Replenish or drain with progress: the console's script posts the same form here and reads an SSE stream
// of each instance's way to ready, drained or failed (src/lib/pool-progress.ts). Session + CSRF as every
// console POST; without JS the form posts to /admin/action instead.
import type { APIRoute } from 'astro';
import { poolChangeCount, requireSessionAndCsrf } from '../../lib/admin';
import type { ApiError } from '../../lib/api';
import { jsonError, readFormLimited } from '../../lib/body';
import { consoleEnvironment } from '../../lib/environment';
import { streamPoolChange } from '../../lib/pool-progress';

export const POST: APIRoute = async ({ request, cookies }) => {
  const read = await readFormLimited(request);
  if (!read.ok) return read.response;
  const form = read.value;
  const gate = requireSessionAndCsrf(cookies, form.get('csrf') ?? request.headers.get('x-csrf-token'));
  if (!gate.ok) return gate.response;
  const kind = form.get('action');
  if (kind !== 'replenish' && kind !== 'drain')
    return jsonError(400, 'BAD_ACTION', 'Only replenish and drain report progress.');
  let count: number;
  try {
    count = poolChangeCount(form);
  } catch (err) {
    const e = err as ApiError;
    return jsonError(400, e.code, e.message);
  }
  return streamPoolChange(consoleEnvironment(cookies), kind, count, request.signal);
};
