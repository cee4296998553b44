/**
 * OpenRouter: one API key per instance, through OpenRouter's key-management API (a management key as
 * Bearer, https://openrouter.ai/docs/api/api-reference/api-keys). The key is named after the instance
 * (`convos-<pool>-<instanceId>`), carries a spending cap that resets monthly, and is deleted on destroy.
 *
 * OpenRouter has no idempotency key for key creation and returns the key string only in the creation
 * response, so create cannot adopt: a key under our name that reaches create was never recorded (its
 * secret is lost), and create deletes it before making a fresh one.
 */
import { ProviderUnavailableError } from '../../contracts/provider-errors';
import type { LlmCredits, LlmKeyUsage } from '../../contracts/resources';
import { HttpClient, ignoreNotFound } from './http';
import {
  type CreatedResource,
  type HeldResource,
  instanceIdFromName,
  type ResourceContext,
  type ResourceProvider,
  resourceNamePrefix,
} from './types';

export const OPENROUTER_BASE_URL = 'https://openrouter.ai/api/v1';

export interface OpenRouterKeysOptions {
  /** A management (provisioning) key: it can manage keys, not call models. Never given to instances. */
  managementKey: string;
  /** The cap each instance key gets, in USD, reset on the 1st of each month (midnight UTC). */
  monthlyLimitUsd: number;
  baseUrl?: string;
  timeoutMs?: number;
  fetch?: typeof fetch;
}

/** A key as the management API describes it (list items, `data` of GET/POST/PATCH): never the key string. */
export interface OpenRouterKey {
  hash: string;
  name: string;
  /** A masked form of the key (`sk-or-v1-0e6...1c96`). */
  label: string;
  disabled: boolean;
  limit: number | null;
  limit_remaining?: number | null;
  limit_reset?: string | null;
  usage?: number;
  created_at?: string;
  updated_at?: string | null;
}

/** Pages are fetched until one comes back empty; this only stops a server that never does. */
const MAX_PAGES = 10_000;

export class OpenRouterKeys implements ResourceProvider {
  readonly kind = 'llmKey' as const;
  readonly name = 'openrouter';
  private readonly http: HttpClient;

  constructor(private readonly opts: OpenRouterKeysOptions) {
    if (!opts.managementKey) throw new Error('openrouter: a management key is required');
    assertLimit(opts.monthlyLimitUsd);
    this.http = new HttpClient({
      baseUrl: (opts.baseUrl ?? OPENROUTER_BASE_URL).replace(/\/+$/, ''),
      provider: 'openrouter',
      headers: () => ({ authorization: `Bearer ${opts.managementKey}` }),
      timeoutMs: opts.timeoutMs,
      fetch: opts.fetch,
    });
  }

  async create(ctx: ResourceContext): Promise<CreatedResource> {
    // A key already under our name was created by an attempt whose answer never arrived (or was never
    // stored): its secret exists nowhere but OpenRouter, which never shows it again. Deleting it and
    // creating a fresh key is the only way to get a usable secret, and it leaves one key per name.
    for (const stale of await this.findByName(ctx.name)) await this.deleteKey(stale.hash);
    const created = await this.http.request<{ data?: OpenRouterKey; key?: unknown }>('POST', '/keys', {
      body: { name: ctx.name, limit: this.opts.monthlyLimitUsd, limit_reset: 'monthly' },
    });
    const data = created?.data;
    if (!data?.hash || typeof created.key !== 'string' || !created.key) {
      // Retryable: the next attempt deletes whatever this call may have created.
      throw new ProviderUnavailableError('openrouter POST /keys: answer without the key', null);
    }
    return {
      ref: data.hash,
      metadata: {
        name: data.name ?? ctx.name,
        limitUsd: String(data.limit ?? this.opts.monthlyLimitUsd),
        limitReset: data.limit_reset ?? 'monthly',
      },
      env: {},
      secret: { env: 'OPENROUTER_API_KEY', value: created.key },
    };
  }

  async destroy(ctx: ResourceContext, ref: string | null): Promise<void> {
    if (ref) await this.deleteKey(ref);
    // Also by name: two overlapping create attempts (a timed-out attempt still running while its retry
    // runs) can each leave a key under this name; none of them may outlive the instance.
    for (const stray of await this.findByName(ctx.name)) await this.deleteKey(stray.hash);
  }

