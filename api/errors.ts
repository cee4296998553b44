/**
 * The error format of docs/api.md, `{ "error": "<clear message>", "code": "<MACHINE_CODE>" }`, produced in one
 * place for every route: our own errors, Fastify's validation/body errors, and anything unexpected.
 */
import { isGrpcServiceError, ServiceError, WorkflowNotFoundError } from '@temporalio/client';
import type { FastifyError, FastifyInstance } from 'fastify';
import { PATTERN_RULES } from '../contracts/claim';
import { MAIL_PATTERN_RULES } from '../contracts/mail';
import { isDatabaseUnavailable } from '../drizzle/unavailable';

export class ApiError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

const fastifyCodes: Record<string, string> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'BODY_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'BAD_REQUEST',
  FST_ERR_CTP_INVALID_JSON_BODY: 'BAD_JSON',
};

/** gRPC codes that mean "Temporal cannot serve this now": unavailable, deadline, resource exhausted, aborted. */
const TRANSIENT_GRPC = new Set([4, 8, 10, 14]);

/** Temporal unreachable, overloaded or past the call's deadline (the gRPC error, or a client error wrapping it). */
export function isTemporalUnavailable(err: unknown): boolean {
  const grpc = err instanceof ServiceError ? err.cause : err;
  return isGrpcServiceError(grpc) && TRANSIENT_GRPC.has(grpc.code);
}

/** gRPC FAILED_PRECONDITION. */
const GRPC_FAILED_PRECONDITION = 9;

/**
 * Temporal refused an Update because the workflow's task is failing (e.g. a starved worker's task timed out):
 * transient for this workflow, unlike other FAILED_PRECONDITIONs.
 */
export function isWorkflowTaskFailing(err: unknown): boolean {
  const grpc = err instanceof ServiceError ? err.cause : err;
  return (
    isGrpcServiceError(grpc) &&
    grpc.code === GRPC_FAILED_PRECONDITION &&
    /Workflow Task in failed state/i.test(`${grpc.details} ${grpc.message}`)
  );
}

/**
 * A condition a client can do nothing about but retry: the pool workflow does not exist yet (a worker creates it
 * when it starts), Temporal is unreachable or overloaded, or the database is. 503 with Retry-After, never 500.
 */
export function unavailable(err: unknown): ApiError | null {
  if (err instanceof WorkflowNotFoundError && /^pool-/.test(err.workflowId))
    return new ApiError(
      503,
      'POOL_NOT_READY',
      'the pool is not running yet (a worker starts it); retry later',
      {
        'retry-after': '5',
      },
    );
  if (isTemporalUnavailable(err))
    return new ApiError(503, 'TEMPORAL_UNAVAILABLE', 'the workflow service is unavailable; retry later', {
      'retry-after': '5',
    });
  if (isDatabaseUnavailable(err))
    return new ApiError(503, 'DATABASE_UNAVAILABLE', 'the database is unavailable; retry later', {
      'retry-after': '5',
    });
  return null;
}

/** Ajv's message, except that a pattern is named by its rule in words rather than shown as a regex. */
function validationMessage(err: FastifyError): string {
  const first = err.validation?.[0];
  const pattern = String(first?.params.pattern);
  const rule =
    first?.keyword === 'pattern' ? (PATTERN_RULES[pattern] ?? MAIL_PATTERN_RULES[pattern]) : undefined;
  if (!first || !rule) return err.message;
  const field = first.instancePath.replace(/^\//, '').replaceAll('/', '.') || 'value';
  return `${field} ${rule}`;
}

export function registerErrorHandling(app: FastifyInstance) {
  app.setErrorHandler((thrown: FastifyError | ApiError, request, reply) => {
    const err = unavailable(thrown) ?? thrown;
    if (err instanceof ApiError) {
      return reply.code(err.statusCode).headers(err.headers).send({ error: err.message, code: err.code });
    }
    if (err.validation) {
      const where = err.validationContext ?? 'request';
      return reply
        .code(400)
        .send({ error: `invalid ${where}: ${validationMessage(err)}`, code: 'BAD_REQUEST' });
    }
    const status = err.statusCode ?? 500;
    if (status >= 400 && status < 500) {
      const code = fastifyCodes[err.code] ?? (status === 429 ? 'RATE_LIMITED' : 'BAD_REQUEST');
      const message = err instanceof SyntaxError ? `body is not valid JSON: ${err.message}` : err.message;
      return reply.code(status).send({ error: message, code });
    }
    request.log.error({ err }, 'unhandled error');
    return reply.code(Math.max(status, 500)).send({ error: 'internal error', code: 'INTERNAL' });
  });

  app.setNotFoundHandler((request, reply) => {
    reply
      .code(404)
      .send({ error: `no route ${request.method} ${request.url.split('?')[0]}`, code: 'NOT_FOUND' });
  });
}
