// Admin console helpers: session gate, CSRF check on POSTs, flash messages, API actions.
import type { AstroCookies } from 'astro';
import { ApiError, call } from './api';
import { jsonError } from './body';
import { checkCsrf, type Session, sessionFromCookies } from './sessions';
import { INSTANCE_ID_RE } from './validate';

export type Gate = { ok: true; session: Session } | { ok: false; response: Response };

/** Every state-changing admin request: a live session AND its CSRF token (form field or header). */
export function requireSessionAndCsrf(cookies: AstroCookies, token: unknown): Gate {
  const session = sessionFromCookies(cookies);
  if (!session)
    return { ok: false, response: jsonError(401, 'NOT_LOGGED_IN', 'Log in to the operator console first.') };
  if (!checkCsrf(session, token)) {
    return {
      ok: false,
      response: jsonError(403, 'BAD_CSRF', 'Missing or invalid CSRF token. Reload the page and try again.'),
    };
  }
  return { ok: true, session };
}

export function flash(session: Session, kind: 'ok' | 'error', text: string): void {
  session.flash = { kind, text };
}

export function takeFlash(session: Session): Session['flash'] {
  const f = session.flash;
  delete session.flash;
  return f;
}

/** Where a console form returns to: a path of the console, re-serialized (no header injection, ASCII only). */
export function backTo(raw: string | null): string {
  if (!raw?.startsWith('/admin')) return '/admin';
  let url: URL;
  try {
    url = new URL(raw, 'http://site.invalid');
  } catch {
    return '/admin';
  }
  if (url.origin !== 'http://site.invalid' || !/^\/admin(\/|$)/.test(url.pathname)) return '/admin';
  return `${url.pathname}${url.search}`;
}

/** The fields of a console form (see `readFormLimited`). */
export interface FormFields {
  get(name: string): string | null;
}

function count(v: string | null, min: number, max: number, what: string): number {
  const n = Number(v);
  if (typeof v !== 'string' || v.trim() === '' || !Number.isInteger(n) || n < min || n > max) {
    throw new ApiError(400, 'BAD_INPUT', `${what} must be a whole number from ${min} to ${max}.`);
  }
  return n;
}

function instanceId(v: string | null): string {
  if (typeof v !== 'string' || !INSTANCE_ID_RE.test(v))
    throw new ApiError(400, 'BAD_INPUT', 'Missing or invalid instance id.');
  return encodeURIComponent(v);
}

/** Runs one console action against the API; returns a human summary or throws ApiError. */
export async function runAction(form: FormFields): Promise<string> {
  const action = form.get('action');
  switch (action) {
    case 'replenish': {
      const n = count(form.get('count'), 1, 20, 'Count');
      const r = await call<{ started?: string[] }>('/api/pool/replenish', {
        method: 'POST',
        auth: true,
        body: { count: n },
      });
      return `Started ${r.started?.length ?? n} new instance(s).`;
    }
    case 'drain': {
      const n = count(form.get('count'), 1, 20, 'Count');
      const r = await call<{ draining?: string[] }>('/api/pool/drain', {
        method: 'POST',
        auth: true,
        body: { count: n },
      });
      return `Draining ${r.draining?.length ?? 0} idle/starting instance(s).`;
    }
    case 'target': {
      const targetIdle = count(form.get('targetIdle'), 0, 1000, 'Target idle');
      const rawMax = form.get('maxTotal');
      const body: { targetIdle: number; maxTotal?: number } = { targetIdle };
      if (typeof rawMax === 'string' && rawMax.trim() !== '')
        body.maxTotal = count(rawMax, 1, 10000, 'Max total');
      const r = await call<{ targetIdle: number; maxTotal: number }>('/api/pool/target', {
        method: 'PUT',
        auth: true,
        body,
      });
      return `Target set: ${r.targetIdle} idle, at most ${r.maxTotal} in total.`;
    }
    case 'reconcile':
      await call('/api/pool/reconcile', { method: 'POST', auth: true });
      return 'Reconcile started.';
    case 'kill': {
      const id = instanceId(form.get('id'));
      await call(`/api/pool/instances/${id}`, { method: 'DELETE', auth: true });
      return `Instance ${decodeURIComponent(id)} is being destroyed.`;
    }
    case 'dismiss': {
      const id = instanceId(form.get('id'));
      await call(`/api/pool/crashed/${id}`, { method: 'DELETE', auth: true });
      return `Instance ${decodeURIComponent(id)} dismissed; it is being cleaned up.`;
    }
    case 'retry': {
      const id = instanceId(form.get('id'));
      await call(`/api/pool/instances/${id}/retry`, { method: 'POST', auth: true });
      return `Retrying instance ${decodeURIComponent(id)} from its failed step.`;
    }
    default:
      throw new ApiError(400, 'BAD_ACTION', 'Unknown action.');
  }
}