  async list(poolName: string): Promise<HeldResource[]> {
    const prefix = resourceNamePrefix(poolName);
    return (await this.listKeys())
      .filter((k) => typeof k.name === 'string' && k.name.startsWith(prefix))
      .map((k) => ({ ref: k.hash, name: k.name, instanceId: instanceIdFromName(poolName, k.name) }));
  }

  /** Sets a key's spending cap (operators raise it when an agent needs more); the monthly reset stays. */
  async raiseLimit(ref: string, limitUsd: number): Promise<{ ref: string; limitUsd: number }> {
    assertLimit(limitUsd);
    const res = await this.http.request<{ data?: OpenRouterKey }>(
      'PATCH',
      `/keys/${encodeURIComponent(ref)}`,
      {
        body: { limit: limitUsd },
      },
    );
    return { ref, limitUsd: res?.data?.limit ?? limitUsd };
  }

  /** One key's facts (no secret). */
  async describe(ref: string): Promise<OpenRouterKey> {
    const res = await this.http.request<{ data: OpenRouterKey }>('GET', `/keys/${encodeURIComponent(ref)}`);
    if (!res?.data || typeof res.data !== 'object') {
      throw new ProviderUnavailableError('openrouter GET /keys/{hash}: answer without the key', null);
    }
    return res.data;
  }

  /** What a key spent against its cap (`GET /keys/{hash}`: usage, limit, limit_remaining, limit_reset). */
  async usage(ref: string): Promise<LlmKeyUsage> {
    const k = await this.describe(ref);
    const limit = usd(k.limit);
    return {
      usageUsd: usd(k.usage) ?? 0,
      limitUsd: limit,
      // Older answers may lack limit_remaining: it is the cap minus what was spent, never below zero.
      remainingUsd:
        usd(k.limit_remaining) ?? (limit === null ? null : Math.max(0, limit - (usd(k.usage) ?? 0))),
      limitReset: typeof k.limit_reset === 'string' ? k.limit_reset : null,
      disabled: k.disabled === true,
    };
  }

  /** The account's credits (`GET /credits`, management key): bought and used by every key. */
  async credits(): Promise<LlmCredits> {
    const res = await this.http.request<{ data?: { total_credits?: unknown; total_usage?: unknown } }>(
      'GET',
      '/credits',
    );
    const total = usd(res?.data?.total_credits);
    const used = usd(res?.data?.total_usage);
    if (total === null || used === null) {
      throw new ProviderUnavailableError('openrouter GET /credits: answer without the totals', null);
    }
    return { totalUsd: total, usedUsd: used };
  }

  private deleteKey(hash: string): Promise<void> {
    return ignoreNotFound(() => this.http.request('DELETE', `/keys/${encodeURIComponent(hash)}`));
  }

  private async findByName(name: string): Promise<OpenRouterKey[]> {
    return (await this.listKeys()).filter((k) => k.name === name);
  }

  /** Every key of the account, disabled ones included (an operator may have disabled one of ours). */
  private async listKeys(): Promise<OpenRouterKey[]> {
    const byHash = new Map<string, OpenRouterKey>();
    let offset = 0;
    for (let page = 0; page < MAX_PAGES; page++) {
      const res = await this.http.request<{ data?: OpenRouterKey[] }>('GET', '/keys', {
        query: { include_disabled: 'true', offset },
      });
      const items = Array.isArray(res?.data) ? res.data : [];
      // Offset paging, newest first: stop at the first empty page rather than guessing the page size.
      if (items.length === 0) break;
      offset += items.length;
      // A key created meanwhile shifts the pages by one: the same key can come twice.
      for (const k of items) if (k?.hash) byHash.set(k.hash, k);
    }
    return [...byHash.values()];
  }
}

/** A dollar amount from an answer, or null when it is missing or not a number. */
function usd(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

function assertLimit(limitUsd: number): void {
  if (!Number.isFinite(limitUsd) || limitUsd <= 0) {
    throw new Error(`openrouter: a spending limit must be a positive number of USD (got ${limitUsd})`);
  }
}
