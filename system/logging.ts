/**
 * Logging, configured here only: the process's pino logger (the API logs through it, and the Temporal SDK's
 * own logs are forwarded to it), which never writes a credential it is handed in a header, a cookie or a
 * field named like a token or key.
 */
import { DefaultLogger, type LogEntry, Runtime, type LogLevel as TemporalLevel } from '@temporalio/worker';
import pino, { type DestinationStream, type Logger } from 'pino';
import type { LogLevel } from '../config/env';

export type { Logger };

/** Replaced by `[redacted]` wherever they appear in a log line (pino `redact` paths). */
export const REDACTED_PATHS = [
  // Requests and responses, as Fastify or a caller logs them.
  'req.headers.authorization',
  'req.headers["proxy-authorization"]',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers["proxy-authorization"]',
  'headers.cookie',
  'headers["set-cookie"]',
  // Credentials logged as fields, at the top level or one level down.
  'authorization',
  'cookie',
  'token',
  'apiKey',
  'secret',
  'password',
  '*.authorization',
  '*.cookie',
  '*.token',
  '*.apiKey',
  '*.secret',
  '*.password',
];

export function createLogger(opts: { level: LogLevel; destination?: DestinationStream }): Logger {
  return pino(
    {
      level: opts.level,
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      serializers: { err: pino.stdSerializers.err, error: pino.stdSerializers.err },
    },
    opts.destination,
  );
}

const TEMPORAL_LEVELS: Record<LogLevel, TemporalLevel> = {
  trace: 'TRACE',
  debug: 'DEBUG',
  info: 'INFO',
  warn: 'WARN',
  error: 'ERROR',
  fatal: 'ERROR',
  silent: 'ERROR',
};

/** Errors keep their name and message (JSON drops them): that is where a provider's refusal is explained. */
function plain(value: unknown, depth = 0): unknown {
  if (value instanceof Error) return { name: value.name, message: value.message, stack: value.stack };
  if (depth > 3 || value === null || typeof value !== 'object' || Array.isArray(value)) return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v, depth + 1)]));
}

/** A Temporal log sink that writes into `logger` (as `component: temporal`). */
export function toLogger(logger: Logger): (entry: LogEntry) => void {
  const temporal = logger.child({ component: 'temporal' });
  return ({ level, message, meta }) => {
    const method = level.toLowerCase() as 'trace' | 'debug' | 'info' | 'warn' | 'error';
    temporal[method]((plain(meta ?? {}) as object) ?? {}, message);
  };
}

let temporalLogging = false;

/** The Temporal SDK's Prometheus exporter: core's own HTTP server on `host:port` (`GET /metrics`). */
export interface TemporalMetricsOptions {
  host: string;
  port: number;
  /** Labels on every series (e.g. the pool's name). */
  tags?: Record<string, string>;
}

/** What the one install did: where the SDK serves its metrics (null: nowhere), and why not if it could not. */
export interface TemporalRuntimeReport {
  metricsAddress: string | null;
  problem: Error | null;
}

/**
 * Where the Temporal SDK's own logs (worker, core) go, from `level` up: to `sink`, else to the console
 * (the SDK's format); with `metrics` (a port above 0), core serves its Prometheus series there (the SDK's
 * defaults: `temporal_` prefix, durations in milliseconds, counters without `_total`, as Temporal's published
 * SDK dashboards expect). Once per process (`Runtime.install`), before the first worker or native connection;
 * later calls do nothing (a test process that installed its own sink keeps it). A metrics port in use is not
 * fatal: the runtime is installed without metrics and `problem` says why.
 */
export function installTemporalLogging(
  level: TemporalLevel,
  sink?: (entry: LogEntry) => void,
  metrics?: TemporalMetricsOptions,
): TemporalRuntimeReport {
  if (temporalLogging) return { metricsAddress: null, problem: null };
  temporalLogging = true;
  const logger = () => (sink ? new DefaultLogger(level, sink) : new DefaultLogger(level));
  if (metrics && metrics.port > 0) {
    const host = metrics.host.includes(':') ? `[${metrics.host}]` : metrics.host;
    const bindAddress = `${host}:${metrics.port}`;
    try {
      Runtime.install({
        logger: logger(),
        telemetryOptions: {
          metrics: { prometheus: { bindAddress }, ...(metrics.tags ? { globalTags: metrics.tags } : {}) },
        },
      });
      return { metricsAddress: bindAddress, problem: null };
    } catch (err) {
      // Core did not install (its exporter could not bind): install it without metrics.
      Runtime.install({ logger: logger() });
      return {
        metricsAddress: null,
        problem: new Error(
          `the Temporal SDK's metrics cannot be served on ${bindAddress}: ${(err as Error).message}; ` +
            'give each worker on this host its own WORKER_METRICS_PORT, or 0 for none',
        ),
      };
    }
  }
  Runtime.install({ logger: logger() });
  return { metricsAddress: null, problem: null };
}

/** The Temporal level matching a pino level. */
export const temporalLevel = (level: LogLevel): TemporalLevel => TEMPORAL_LEVELS[level];
