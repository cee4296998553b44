// Server-side settings, read from the environment at request time (never bundled for the browser).

/** One pool deployment the console can steer: its API and key (server-side only) and its Temporal Web UI. */
export interface SiteEnvironment {
  /** Shown in the switcher and kept in the console's environment cookie (never a secret). */
  name: string;
  apiUrl: string;
  apiKey: string;
  temporalUiUrl: string;
  temporalNamespace: string;
}

export interface SiteConfig {
  /** Base URL of the pool API (Fastify): the first environment's. Public pages always use it. */
  apiUrl: string;
  /** Operator key: the first environment's; sent to its API and used as the console login secret. */
  apiKey: string;
  /**
   * The pool environments the console switches between (`SITE_ENVIRONMENTS`), the first being the default;
   * without that variable one, `default`, from POOL_API_URL / POOL_API_KEY / TEMPORAL_UI_URL.
   */
  environments: SiteEnvironment[];
  /** Public origin of the site for absolute links in OG meta and QR codes; else the request origin. */
  publicUrl: string | undefined;
  temporalUiUrl: string;
  temporalNamespace: string;
  /** Claims allowed per client IP per minute (public claim proxy). */
  claimRateLimit: number;
  /** How long one claim attempt waits for an idle agent (API maxWaitMs); the page then retries. */
  claimMaxWaitMs: number;
  /** Admin session lifetime. */
  sessionTtlMs: number;
  /**
   * Reverse proxies of ours in front of the site, each appending to X-Forwarded-For: the client address is
   * the entry that many places from the right end (0: the socket's peer address; the header is ignored).
   */
  trustedProxyHops: number;
  /** Salt of the visitor ids sent to the API (`X-Client-Id`); unset: a random salt per process. */
  clientIdSalt: string | undefined;
  /** Force the Secure cookie flag on/off; undefined = on unless the site is served from localhost. */
  cookieSecure: boolean | undefined;
}

function intEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer, got "${raw}"`);
  return n;
}

function countEnv(name: string, fallback: number, max: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n > max)
    throw new Error(`${name} must be a whole number from 0 to ${max}, got "${raw}"`);
  return n;
}

function boolEnv(name: string): boolean | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return undefined;
  return raw === '1' || raw.toLowerCase() === 'true';
}

const ENV_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$/;
const trimSlash = (s: string) => s.replace(/\/+$/, '');

function httpUrl(v: unknown, what: string): string {
  let url: URL | null = null;
  try {
    url = typeof v === 'string' ? new URL(v) : null;
  } catch {}
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.username || url.password)
    throw new Error(`SITE_ENVIRONMENTS: ${what} must be an http(s) URL without credentials`);
  return trimSlash(url.toString());
}

/** SITE_ENVIRONMENTS, parsed once per distinct value: a JSON array of {name, apiUrl, apiKey, temporalUiUrl?, temporalNamespace?}. */
let parsedEnvironments: { raw: string; list: SiteEnvironment[] } | undefined;
function environmentsFrom(
  raw: string,
  defaults: Pick<SiteEnvironment, 'temporalUiUrl' | 'temporalNamespace'>,
) {
  if (parsedEnvironments?.raw === raw) return parsedEnvironments.list;
  let data: unknown;
  try {
    data = JSON.parse(raw);
  } catch {
    throw new Error(
      'SITE_ENVIRONMENTS must be a JSON array of {name, apiUrl, apiKey, temporalUiUrl?, temporalNamespace?}',
    );
  }
  if (!Array.isArray(data) || data.length === 0 || data.length > 20)
    throw new Error('SITE_ENVIRONMENTS must list 1 to 20 environments');
  const list = data.map((e: Record<string, unknown>, i): SiteEnvironment => {
    if (!e || typeof e !== 'object') throw new Error(`SITE_ENVIRONMENTS[${i}] must be an object`);
    if (typeof e.name !== 'string' || !ENV_NAME_RE.test(e.name))
      throw new Error(`SITE_ENVIRONMENTS[${i}].name must be 1-32 letters, digits, - or _`);
    if (typeof e.apiKey !== 'string' || e.apiKey === '')
      throw new Error(`SITE_ENVIRONMENTS[${i}].apiKey must be a non-empty string`);
    const ns = e.temporalNamespace;
    if (ns !== undefined && (typeof ns !== 'string' || ns === ''))
      throw new Error(`SITE_ENVIRONMENTS[${i}].temporalNamespace must be a non-empty string`);
    return {
      name: e.name,
      apiUrl: httpUrl(e.apiUrl, `[${i}].apiUrl`),
      apiKey: e.apiKey,
      temporalUiUrl:
        e.temporalUiUrl === undefined
          ? defaults.temporalUiUrl
          : httpUrl(e.temporalUiUrl, `[${i}].temporalUiUrl`),
      temporalNamespace: (ns as string | undefined) ?? defaults.temporalNamespace,
    };
  });
  if (new Set(list.map((e) => e.name)).size !== list.length)
    throw new Error('SITE_ENVIRONMENTS: environment names must be distinct');
  parsedEnvironments = { raw, list };
  return list;
}

export function config(): SiteConfig {
  if (process.env.SITE_TRUST_PROXY) {
    // It took the left end of X-Forwarded-For, which the client writes: refuse to run with it silently ignored.
    throw new Error(
      'SITE_TRUST_PROXY is no longer supported: set SITE_TRUSTED_PROXY_HOPS to the number of proxies in front of the site',
    );
  }
  const salt = process.env.SITE_CLIENT_ID_SALT;
  if (salt !== undefined && salt !== '' && salt.length < 16)
    throw new Error('SITE_CLIENT_ID_SALT must be at least 16 characters');
  const temporal = {
    temporalUiUrl: trimSlash(process.env.TEMPORAL_UI_URL || 'http://localhost:8233'),
    temporalNamespace: process.env.TEMPORAL_NAMESPACE || 'default',
  };
  const environments = process.env.SITE_ENVIRONMENTS
    ? environmentsFrom(process.env.SITE_ENVIRONMENTS, temporal)
    : [
        {
          name: 'default',
          apiUrl: trimSlash(process.env.POOL_API_URL || 'http://127.0.0.1:3001'),
          apiKey: process.env.POOL_API_KEY ?? '',
          ...temporal,
        },
      ];
  const first = environments[0] as SiteEnvironment;
  return {
    apiUrl: first.apiUrl,
    apiKey: first.apiKey,
    environments,
    publicUrl: process.env.SITE_URL ? process.env.SITE_URL.replace(/\/+$/, '') : undefined,
    temporalUiUrl: first.temporalUiUrl,
    temporalNamespace: first.temporalNamespace,
    claimRateLimit: intEnv('SITE_CLAIM_RATE_LIMIT', 10),
    claimMaxWaitMs: Math.min(intEnv('SITE_CLAIM_MAX_WAIT_MS', 20_000), 60_000),
    sessionTtlMs: intEnv('ADMIN_SESSION_TTL_MS', 8 * 60 * 60 * 1000),
    trustedProxyHops: countEnv('SITE_TRUSTED_PROXY_HOPS', 0, 10),
    clientIdSalt: salt || undefined,
    cookieSecure: boolEnv('SITE_COOKIE_SECURE'),
  };
}

/** Absolute origin for links that leave the page (OG tags, QR codes). */
export function publicOrigin(url: URL): string {
  return config().publicUrl ?? url.origin;
}
