// Admin console helpers: session gate, CSRF check on POSTs, flash messages, API actions.
import type { AstroCookies } from 'astro';
import { ApiError, call } from './api';
import { jsonError } from './body';
import type { SiteEnvironment } from './config';
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

/** A cap in USD as the API takes it: more than 0, at most 100000, cents at most. */
function usdAmount(v: string | null): number {
  const n = Number(v);
  if (typeof v !== 'string' || !/^\d{1,6}(\.\d{1,2})?$/.test(v.trim()) || !(n > 0) || n > 100_000) {
    throw new ApiError(400, 'BAD_INPUT', 'Monthly cap must be an amount in USD above 0 and at most 100000.');
  }
  return n;
}

export type PoolChange = 'replenish' | 'drain';

/** Replenish or drain `count` instances; answers the ids started / being drained. */
export async function changePool(env: SiteEnvironment, kind: PoolChange, n: number): Promise<string[]> {
  const r = await call<{ started?: string[]; draining?: string[] }>(`/api/pool/${kind}`, {
    method: 'POST',
    auth: true,
    body: { count: n },
    env,
  });
  return (kind === 'replenish' ? r.started : r.draining) ?? [];
}

/** The replenish/drain form's count. */
export const poolChangeCount = (form: FormFields): number => count(form.get('count'), 1, 20, 'Count');

/** Runs one console action against the environment's API; returns a human summary or throws ApiError. */
export async function runAction(form: FormFields, env: SiteEnvironment): Promise<string> {
  const action = form.get('action');
  const api = <T>(path: string, opts: Parameters<typeof call>[1]) => call<T>(path, { ...opts, env });
  switch (action) {
    case 'replenish': {
      const started = await changePool(env, 'replenish', poolChangeCount(form));
      return `Started ${started.length} new instance(s).`;
    }
    case 'drain': {
      const draining = await changePool(env, 'drain', poolChangeCount(form));
      return `Draining ${draining.length} idle/starting instance(s).`;
    }
    case 'llm-limit': {
      const id = instanceId(form.get('id'));
      const monthlyLimitUsd = usdAmount(form.get('monthlyLimitUsd'));
      const r = await api<{ monthlyLimitUsd: number }>(`/api/pool/instances/${id}/llm-limit`, {
        method: 'PUT',
        auth: true,
        body: { monthlyLimitUsd },
      });
      return `Monthly LLM cap of ${decodeURIComponent(id)} set to ${r.monthlyLimitUsd} USD.`;
    }
    case 'target': {
      const targetIdle = count(form.get('targetIdle'), 0, 1000, 'Target idle');
      const rawMax = form.get('maxTotal');
      const body: { targetIdle: number; maxTotal?: number } = { targetIdle };
      if (typeof rawMax === 'string' && rawMax.trim() !== '')
        body.maxTotal = count(rawMax, 1, 10000, 'Max total');
      const r = await api<{ targetIdle: number; maxTotal: number }>('/api/pool/target', {
        method: 'PUT',
        auth: true,
        body,
      });
      return `Target set: ${r.targetIdle} idle, at most ${r.maxTotal} in total.`;
    }
    case 'reconcile':
      await api('/api/pool/reconcile', { method: 'POST', auth: true });
      return 'Reconcile started.';
    case 'kill': {
      const id = instanceId(form.get('id'));
      await api(`/api/pool/instances/${id}`, { method: 'DELETE', auth: true });
      return `Instance ${decodeURIComponent(id)} is being destroyed.`;
    }
    case 'dismiss': {
      const id = instanceId(form.get('id'));
      await api(`/api/pool/crashed/${id}`, { method: 'DELETE', auth: true });
      return `Instance ${decodeURIComponent(id)} dismissed; it is being cleaned up.`;
    }
    case 'retry': {
      const id = instanceId(form.get('id'));
      await api(`/api/pool/instances/${id}/retry`, { method: 'POST', auth: true });
      return `Retrying instance ${decodeURIComponent(id)} from its failed step.`;
    }
    default:
      throw new ApiError(400, 'BAD_ACTION', 'Unknown action.');
  }
}
