/**
 * Test fixture: OpenRouter's key-management API as our adapter uses it, same wire format
 * (https://openrouter.ai/docs/api/api-reference/api-keys):
 *   GET    /api/v1/keys?offset&include_disabled  → 200 {data: Key[]}, newest first, `pageSize` a page
 *   POST   /api/v1/keys {name, limit?, limit_reset?, include_byok_in_limit?} → 201 {data: Key, key}
 *   GET    /api/v1/keys/{hash}                   → 200 {data: Key} | 404
 *   PATCH  /api/v1/keys/{hash} {name?, disabled?, limit?, limit_reset?} → 200 {data: Key} | 404
 *   DELETE /api/v1/keys/{hash}                   → 200 {deleted: true} | 404
 *   GET    /api/v1/key  (Bearer = a created key) → 200 {data: {label, limit, usage, …}}: proves a key works
 *   GET    /api/v1/credits                       → 200 {data: {total_credits, total_usage}} (management key)
 * Test controls (never faulted): PUT /_standin/keys/{hash}/usage {usage} sets what a key has spent (tests
 * in another process, such as the site's browser tests, cannot reach `inventory`); PUT /_standin/credits
 * {total_credits} sets what the account bought.
 * Errors are `{error: {code, message}}` with the same HTTP status; management routes want the management
 * key as Bearer (else 401). Like the real API, names are not unique and the key string is only returned by
 * the POST that creates it.
 */
import { randomBytes } from 'node:crypto';
import {
  Inventory,
  type JsonRequest,
  type JsonResponse,
  type ProviderServer,
  startProviderServer,
} from './provider-http';

export interface StandinKey {
  /** = hash (the Inventory's id). */
  id: string;
  name: string;
  hash: string;
  /** The secret, as OpenRouter would hand it out once. */
  key: string;
  label: string;
  disabled: boolean;
  limit: number | null;
  limit_reset: 'daily' | 'weekly' | 'monthly' | null;
  include_byok_in_limit: boolean;
  usage: number;
  created_at: string;
  updated_at: string | null;
  seq: number;
}

export interface OpenRouterStandin extends ProviderServer {
  /** What the adapter's `baseUrl` option takes (`<url>/api/v1`). */
  baseUrl: string;
  managementKey: string;
  inventory: Inventory<StandinKey>;
  /** Live keys carrying `name` (names are not unique at OpenRouter). */
  keysNamed(name: string): StandinKey[];
  /**
   * The most live keys any one name ever had at the same time. A lost create response makes us replace a
   * key (its secret is shown only once), so creations may repeat; two live at once never may.
   */
  maxLiveNamed(): number;
  /** What the account bought (USD; `GET /credits` total_credits). */
  totalCredits: number;
}

const RESETS = ['daily', 'weekly', 'monthly'] as const;
const hex = (bytes: number) => randomBytes(bytes).toString('hex');
const error = (status: number, message: string): JsonResponse => ({
  status,
  body: { error: { code: status, message } },
});

/** Key facts as the API shows them: everything but the key string. */
function view(k: StandinKey) {
  return {
    hash: k.hash,
    name: k.name,
    label: k.label,
    disabled: k.disabled,
    limit: k.limit,
    limit_remaining: k.limit === null ? null : Math.max(0, k.limit - k.usage),
    limit_reset: k.limit_reset,
    include_byok_in_limit: k.include_byok_in_limit,
    usage: k.usage,
    usage_daily: k.usage,
    usage_weekly: k.usage,
    usage_monthly: k.usage,
    byok_usage: 0,
    byok_usage_daily: 0,
    byok_usage_weekly: 0,
    byok_usage_monthly: 0,
    created_at: k.created_at,
    updated_at: k.updated_at,
  };
}

function validLimit(v: unknown): v is number | null | undefined {
  return v === undefined || v === null || (typeof v === 'number' && Number.isFinite(v) && v >= 0);
}
function validReset(v: unknown): v is StandinKey['limit_reset'] | undefined {
  return v === undefined || v === null || RESETS.includes(v as (typeof RESETS)[number]);
}

