// When this instance's conversations last saw a message: `/pool/health.lastActivityAt`, which the pool uses
// to reclaim anonymous claims whose conversation stays idle. Sources: the local chat page (a message
// received, a reply sent) and the convos plugin inside the gateway (`GET /convos/status.lastActivityAt`,
// polled with the channel state). The value only moves forward and is kept in STATE_DIR/activity.json, so
// neither a gateway restart (the plugin forgets) nor a runtime restart turns an active conversation into
// one that looks idle or never used.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** A time reported by the plugin may be ahead of ours by at most this much (same machine: clock noise). */
const MAX_SKEW_MS = 60_000;
/** Persist at most this often: activity can be a message per second, the file needs no such precision. */
const PERSIST_EVERY_MS = 5_000;

function parse(value: unknown, now: number): number | null {
  if (typeof value !== 'string') return null;
  const t = Date.parse(value);
  // Only ISO times we could have written ourselves; nothing from the future.
  if (!Number.isFinite(t) || new Date(t).toISOString() !== value || t > now + MAX_SKEW_MS) return null;
  return t;
}

export class ActivityClock {
  private last: number | null = null;
  private persisted: number | null = null;
  private lastWrite = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly file: string | null,
    private readonly now: () => number = Date.now,
  ) {
    if (!file) return;
    try {
      const t = parse(
        (JSON.parse(readFileSync(file, 'utf8')) as { lastActivityAt?: unknown }).lastActivityAt,
        this.now(),
      );
      this.last = t;
      this.persisted = t;
    } catch {
      // No file yet, or unreadable: no activity known (null), never a made-up time.
    }
  }

  /** A message was received or sent just now. */
  record(): void {
    this.advance(this.now());
  }

  /** A time reported by another component (the convos plugin); ignored unless it is valid and newer. */
  merge(value: unknown): void {
    const t = parse(value, this.now());
    if (t !== null) this.advance(t);
  }

  lastActivityAt(): string | null {
    return this.last === null ? null : new Date(this.last).toISOString();
  }

  /** Writes a pending value now (at shutdown). */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.write();
  }

  private advance(t: number): void {
    if (this.last !== null && t <= this.last) return;
    this.last = t;
    if (!this.file || this.timer) return;
    const wait = this.lastWrite + PERSIST_EVERY_MS - this.now();
    if (wait <= 0) {
      this.write();
      return;
    }
    this.timer = setTimeout(() => {
      this.timer = null;
      this.write();
    }, wait);
    this.timer.unref();
  }

  private write(): void {
    if (!this.file || this.last === null || this.last === this.persisted) return;
    this.lastWrite = this.now();
    try {
      mkdirSync(path.dirname(this.file), { recursive: true });
      const tmp = `${this.file}.tmp`;
      writeFileSync(tmp, `${JSON.stringify({ lastActivityAt: new Date(this.last).toISOString() })}\n`, {
        mode: 0o600,
      });
      renameSync(tmp, this.file);
      this.persisted = this.last;
    } catch {
      // Best effort: the in-memory value is still right; the next activity tries again.
    }
  }
}
