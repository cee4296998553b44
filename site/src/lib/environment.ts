// The console's pool environment: which configured API (SITE_ENVIRONMENTS) an operator is steering, kept by
// name in a cookie. Only names ever reach the browser; URLs and keys stay in the server's configuration.
import type { AstroCookies } from 'astro';
import { config, type SiteEnvironment } from './config';
import { cookieOptions } from './sessions';

export const ENV_COOKIE = 'convos_env';

/** The environment the console shows: the cookie's, when it names a configured one, else the first. */
export function consoleEnvironment(cookies: AstroCookies): SiteEnvironment {
  const { environments } = config();
  const name = cookies.get(ENV_COOKIE)?.value;
  return environments.find((e) => e.name === name) ?? (environments[0] as SiteEnvironment);
}

/** Remembers the operator's choice; false when `name` is not a configured environment (nothing changes). */
export function selectEnvironment(cookies: AstroCookies, url: URL, name: string | null): boolean {
  const env = config().environments.find((e) => e.name === name);
  if (!env) return false;
  cookies.set(ENV_COOKIE, env.name, cookieOptions(url, 30 * 24 * 3600));
  return true;
}

/** The names an operator can pick from (what the switcher shows). */
export const environmentNames = (): string[] => config().environments.map((e) => e.name);

/** The instance's workflow (`instance-<id>`) in that environment's Temporal Web UI. */
export function workflowUrl(env: SiteEnvironment, instanceId: string): string {
  return `${env.temporalUiUrl}/namespaces/${encodeURIComponent(env.temporalNamespace)}/workflows/instance-${encodeURIComponent(instanceId)}`;
}

/** Every workflow of that environment's namespace in its Temporal Web UI. */
export function workflowsUrl(env: SiteEnvironment): string {
  return `${env.temporalUiUrl}/namespaces/${encodeURIComponent(env.temporalNamespace)}/workflows`;
}

const RAILWAY_PROJECT_RE = /^[A-Za-z0-9-]{1,64}$/;

/** The instance's Railway project (its compute resource's ref, when Railway runs it), or null. */
export function railwayProjectUrl(
  resources: Array<{ kind: string; provider: string; ref: string }>,
): string | null {
  const compute = resources.find((r) => r.kind === 'compute' && r.provider === 'railway');
  if (!compute || !RAILWAY_PROJECT_RE.test(compute.ref)) return null;
  return `https://railway.com/project/${compute.ref}`;
}
