// Messages the agent schedules in its own conversation (its schedule_message tool, through the loopback
// outbound server): kept in STATE_DIR/scheduled.json (atomic writes), sent by a timer at their time into the
// conversation they were scheduled from, and bounded per conversation (count, spacing, horizon). The text
// is sent as written at scheduling time: no model call when it is due. Delivery is at most once: a message
// is marked `sending` on disk before it is handed over, so a crash in the middle never sends it twice
// (it is then `failed`, not repeated). Why ours and not OpenClaw's cron: docs/runtime.md, "Scheduled messages".
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { controlCharacterProblem } from '../../contracts/claim.ts';
import { writeAtomic } from './provision-store.ts';

/** Where a scheduled message goes: the Convos group it was scheduled in, or one local chat page session. */
export const SCHEDULE_TARGET_PATTERN = '^(convos:[0-9a-f]{16,128}|chat:[a-z0-9-]{8,64})$';
const TARGET = new RegExp(SCHEDULE_TARGET_PATTERN);

export interface ScheduleLimits {
  /** Pending messages one conversation may hold (SCHEDULE_MAX_PENDING). */
  maxPending: number;
  /** The least time between two messages of a conversation, and from now (SCHEDULE_MIN_GAP_SECONDS). */
  minGapMs: number;
  /** How far ahead a message may be scheduled (SCHEDULE_MAX_AHEAD_DAYS). */
  maxAheadMs: number;
}

export const DEFAULT_SCHEDULE_LIMITS: ScheduleLimits = {
  maxPending: 20,
  minGapMs: 60_000,
  maxAheadMs: 30 * 24 * 60 * 60 * 1000,
};

/**
 * Pending messages across all conversations: the chat page's session ids are the browser's choice, so
 * per conversation alone is no bound.
 */
export const MAX_PENDING_TOTAL = 100;
export const SCHEDULED_TEXT_MAX = 2_000;
/** Retries of a delivery the conversation could not take (channel starting, no chat page open). */
const RETRY_DELAYS_MS = [1_000, 2_000, 5_000, 15_000, 60_000];
/** A message not delivered this long after its time is given up (`failed`). */
const GIVE_UP_AFTER_MS = 24 * 60 * 60 * 1000;
/** Delivered, cancelled and failed messages kept for the record. */
const KEEP_FINISHED = 200;
/** Node timers hold at most ~24.8 days; far messages are re-armed. */
const MAX_TIMER_MS = 60 * 60 * 1000;

export type ScheduledState = 'pending' | 'sending' | 'sent' | 'cancelled' | 'failed';

export interface ScheduledMessage {
  id: string;
  conversation: string;
  text: string;
  dueAt: string;
  createdAt: string;
  state: ScheduledState;
  attempts: number;
  sentAt?: string;
  /** Not persisted meaning: the next retry after a refused delivery. */
  retryAt?: string;
}

/** What the agent asked: a time (`at`, ISO with a zone) or minutes from now, and the text. */
export interface ScheduleRequest {
  conversation: string;
  text: string;
  at?: string;
  inMinutes?: number;
}

