// Server-side settings, read from the environment at request time (never bundled for the browser).

export interface SiteConfig {
  /** Base URL of the pool API (Fastify). */
  apiUrl: string;
  /** Operator key: sent to the API as a bearer token and used as the admin login secret. */
  apiKey: string;
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
  return {
    apiUrl: (process.env.POOL_API_URL || 'http://127.0.0.1:3001').replace(/\/+$/, ''),
    apiKey: process.env.POOL_API_KEY ?? '',
    publicUrl: process.env.SITE_URL ? process.env.SITE_URL.replace(/\/+$/, '') : undefined,
    temporalUiUrl: (process.env.TEMPORAL_UI_URL || 'http://localhost:8233').replace(/\/+$/, ''),
    temporalNamespace: process.env.TEMPORAL_NAMESPACE || 'default',
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
