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

/**
 * Where the Temporal SDK's own logs (worker, core) go, from `level` up: to `sink`, else to the console
 * (the SDK's format). Once per process, before the first worker or native connection; later calls do
 * nothing (a test process that installed its own sink keeps it).
 */
export function installTemporalLogging(level: TemporalLevel, sink?: (entry: LogEntry) => void): void {
  if (temporalLogging) return;
  temporalLogging = true;
  Runtime.install({ logger: sink ? new DefaultLogger(level, sink) : new DefaultLogger(level) });
}

/** The Temporal level matching a pino level. */
export const temporalLevel = (level: LogLevel): TemporalLevel => TEMPORAL_LEVELS[level];
