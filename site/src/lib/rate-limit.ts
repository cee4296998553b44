// Per-client fixed-window rate limit for the public claim proxy (in memory: one site process).
// Retries of the same claim (same Idempotency-Key) are free, so waiting on an empty pool
// does not use up a visitor's allowance.

interface Window {
  start: number;
  keys: Set<string>;
}

export class ClaimRateLimiter {
  private readonly windows = new Map<string, Window>();

  constructor(
    private readonly limit: number,
    private readonly windowMs = 60_000,
  ) {}

  /** Returns 0 when allowed, else the seconds to wait. */
  check(client: string, idempotencyKey: string, now = Date.now()): number {
    this.sweep(now);
    let w = this.windows.get(client);
    if (!w || now - w.start >= this.windowMs) {
      w = { start: now, keys: new Set() };
      this.windows.set(client, w);
    }
    if (w.keys.has(idempotencyKey)) return 0;
    if (w.keys.size >= this.limit) return Math.max(1, Math.ceil((w.start + this.windowMs - now) / 1000));
    w.keys.add(idempotencyKey);
    return 0;
  }

  private sweep(now: number): void {
    if (this.windows.size < 10_000) return;
    for (const [k, w] of this.windows) if (now - w.start >= this.windowMs) this.windows.delete(k);
  }
}
