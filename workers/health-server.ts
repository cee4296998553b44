/**
 * The worker process's probes (`npm run worker`; the worker has no other HTTP server): `GET /healthz` is
 * liveness (the process is up, nothing asked), `GET /readyz` readiness (200 only while the worker is polling
 * and its Temporal connection answers; 503 naming what is wrong, with Retry-After, while it starts or
 * drains). Plain `node:http`, JSON bodies, nothing secret; on `WORKER_HEALTH_HOST:WORKER_HEALTH_PORT`.
 * `GET /metrics`: the process's own Prometheus series (`convos_*`, `process_*`, `nodejs_*`; the Temporal SDK's
 * `temporal_*` are served by core on WORKER_METRICS_PORT), behind METRICS_BEARER when it is set.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { Registry } from 'prom-client';
import type { Logger } from '../system/logging';

export interface HealthServer {
  /** Where it listens, e.g. `http://127.0.0.1:9465`. */
  url: string;
  close(): Promise<void>;
}

/** Retry-After (seconds) of a 503 from /readyz. */
const RETRY_AFTER_S = 5;

function send(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(res.req.method === 'HEAD' ? undefined : text);
}

const digest = (value: string) => createHash('sha256').update(value).digest();

function serveMetrics(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  metrics: { registry: () => Registry | null; bearer: string | null },
) {
  if (metrics.bearer) {
    const header = req.headers.authorization ?? '';
    const token = header.startsWith('Bearer ') ? header.slice('Bearer '.length) : '';
    if (!(timingSafeEqual(digest(token), digest(metrics.bearer)) && token.length === metrics.bearer.length))
      return send(res, 401, { error: 'missing or wrong metrics token', code: 'UNAUTHORIZED' });
  }
  const registry = metrics.registry();
  if (!registry)
    return send(res, 503, { error: 'starting', code: 'STARTING' }, { 'retry-after': String(RETRY_AFTER_S) });
  registry.metrics().then(
    (text) => {
      res.writeHead(200, {
        'content-type': registry.contentType,
        'content-length': Buffer.byteLength(text),
        'cache-control': 'no-store',
      });
      res.end(req.method === 'HEAD' ? undefined : text);
    },
    () => send(res, 500, { error: 'metrics failed', code: 'INTERNAL' }),
  );
}

/**
 * Serves the probes. `unready`: what keeps the process from being ready (empty: ready); it may be asked
 * before the worker exists (then it answers `starting`).
 */
export async function startHealthServer(opts: {
  host: string;
  port: number;
  unready: () => Promise<string[]>;
  logger?: Logger;
  /** `/metrics`: the registry (null while the process is not built yet: 503), and the bearer it requires. */
  metrics?: { registry: () => Registry | null; bearer: string | null };
}): Promise<HealthServer> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return send(
        res,
        405,
        { error: 'method not allowed', code: 'METHOD_NOT_ALLOWED' },
        { allow: 'GET, HEAD' },
      );
    }
    if (path === '/healthz') return send(res, 200, { ok: true });
    if (path === '/readyz') {
      opts.unready().then(
        (failing) =>
          failing.length === 0
            ? send(res, 200, { ok: true, failing })
            : send(res, 503, { ok: false, failing }, { 'retry-after': String(RETRY_AFTER_S) }),
        (err: unknown) => {
          opts.logger?.warn({ err }, 'readiness check failed');
          send(res, 503, { ok: false, failing: ['check'] }, { 'retry-after': String(RETRY_AFTER_S) });
        },
      );
      return;
    }
    if (path === '/metrics' && opts.metrics) return serveMetrics(req, res, opts.metrics);
    send(res, 404, { error: 'not found', code: 'NOT_FOUND' });
  });
  // Probes are short: no keep-alive connection may hold the shutdown up.
  server.keepAliveTimeout = 1_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        err.code === 'EADDRINUSE'
          ? new Error(
              `the worker's health server cannot listen on ${opts.host}:${opts.port}, it is in use: ` +
                'give each worker on this host its own WORKER_HEALTH_PORT, or 0 for none',
            )
          : err,
      ),
    );
    server.listen(opts.port, opts.host, () => {
      server.removeAllListeners('error');
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : opts.port;
  return {
    url: `http://${opts.host.includes(':') ? `[${opts.host}]` : opts.host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
