/**
 * Test fixture shared by the provider stand-ins (Railway, OpenRouter, AgentMail, Telnyx): a small HTTP
 * server with JSON routing and fault injection. Faults reproduce what real providers do to us:
 *   - `5xx`:     503 before the request is handled (nothing changed)
 *   - `429`:     429 with `Retry-After: 1` before the request is handled
 *   - `timeout`: the request is never answered (the client's timeout fires; nothing changed)
 *   - `lost`:    the request IS handled (state changed), then the connection is dropped: the success
 *                never reaches the client, whose retry must adopt instead of creating twice
 *   - `reject`:  422 before the request is handled (a validation error: not worth retrying); only when
 *                queued with `failNext`, never picked at random
 * Faults hit at a random `rate` (seeded, so a failing run can be repeated) and/or are queued for the next
 * matching requests (`failNext`), for tests that fail one exact step.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export type FaultKind = '5xx' | '429' | 'timeout' | 'lost' | 'reject';

export interface FaultSettings {
  /** Share of requests (0..1) that get a random fault. */
  rate: number;
  kinds?: FaultKind[];
  seed?: number;
  /** Only requests whose `METHOD path` matches are eligible (default: all). */
  match?: RegExp;
}

export interface JsonRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: http.IncomingHttpHeaders;
  body: unknown;
}

export interface JsonResponse {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

export type JsonHandler = (req: JsonRequest) => JsonResponse | Promise<JsonResponse>;

/** mulberry32: tiny deterministic PRNG so a fault sequence can be replayed from its seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class FaultInjector {
  private settings: FaultSettings = { rate: 0 };
  private random = prng(1);
  private readonly queued: Array<{ match: RegExp; kind: FaultKind; remaining: number }> = [];
  /** Every fault injected, for test reports. */
  readonly injected: Array<{ request: string; kind: FaultKind }> = [];

  set(settings: FaultSettings): void {
    this.settings = settings;
    this.random = prng(settings.seed ?? 1);
  }

  /** The next `count` requests matching `match` (`METHOD /path`) get `kind`. */
  failNext(match: RegExp, kind: FaultKind, count = 1): void {
    this.queued.push({ match, kind, remaining: count });
  }

  clear(): void {
    this.settings = { rate: 0 };
    this.queued.length = 0;
  }

  pick(request: string): FaultKind | null {
    const queued = this.queued.find((q) => q.remaining > 0 && q.match.test(request));
    if (queued) {
      queued.remaining -= 1;
      this.injected.push({ request, kind: queued.kind });
      return queued.kind;
    }
    const { rate, kinds = ['5xx', '429', 'timeout', 'lost'], match } = this.settings;
    if (rate <= 0 || (match && !match.test(request))) return null;
    if (this.random() >= rate) return null;
    const kind = kinds[Math.floor(this.random() * kinds.length)] ?? '5xx';
    this.injected.push({ request, kind });
    return kind;
  }
}

export interface ProviderServer {
  url: string;
  faults: FaultInjector;
  /** Every request handled (`METHOD /path`), in order. */
  requests: string[];
  close(): Promise<void>;
}

function send(res: http.ServerResponse, out: JsonResponse) {
  const body = out.body === undefined ? '' : JSON.stringify(out.body);
  res.writeHead(out.status, {
    ...(out.body === undefined ? {} : { 'content-type': 'application/json' }),
    ...out.headers,
  });
  res.end(body);
}

/** Starts a JSON server on 127.0.0.1 (a free port) that routes every request through `handler`. */
export async function startProviderServer(handler: JsonHandler): Promise<ProviderServer> {
  const faults = new FaultInjector();
  const requests: string[] = [];
  const hanging = new Set<http.ServerResponse>();
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://standin');
    const label = `${req.method} ${url.pathname}`;
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    let body: unknown = null;
    if (raw) {
      try {
        body = JSON.parse(raw);
      } catch {
        return send(res, { status: 400, body: { error: { message: 'invalid JSON body' } } });
      }
    }
    // Test-only control routes are never faulted.
    const fault = url.pathname.startsWith('/_standin') ? null : faults.pick(label);
    if (fault === '5xx') return send(res, { status: 503, body: { error: { message: 'injected outage' } } });
    if (fault === 'reject')
      return send(res, { status: 422, body: { error: { message: 'injected rejection' } } });
    if (fault === '429')
      return send(res, {
        status: 429,
        headers: { 'retry-after': '1' },
        body: { error: { message: 'rate limited (injected)' } },
      });
    if (fault === 'timeout') {
      hanging.add(res);
      res.on('close', () => hanging.delete(res));
      return;
    }
    requests.push(label);
    let out: JsonResponse;
    try {
      out = await handler({
        method: req.method ?? 'GET',
        path: url.pathname,
        query: url.searchParams,
        headers: req.headers,
        body,
      });
    } catch (err) {
      out = { status: 500, body: { error: { message: (err as Error).message } } };
    }
    if (fault === 'lost') {
      // The work is done; the answer never arrives.
      req.socket.destroy();
      return;
    }
    send(res, out);
  });
  server.keepAliveTimeout = 1000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    faults,
    requests,
    close: async () => {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * Book-keeping every stand-in shares: what exists now and how often each name was ever created, so a test
 * can prove that no resource was created twice and that the inventory ends empty.
 */
export class Inventory<T extends { id: string; name: string }> {
  readonly items = new Map<string, T>();
  readonly creations = new Map<string, number>();

  add(item: T): T {
    this.items.set(item.id, item);
    this.creations.set(item.name, (this.creations.get(item.name) ?? 0) + 1);
    return item;
  }
  byName(name: string): T | undefined {
    for (const item of this.items.values()) if (item.name === name) return item;
    return undefined;
  }
  remove(id: string): boolean {
    return this.items.delete(id);
  }
  /** Names created more than once over the stand-in's life. */
  duplicates(): string[] {
    return [...this.creations].filter(([, n]) => n > 1).map(([name]) => name);
  }
  list(): T[] {
    return [...this.items.values()];
  }
}