export class ScheduleError extends Error {
  constructor(
    readonly status: 400 | 404 | 409 | 429,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * A delivery the conversation refused before anything was sent: retried (the channel is starting, no chat
 * page is open), unless `permanent` (the conversation ended, it is not ours). Any other error may have sent
 * the message, so it is never retried.
 */
export class NotDeliveredError extends Error {
  constructor(
    message: string,
    readonly permanent = false,
  ) {
    super(message);
  }
}

export type Deliver = (conversation: string, text: string, message: ScheduledMessage) => Promise<void>;

export interface SchedulerDeps {
  file: string;
  deliver: Deliver;
  limits?: ScheduleLimits;
  now?: () => number;
  log?: (line: string) => void;
  retryDelaysMs?: readonly number[];
}

/** A duration for a sentence: "30 days", "1 minute", "5 seconds". */
export function duration(ms: number): string {
  const units: [number, string][] = [
    [86_400_000, 'day'],
    [3_600_000, 'hour'],
    [60_000, 'minute'],
    [1_000, 'second'],
  ];
  for (const [size, name] of units) {
    if (ms >= size && ms % size === 0) return `${ms / size} ${name}${ms === size ? '' : 's'}`;
  }
  return `${ms} ms`;
}

/** Checks the agent's request (shape only; the limits need the store). */
export function validateScheduleRequest(body: unknown): ScheduleRequest | string {
  if (!body || typeof body !== 'object' || Array.isArray(body)) return 'body must be a JSON object';
  const b = body as Record<string, unknown>;
  const extra = Object.keys(b).filter((k) => !['conversation', 'text', 'at', 'inMinutes'].includes(k));
  if (extra.length) return `unknown field ${extra[0]}`;
  if (typeof b.conversation !== 'string' || !TARGET.test(b.conversation))
    return 'conversation must be this conversation';
  if (typeof b.text !== 'string' || !b.text.trim() || b.text.length > SCHEDULED_TEXT_MAX)
    return `text must be 1-${SCHEDULED_TEXT_MAX} characters`;
  const problem = controlCharacterProblem(b.text, true);
  if (problem) return `text ${problem}`;
  const hasAt = b.at !== undefined && b.at !== null;
  const hasIn = b.inMinutes !== undefined && b.inMinutes !== null;
  if (hasAt === hasIn) return 'give either at (an ISO time with a zone) or in_minutes, not both';
  if (hasAt) {
    if (
      typeof b.at !== 'string' ||
      !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2})$/.test(b.at) ||
      Number.isNaN(Date.parse(b.at))
    )
      return 'at must be an ISO time with a zone, e.g. 2026-12-01T18:30:00+01:00';
    return { conversation: b.conversation, text: b.text, at: b.at };
  }
  if (typeof b.inMinutes !== 'number' || !Number.isFinite(b.inMinutes) || b.inMinutes <= 0)
    return 'in_minutes must be a positive number';
  return { conversation: b.conversation, text: b.text, inMinutes: b.inMinutes };
}

export class Scheduler {
  private entries: ScheduledMessage[];
  private readonly limits: ScheduleLimits;
  private readonly now: () => number;
  private readonly log: (line: string) => void;
  private readonly retryDelaysMs: readonly number[];
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private stopped = true;

  constructor(private readonly deps: SchedulerDeps) {
    this.limits = deps.limits ?? DEFAULT_SCHEDULE_LIMITS;
    this.now = deps.now ?? Date.now;
    this.log = deps.log ?? (() => {});
    this.retryDelaysMs = deps.retryDelaysMs ?? RETRY_DELAYS_MS;
    this.entries = existsSync(deps.file)
      ? (JSON.parse(readFileSync(deps.file, 'utf8')) as ScheduledMessage[])
      : [];
    // Handed over when the runtime stopped: it may have been sent. Never twice, so not again.
    const interrupted = this.entries.filter((e) => e.state === 'sending');
    for (const e of interrupted) e.state = 'failed';
    for (const e of this.entries) delete e.retryAt;
    if (interrupted.length) {
      this.log(`[runtime] ${interrupted.length} scheduled message(s) interrupted mid-send: not sent again`);
      this.persist();
    }
  }

  schedule(request: ScheduleRequest): ScheduledMessage {
    const now = this.now();
    const due = request.at !== undefined ? Date.parse(request.at) : now + (request.inMinutes ?? 0) * 60_000;
    const { maxPending, minGapMs, maxAheadMs } = this.limits;
    if (due < now + minGapMs)
      throw new ScheduleError(400, 'too_soon', `a message must be at least ${duration(minGapMs)} ahead`);
    if (due > now + maxAheadMs)
      throw new ScheduleError(400, 'too_far', `a message can be at most ${duration(maxAheadMs)} ahead`);
    const mine = this.pendingOf(request.conversation);
    if (mine.length >= maxPending)
      throw new ScheduleError(
        429,
        'too_many',
        `this conversation already has ${maxPending} scheduled messages; cancel one first`,
      );
    if (this.entries.filter((e) => e.state === 'pending').length >= MAX_PENDING_TOTAL)
      throw new ScheduleError(429, 'too_many', 'this agent has too many scheduled messages');
    const close = mine.find((e) => Math.abs(Date.parse(e.dueAt) - due) < minGapMs);
    if (close)
      throw new ScheduleError(
        409,
        'too_close',
        `another message is scheduled at ${close.dueAt}; messages must be at least ${duration(minGapMs)} apart`,
      );
    const message: ScheduledMessage = {
      id: `sch_${randomUUID().replace(/-/g, '').slice(0, 16)}`,
      conversation: request.conversation,
      text: request.text,
      dueAt: new Date(due).toISOString(),
      createdAt: new Date(now).toISOString(),
      state: 'pending',
      attempts: 0,
    };
    this.entries.push(message);
    this.persist();
    this.arm();
    return message;
  }

