/**
 * What the instance keys spent and what the account has left, read from the LLM key provider for the
 * console (the instance detail, `GET /api/pool/costs`). Each answer is kept ~60 s in this process, so a
 * console refreshing a page does not turn into a provider call each time; one read per key is in flight at
 * once. The provider being down, slow or rate-limiting never fails the route that asked: the answer is
 * "unavailable" with why (a failure is not kept, the next look asks again).
 */
import {
  ProviderError,
  ProviderNotFoundError,
  ProviderRateLimitedError,
  ProviderRejectedError,
} from '../contracts/provider-errors';
import type { LlmCredits, LlmKeyAdmin, LlmKeyUsage } from '../contracts/resources';

export const LLM_USAGE_TTL_MS = 60_000;
/** How long one read may take before the route answers without it. */
export const LLM_USAGE_DEADLINE_MS = 3_000;
/** Keys remembered at most (a fleet is far smaller; this only bounds memory). */
const MAX_ENTRIES = 10_000;

/** What the routes that show usage get besides the ApiContext (one cache per app, built in app.ts). */
export interface WithLlmUsage {
  /** null: no LLM key provider is configured. */
  llmUsage: LlmUsageCache | null;
}

export type Fetched<T> = ({ available: true; fetchedAt: string } & T) | { available: false; reason: string };

interface Entry<T> {
  at: number;
  value: Promise<Fetched<T>>;
}

/** Why a read failed, for operators: what the provider did, never its body or a header. */
function reasonOf(err: unknown): string {
  if (err instanceof DeadlineError) return `the LLM key provider did not answer within ${err.ms} ms`;
  if (err instanceof ProviderNotFoundError) return 'the LLM key provider has no such key (404)';
  if (err instanceof ProviderRateLimitedError)
    return `the LLM key provider is rate limiting (429, retry after ${Math.ceil(err.retryAfterMs / 1000)} s)`;
  if (err instanceof ProviderRejectedError)
    return `the LLM key provider refused the request (${err.status ?? 'rejected'})`;
  if (err instanceof ProviderError)
    return err.status
      ? `the LLM key provider answered ${err.status}`
      : 'the LLM key provider is not reachable or timed out';
  return 'the LLM key provider could not be read';
}

class DeadlineError extends Error {
  constructor(readonly ms: number) {
    super(`no answer within ${ms} ms`);
  }
}

function withDeadline<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineError(ms)), ms);
  });
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}

export class LlmUsageCache {
  private readonly keys = new Map<string, Entry<LlmKeyUsage>>();
  private account: Entry<LlmCredits> | null = null;

  constructor(
    private readonly admin: LlmKeyAdmin,
    private readonly ttlMs = LLM_USAGE_TTL_MS,
    private readonly deadlineMs = LLM_USAGE_DEADLINE_MS,
    private readonly now: () => number = Date.now,
  ) {}

  /** One key's usage against its cap. */
  usage(ref: string): Promise<Fetched<LlmKeyUsage>> {
    const hit = this.keys.get(ref);
    if (hit && this.now() - hit.at < this.ttlMs) return hit.value;
    if (this.keys.size >= MAX_ENTRIES) this.evictExpired();
    const entry = this.read(
      () => this.admin.usage(ref),
      () => {
        if (this.keys.get(ref) === entry) this.keys.delete(ref);
      },
    );
    this.keys.set(ref, entry);
    return entry.value;
  }

  /** The account's credits. */
  credits(): Promise<Fetched<LlmCredits>> {
    if (this.account && this.now() - this.account.at < this.ttlMs) return this.account.value;
    const entry = this.read(
      () => this.admin.credits(),
      () => {
        if (this.account === entry) this.account = null;
      },
    );
    this.account = entry;
    return entry.value;
  }

  /** Forgets a key's usage (its cap was just changed: the next look shows the new one). */
  forget(ref: string): void {
    this.keys.delete(ref);
  }

  private read<T>(fetch: () => Promise<T>, drop: () => void): Entry<T> {
    const at = this.now();
    // Through a promise, so an adapter that throws at once is an unavailable answer too, never a 500.
    const value = withDeadline(Promise.resolve().then(fetch), this.deadlineMs).then(
      (v): Fetched<T> => ({ available: true, fetchedAt: new Date(at).toISOString(), ...v }),
      (err): Fetched<T> => {
        drop();
        return { available: false, reason: reasonOf(err) };
      },
    );
    return { at, value };
  }

  private evictExpired(): void {
    const now = this.now();
    for (const [ref, e] of this.keys) if (now - e.at >= this.ttlMs) this.keys.delete(ref);
    // Still full: the oldest go first (a Map iterates in insertion order).
    for (const ref of this.keys.keys()) {
      if (this.keys.size < MAX_ENTRIES) break;
      this.keys.delete(ref);
    }
  }
}
