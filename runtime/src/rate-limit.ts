// A sliding-window cap on outbound messages: an agent in a chat with strangers must not become a
// spam relay, whatever it is talked into.
export class RateLimit {
  private sent: number[] = [];

  constructor(
    private readonly max: number,
    private readonly windowMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Records one use if allowed; returns false when the cap is reached. */
  take(): boolean {
    const t = this.now();
    this.sent = this.sent.filter((s) => t - s < this.windowMs);
    if (this.sent.length >= this.max) return false;
    this.sent.push(t);
    return true;
  }
}