  /** The conversation's pending messages, soonest first. */
  list(conversation: string): ScheduledMessage[] {
    return this.pendingOf(conversation).sort((a, b) => a.dueAt.localeCompare(b.dueAt));
  }

  /** Cancels one pending message of this conversation (another conversation's id is unknown here). */
  cancel(conversation: string, id: string): ScheduledMessage {
    const entry = this.entries.find(
      (e) => e.id === id && e.conversation === conversation && e.state === 'pending',
    );
    if (!entry) throw new ScheduleError(404, 'not_found', 'no pending scheduled message with this id here');
    entry.state = 'cancelled';
    this.persist();
    this.arm();
    return entry;
  }

  /** Every message, for tests and the record. */
  all(): readonly ScheduledMessage[] {
    return this.entries;
  }

  start(): void {
    this.stopped = false;
    this.arm();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** The conversation can take messages now (a chat page connected): retry its waiting ones at once. */
  retryNow(conversation: string): void {
    let changed = false;
    for (const e of this.entries) {
      if (e.conversation === conversation && e.state === 'pending' && e.retryAt) {
        delete e.retryAt;
        changed = true;
      }
    }
    if (changed) this.arm();
  }

  private pendingOf(conversation: string): ScheduledMessage[] {
    return this.entries.filter((e) => e.conversation === conversation && e.state === 'pending');
  }

  private nextAt(e: ScheduledMessage): number {
    return e.retryAt ? Date.parse(e.retryAt) : Date.parse(e.dueAt);
  }

  private arm(): void {
    if (this.stopped) return;
    // A running pass re-arms when it ends.
    if (this.running) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const pending = this.entries.filter((e) => e.state === 'pending');
    if (!pending.length) return;
    const next = Math.min(...pending.map((e) => this.nextAt(e)));
    const delay = Math.min(Math.max(0, next - this.now()), MAX_TIMER_MS);
    this.timer = setTimeout(() => void this.run(), delay);
  }

  private async run(): Promise<void> {
    this.timer = null;
    if (this.stopped || this.running) return;
    this.running = true;
    try {
      for (;;) {
        const now = this.now();
        const due = this.entries
          .filter((e) => e.state === 'pending' && this.nextAt(e) <= now)
          .sort((a, b) => this.nextAt(a) - this.nextAt(b))[0];
        if (!due || this.stopped) break;
        await this.deliver(due);
      }
    } finally {
      this.running = false;
      this.arm();
    }
  }

  private async deliver(entry: ScheduledMessage): Promise<void> {
    entry.state = 'sending';
    entry.attempts += 1;
    delete entry.retryAt;
    this.persist();
    try {
      await this.deps.deliver(entry.conversation, entry.text, entry);
      entry.state = 'sent';
      entry.sentAt = new Date(this.now()).toISOString();
      const late = this.now() - Date.parse(entry.dueAt);
      this.log(`[runtime] scheduled message ${entry.id} sent (${late} ms after its time)`);
    } catch (err) {
      const overdue = this.now() - Date.parse(entry.dueAt);
      if (!(err instanceof NotDeliveredError) || err.permanent || overdue > GIVE_UP_AFTER_MS) {
        entry.state = 'failed';
        this.log(`[runtime] scheduled message ${entry.id} not delivered: ${(err as Error).message}`);
      } else {
        // Refused before anything was sent: it stays pending.
        entry.state = 'pending';
        const delay =
          this.retryDelaysMs[Math.min(entry.attempts - 1, this.retryDelaysMs.length - 1)] ?? 60_000;
        entry.retryAt = new Date(this.now() + delay).toISOString();
        if (entry.attempts === 1 || entry.attempts % 10 === 0)
          this.log(
            `[runtime] scheduled message ${entry.id} not taken yet (${(err as Error).message}); retrying`,
          );
      }
    }
    this.persist();
  }

  private persist(): void {
    const finished = this.entries.filter((e) => e.state !== 'pending' && e.state !== 'sending');
    if (finished.length > KEEP_FINISHED) {
      const drop = new Set(finished.slice(0, finished.length - KEEP_FINISHED));
      this.entries = this.entries.filter((e) => !drop.has(e));
    }
    writeAtomic(this.deps.file, JSON.stringify(this.entries.map(({ retryAt: _retry, ...rest }) => rest)));
  }
}
