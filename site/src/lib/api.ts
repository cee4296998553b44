// Server-side client for the pool API. Holds the operator key; never import this from browser code.
import { config, type SiteEnvironment } from './config';
import type {
  AgentGroups,
  Costs,
  Counts,
  InstanceDetail,
  PoolInfo,
  Template,
  TemplateSummary,
} from './types';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly retryAfter?: number,
  ) {
    super(message);
  }
}

interface CallOptions {
  method?: string;
  body?: unknown;
  auth?: boolean;
  headers?: Record<string, string>;
  timeoutMs?: number;
  /** Which pool's API (the console's environment); default: the first configured one. */
  env?: SiteEnvironment;
}

/** The first configured environment: the one public pages and the console login use. */
export const defaultEnvironment = (): SiteEnvironment => config().environments[0] as SiteEnvironment;

export function apiHeaders(
  auth: boolean,
  extra: Record<string, string> = {},
  env: SiteEnvironment = defaultEnvironment(),
): Record<string, string> {
  const h: Record<string, string> = { accept: 'application/json', ...extra };
  if (auth) h.authorization = `Bearer ${env.apiKey}`;
  return h;
}

export async function call<T>(path: string, opts: CallOptions = {}): Promise<T> {
  const env = opts.env ?? defaultEnvironment();
  const { apiUrl } = env;
  const headers = apiHeaders(opts.auth ?? false, opts.headers, env);
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(`${apiUrl}${path}`, {
      method: opts.method ?? 'GET',
      headers,
      body: opts.body === undefined ? null : JSON.stringify(opts.body),
      signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000),
    });
  } catch (err) {
    throw new ApiError(502, 'API_UNREACHABLE', `The pool API is not reachable (${(err as Error).message}).`);
  }
  const text = await res.text();
  let data: unknown = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    // Non-JSON body (e.g. a proxy error page): reported below as a generic error.
  }
  if (!res.ok) {
    const body = (data ?? {}) as { error?: string; code?: string };
    const retry = Number(res.headers.get('retry-after'));
    throw new ApiError(
      res.status,
      body.code ?? `HTTP_${res.status}`,
      body.error ?? `The pool API answered ${res.status}.`,
      Number.isFinite(retry) && retry > 0 ? retry : undefined,
    );
  }
  return data as T;
}

// The catalog rarely changes: cache it briefly, and keep serving the last good copy if the API hiccups.
const TEMPLATE_TTL_MS = 30_000;
let templateCache: { at: number; list: TemplateSummary[] } | undefined;

export async function listTemplates(): Promise<TemplateSummary[]> {
  if (templateCache && Date.now() - templateCache.at < TEMPLATE_TTL_MS) return templateCache.list;
  try {
    const list = await call<TemplateSummary[]>('/api/pool/templates');
    templateCache = { at: Date.now(), list };
    return list;
  } catch (err) {
    if (templateCache) return templateCache.list;
    throw err;
  }
}

const detailCache = new Map<string, { at: number; t: Template }>();

/** One template with instructions, or null if the API says it does not exist. */
export async function getTemplate(slug: string): Promise<Template | null> {
  const hit = detailCache.get(slug);
  if (hit && Date.now() - hit.at < TEMPLATE_TTL_MS) return hit.t;
  try {
    const t = await call<Template>(`/api/pool/templates/${encodeURIComponent(slug)}`);
    detailCache.set(slug, { at: Date.now(), t });
    return t;
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return null;
    if (hit) return hit.t;
    throw err;
  }
}

export const getCounts = (env?: SiteEnvironment) =>
  call<Counts>('/api/pool/counts', { timeoutMs: 5_000, ...(env ? { env } : {}) });
export const getInfo = (env?: SiteEnvironment) =>
  call<PoolInfo>('/api/pool/info', { timeoutMs: 5_000, ...(env ? { env } : {}) });
// The console's reads: always of the environment it shows.
export const getAgents = (env: SiteEnvironment) => call<AgentGroups>('/api/pool/agents', { auth: true, env });
export const getCosts = (env: SiteEnvironment) => call<Costs>('/api/pool/costs', { auth: true, env });
export const getInstance = (env: SiteEnvironment, id: string) =>
  call<InstanceDetail>(`/api/pool/instances/${encodeURIComponent(id)}`, { auth: true, env });
