// What the runtime tells the pool on its own, from what the convos channel reports (its status route):
// - a join was accepted (the creator let the agent in) → the claim leaves `pending_acceptance`
//   (`POST ${POOL_API_URL}/api/pool/self/conversation` `{ requestId, conversationId }`);
// - the conversation ended for the agent (removed, exploded, it left) → the pool destroys the instance
//   (`POST ${POOL_API_URL}/api/pool/self-destruct` `{ reason }`). Each report is sent until the pool
// acknowledges it and then never again (acknowledged keys are kept in the state dir, so a restart does
// not repeat them); a pool that fails or cannot be reached is retried with backoff, one attempt at a time.
import { existsSync, readFileSync } from 'node:fs';
import type { ChannelConversation } from './channel-client.ts';
import { writeAtomic } from './provision-store.ts';

export interface PoolReportsDeps {
  poolApiUrl: string | null;
  instanceId: string;
  instanceToken: string;
  /** Where acknowledged reports are kept (statePaths().poolReports). */
  file: string;
  log: (line: string) => void;
  fetch?: typeof fetch;
  /** Delay before retry n (0-based); default 1 s doubling to 60 s. */
  retryDelayMs?: (attempt: number) => number;
}

const POOL_TIMEOUT_MS = 10_000;
const defaultDelay = (attempt: number) => Math.min(60_000, 1_000 * 2 ** Math.min(attempt, 10));

interface Pending {
  path: string;
  body: unknown;
  attempt: number;
  timer: NodeJS.Timeout | null;
  inFlight: boolean;
}

export class PoolReports {
  private readonly done: Set<string>;
  private readonly pending = new Map<string, Pending>();
  private stopped = false;
  private warnedNoPool = false;

  constructor(private readonly deps: PoolReportsDeps) {
    this.done = new Set(this.load());
  }

  private load(): string[] {
    if (!existsSync(this.deps.file)) return [];
    try {
      const parsed = JSON.parse(readFileSync(this.deps.file, 'utf8')) as { done?: unknown };
      return Array.isArray(parsed.done) ? parsed.done.filter((k): k is string => typeof k === 'string') : [];
    } catch {
      return [];
    }
  }

  /** What the channel says about the conversation, at each poll: the reports it calls for. */
  observe(conversation: ChannelConversation | null): void {
    if (!conversation) return;
    const { requestId, conversationId, status, exit } = conversation;
    // Also for a join accepted within the provision's own wait: the pool answers that one as a repeat.
    if (status === 'joined' && conversationId) {
      this.report(`joined:${requestId}`, '/api/pool/self/conversation', { requestId, conversationId });
    }
    if (exit) this.report(`exit:${requestId}`, '/api/pool/self-destruct', { reason: exit });
  }

  /** Sends `body` to the pool's `path` once for `key` (a repeat while pending or after success is a no-op). */
  report(key: string, path: string, body: unknown): void {
    if (this.stopped || this.done.has(key) || this.pending.has(key)) return;
    if (!this.deps.poolApiUrl) {
      if (!this.warnedNoPool)
        this.deps.log(`[runtime] cannot tell the pool (${key}): POOL_API_URL is not set`);
      this.warnedNoPool = true;
      return;
    }
    const entry: Pending = { path, body, attempt: 0, timer: null, inFlight: false };
    this.pending.set(key, entry);
    void this.attempt(key, entry);
  }

  /** Reports not yet acknowledged. */
  get waiting(): number {
    return this.pending.size;
  }

  isDone(key: string): boolean {
    return this.done.has(key);
  }

  stop(): void {
    this.stopped = true;
    for (const p of this.pending.values()) if (p.timer) clearTimeout(p.timer);
    this.pending.clear();
  }

  private async attempt(key: string, entry: Pending): Promise<void> {
    if (this.stopped || entry.inFlight) return;
    entry.inFlight = true;
    let outcome: 'done' | 'retry' | 'refused';
    let detail: string;
    try {
      const res = await (this.deps.fetch ?? fetch)(`${this.deps.poolApiUrl}${entry.path}`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${this.deps.instanceId}:${this.deps.instanceToken}`,
          'content-type': 'application/json',
        },
        body: JSON.stringify(entry.body),
        signal: AbortSignal.timeout(POOL_TIMEOUT_MS),
      });
      await res.body?.cancel().catch(() => {});
      detail = `the pool answered ${res.status}`;
      // 5xx, 429 and 408 are the pool's trouble (retry); any other 4xx will not change by repeating it.
      outcome = res.ok
        ? 'done'
        : res.status >= 500 || res.status === 429 || res.status === 408
          ? 'retry'
          : 'refused';
    } catch (err) {
      detail = (err as Error).name === 'TimeoutError' ? 'the pool timed out' : 'the pool is unreachable';
      outcome = 'retry';
    }
    entry.inFlight = false;
    if (this.stopped) return;
    if (outcome === 'retry') {
      const delay = (this.deps.retryDelayMs ?? defaultDelay)(entry.attempt++);
      this.deps.log(`[runtime] told the pool ${key}: ${detail}; retrying in ${delay} ms`);
      entry.timer = setTimeout(() => void this.attempt(key, entry), delay);
      entry.timer.unref?.();
      return;
    }
    this.pending.delete(key);
    this.done.add(key);
    writeAtomic(this.deps.file, JSON.stringify({ done: [...this.done] }));
    this.deps.log(
      outcome === 'done' ? `[runtime] told the pool ${key}` : `[runtime] the pool refused ${key} (${detail})`,
    );
  }
}
