// Messages the agent sends on its own into a local chat page session (its scheduled messages), streamed as
// server-sent events to the pages open on that session: GET /chat/<chat secret>/events?session=<id>. A
// message is delivered only to an open page: with none, `publish` refuses (nothing was sent) and the
// scheduler keeps it pending and retries, at once when a page connects (`onSubscribe`).
import type { ServerResponse } from 'node:http';
import { NotDeliveredError } from './scheduler.ts';

/** Open streams per session and in total: each holds a connection. */
export const MAX_STREAMS_PER_SESSION = 5;
export const MAX_STREAMS = 50;
/** A comment line this often keeps proxies from closing an idle stream. */
const HEARTBEAT_MS = 25_000;

export interface AgentEvent {
  id: string;
  text: string;
  sentAt: string;
}

export class ChatEvents {
  private readonly streams = new Map<string, Set<ServerResponse>>();
  private total = 0;

  constructor(
    private readonly onSubscribe: (session: string) => void = () => {},
    private readonly heartbeatMs = HEARTBEAT_MS,
  ) {}

  /** Opens the stream on `res`, or returns false when too many are open (the caller answers 429). */
  subscribe(session: string, res: ServerResponse): boolean {
    const key = session.toLowerCase();
    const set = this.streams.get(key) ?? new Set<ServerResponse>();
    if (set.size >= MAX_STREAMS_PER_SESSION || this.total >= MAX_STREAMS) return false;
    set.add(res);
    this.streams.set(key, set);
    this.total += 1;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
      connection: 'keep-alive',
    });
    res.write(': connected\n\n');
    const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), this.heartbeatMs);
    heartbeat.unref();
    res.once('close', () => {
      clearInterval(heartbeat);
      set.delete(res);
      if (!set.size) this.streams.delete(key);
      this.total = Math.max(0, this.total - 1);
    });
    this.onSubscribe(key);
    return true;
  }

  /** Sends to every open page of the session; throws NotDeliveredError when none is open. */
  publish(session: string, event: AgentEvent): void {
    const set = this.streams.get(session.toLowerCase());
    if (!set?.size) throw new NotDeliveredError('no chat page is open on this session');
    const frame = `id: ${event.id}\nevent: agent-message\ndata: ${JSON.stringify(event)}\n\n`;
    for (const res of set) res.write(frame);
  }

  /** Sends to every open page of every session (an event of the whole instance: an inbound email's reply). */
  publishAll(event: AgentEvent): void {
    if (this.total === 0) throw new NotDeliveredError('no chat page is open');
    const frame = `id: ${event.id}\nevent: agent-message\ndata: ${JSON.stringify(event)}\n\n`;
    for (const set of this.streams.values()) for (const res of set) res.write(frame);
  }

  get open(): number {
    return this.total;
  }

  closeAll(): void {
    for (const set of this.streams.values()) for (const res of set) res.end();
  }
}
