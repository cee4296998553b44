// Inbound email and SMS from the pool (POST /pool/inbound, contracts/runtime.ts): validated, persisted in
// STATE_DIR/inbound.json before the pool gets its 200 (so a restart loses nothing), deduplicated by
// eventId (the pool retries until it gets a 2xx), then handed to the agent one at a time as a turn it can
// act on, retried with backoff until the agent took it.
import { existsSync, readFileSync } from 'node:fs';
import { controlCharacterProblem } from '../../contracts/claim.ts';
import {
  describeInbound,
  INBOUND_EVENT_ID_PATTERN,
  INBOUND_TEXT_MAX,
  type InboundRequest,
} from '../../contracts/runtime.ts';
import { writeAtomic } from './provision-store.ts';

export type { InboundRequest } from '../../contracts/runtime.ts';

const FIELDS = new Set(['eventId', 'channel', 'from', 'subject', 'text', 'receivedAt']);
const EVENT_ID = new RegExp(INBOUND_EVENT_ID_PATTERN);
/** Delivered ids kept for deduplication (the pool stops retrying long before this many newer ones). */
const KEEP_DONE = 1000;

export function validateInboundRequest(body: unknown): InboundRequest | string {
  if (!body || typeof body !== 'object' || Array.isArray(body)) return 'body must be a JSON object';
  const b = body as Record<string, unknown>;
  if (Object.keys(b).some((k) => !FIELDS.has(k))) return 'body has unknown fields';
  if (typeof b.eventId !== 'string' || !EVENT_ID.test(b.eventId)) return 'eventId must be a plain id';
  if (b.channel !== 'email' && b.channel !== 'sms') return 'channel must be email or sms';
  if (typeof b.from !== 'string' || !b.from || b.from.length > 400) return 'from must be 1-400 characters';
  if (b.subject !== null && (typeof b.subject !== 'string' || b.subject.length > 400))
    return 'subject must be null or at most 400 characters';
  if (typeof b.text !== 'string' || b.text.length > INBOUND_TEXT_MAX)
    return `text must be at most ${INBOUND_TEXT_MAX} characters`;
  if (typeof b.receivedAt !== 'string' || Number.isNaN(Date.parse(b.receivedAt)))
    return 'receivedAt must be an ISO time';
  for (const field of ['from', 'subject'] as const) {
    const value = b[field];
    const problem = typeof value === 'string' ? controlCharacterProblem(value, false) : null;
    if (problem) return `${field} ${problem}`;
  }
  const problem = controlCharacterProblem(b.text, true);
  if (problem) return `text ${problem}`;
  return {
    eventId: b.eventId,
    channel: b.channel,
    from: b.from,
    subject: (b.subject as string | null) ?? null,
    text: b.text,
    receivedAt: b.receivedAt,
  };
}

interface Entry {
  request: InboundRequest;
  state: 'pending' | 'done';
  attempts: number;
}

export class InboundQueue {
  private entries: Entry[];
  private running = false;
  private stopped = false;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly file: string,
    /** One agent turn with this text; throws when the agent could not take it (retried). */
    private readonly dispatch: (text: string, request: InboundRequest) => Promise<void>,
    private readonly log: (line: string) => void = () => {},
    private readonly retryDelaysMs: readonly number[] = [1000, 2000, 5000, 15_000, 60_000],
  ) {
    this.entries = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Entry[]) : [];
  }

  /** Records the event (durably) unless known; answers whether it was a repeat. */
  accept(request: InboundRequest): { accepted: true; duplicate: boolean } {
    if (this.entries.some((e) => e.request.eventId === request.eventId))
      return { accepted: true, duplicate: true };
    this.entries.push({ request, state: 'pending', attempts: 0 });
    this.persist();
    this.kick(0);
    return { accepted: true, duplicate: false };
  }

  /** Events not yet handed to the agent (also those recorded before a restart). */
  pending(): InboundRequest[] {
    return this.entries.filter((e) => e.state === 'pending').map((e) => e.request);
  }

  start(): void {
    this.stopped = false;
    this.kick(0);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  private persist(): void {
    const done = this.entries.filter((e) => e.state === 'done');
    if (done.length > KEEP_DONE) {
      const drop = new Set(done.slice(0, done.length - KEEP_DONE));
      this.entries = this.entries.filter((e) => !drop.has(e));
    }
    writeAtomic(this.file, JSON.stringify(this.entries));
  }

  private kick(delayMs: number): void {
    if (this.stopped || this.running) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.drain(), delayMs);
  }

  private async drain(): Promise<void> {
    if (this.running || this.stopped) return;
    this.running = true;
    try {
      for (let next = this.entries.find((e) => e.state === 'pending'); next && !this.stopped; ) {
        try {
          await this.dispatch(describeInbound(next.request), next.request);
          next.state = 'done';
          this.persist();
          this.log(`[runtime] inbound ${next.request.channel} ${next.request.eventId} handed to the agent`);
        } catch (err) {
          next.attempts += 1;
          const delay =
            this.retryDelaysMs[Math.min(next.attempts - 1, this.retryDelaysMs.length - 1)] ?? 60_000;
          this.log(
            `[runtime] inbound ${next.request.eventId} not taken (${(err as Error).message}); retry in ${delay} ms`,
          );
          this.running = false;
          this.kick(delay);
          return;
        }
        next = this.entries.find((e) => e.state === 'pending');
      }
    } finally {
      this.running = false;
    }
  }
}