export async function startOpenRouterStandin(
  options: { managementKey?: string; pageSize?: number; totalCredits?: number } = {},
): Promise<OpenRouterStandin> {
  const managementKey = options.managementKey ?? `sk-or-v1-${hex(32)}`;
  const pageSize = options.pageSize ?? 100;
  const inventory = new Inventory<StandinKey>();
  let seq = 0;
  let maxLive = 0;
  const account = { totalCredits: options.totalCredits ?? 100, retiredUsage: 0 };

  const bearer = (req: JsonRequest) => /^Bearer (.+)$/.exec(String(req.headers.authorization ?? ''))?.[1];

  const handler = (req: JsonRequest): JsonResponse => {
    const path = req.path.replace(/\/+$/, '');
    const token = bearer(req);

    // The key's own view of itself: what a runtime holding the key can call.
    if (req.method === 'GET' && path === '/api/v1/key') {
      const key = inventory.list().find((k) => k.key === token && !k.disabled);
      if (!key) return error(401, 'User not found.');
      return {
        status: 200,
        body: { data: { ...view(key), is_free_tier: false, is_provisioning_key: false } },
      };
    }

    const control = /^\/_standin\/keys\/([^/]+)\/usage$/.exec(path);
    if (req.method === 'PUT' && control) {
      const item = inventory.items.get(decodeURIComponent(control[1] ?? ''));
      const usage = (req.body as { usage?: unknown } | null)?.usage;
      if (!item) return error(404, 'API key not found');
      if (typeof usage !== 'number' || !Number.isFinite(usage) || usage < 0) return error(400, 'usage');
      item.usage = usage;
      return { status: 200, body: { data: view(item) } };
    }
    if (req.method === 'PUT' && path === '/_standin/credits') {
      const total = (req.body as { total_credits?: unknown } | null)?.total_credits;
      if (typeof total !== 'number' || !Number.isFinite(total) || total < 0)
        return error(400, 'total_credits');
      account.totalCredits = total;
      return { status: 200, body: { ok: true } };
    }

    const isCredits = path === '/api/v1/credits';
    if (!path.startsWith('/api/v1/keys') && !isCredits) return error(404, 'Not Found');
    if (!token) return error(401, 'No auth credentials found');
    if (token !== managementKey) return error(401, 'Invalid management key');

    if (isCredits) {
      if (req.method !== 'GET') return error(405, 'Method Not Allowed');
      // Usage of deleted keys stays spent.
      const live = inventory.list().reduce((sum, k) => sum + k.usage, 0);
      return {
        status: 200,
        body: { data: { total_credits: account.totalCredits, total_usage: account.retiredUsage + live } },
      };
    }

    if (path === '/api/v1/keys') {
      if (req.method === 'GET') {
        const offset = Number(req.query.get('offset') ?? '0');
        if (!Number.isInteger(offset) || offset < 0)
          return error(400, 'offset must be a non-negative integer');
        const includeDisabled = req.query.get('include_disabled') === 'true';
        const page = inventory
          .list()
          .filter((k) => includeDisabled || !k.disabled)
          .sort((a, b) => b.seq - a.seq)
          .slice(offset, offset + pageSize);
        return { status: 200, body: { data: page.map(view) } };
      }
      if (req.method === 'POST') {
        const b = (req.body ?? {}) as Record<string, unknown>;
        if (typeof b.name !== 'string' || b.name.trim() === '') return error(400, 'name is required');
        if (!validLimit(b.limit)) return error(400, 'limit must be a non-negative number');
        if (!validReset(b.limit_reset))
          return error(400, 'limit_reset must be daily, weekly, monthly or null');
        const key = `sk-or-v1-${hex(32)}`;
        const hash = hex(32);
        const now = new Date().toISOString();
        const item = inventory.add({
          id: hash,
          hash,
          key,
          name: b.name,
          label: `${key.slice(0, 12)}...${key.slice(-4)}`,
          disabled: false,
          limit: b.limit ?? null,
          limit_reset: b.limit_reset ?? null,
          include_byok_in_limit: b.include_byok_in_limit === true,
          usage: 0,
          created_at: now,
          updated_at: null,
          seq: ++seq,
        });
        const live = inventory.list().filter((k) => k.name === item.name).length;
        maxLive = Math.max(maxLive, live);
        return { status: 201, body: { data: view(item), key } };
      }
      return error(405, 'Method Not Allowed');
    }

    const hash = decodeURIComponent(path.slice('/api/v1/keys/'.length));
    const item = inventory.items.get(hash);
    if (!item) return error(404, 'API key not found');
    if (req.method === 'GET') return { status: 200, body: { data: view(item) } };
    if (req.method === 'DELETE') {
      account.retiredUsage += item.usage;
      inventory.remove(hash);
      return { status: 200, body: { deleted: true } };
    }
    if (req.method === 'PATCH') {
      const b = (req.body ?? {}) as Record<string, unknown>;
      if (b.name !== undefined && (typeof b.name !== 'string' || b.name.trim() === '')) {
        return error(400, 'name must be a non-empty string');
      }
      if (b.disabled !== undefined && typeof b.disabled !== 'boolean')
        return error(400, 'disabled must be a boolean');
      if (!validLimit(b.limit)) return error(400, 'limit must be a non-negative number');
      if (!validReset(b.limit_reset)) return error(400, 'limit_reset must be daily, weekly, monthly or null');
      if (typeof b.name === 'string') item.name = b.name;
      if (typeof b.disabled === 'boolean') item.disabled = b.disabled;
      if (b.limit !== undefined) item.limit = b.limit;
      if (b.limit_reset !== undefined) item.limit_reset = b.limit_reset;
      if (typeof b.include_byok_in_limit === 'boolean') item.include_byok_in_limit = b.include_byok_in_limit;
      item.updated_at = new Date().toISOString();
      return { status: 200, body: { data: view(item) } };
    }
    return error(405, 'Method Not Allowed');
  };

  const server = await startProviderServer(handler);
  return {
    ...server,
    baseUrl: `${server.url}/api/v1`,
    managementKey,
    inventory,
    keysNamed: (name) => inventory.list().filter((k) => k.name === name),
    maxLiveNamed: () => maxLive,
    get totalCredits() {
      return account.totalCredits;
    },
    set totalCredits(v: number) {
      account.totalCredits = v;
    },
  };
}
