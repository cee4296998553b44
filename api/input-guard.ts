/**
 * One rule for every route, before any schema or handler: no string a client sends may carry control
 * characters or lone surrogates — header values we read, path and query parameters, and every string (keys
 * included) in a JSON body, where tabs and line breaks are allowed. Postgres refuses U+0000 and a workflow
 * must never hold what its read model cannot write, so such input is a 400 naming the field, and nothing
 * else runs. Field-specific rules (one-line names, lengths) stay in each route's schema (contracts/claim.ts).
 */
import type { FastifyInstance } from 'fastify';
import { controlCharacterProblem } from '../contracts/claim';
import { ApiError } from './errors';

/** Headers the API reads; the others (user agents, proxies' own) never reach our code or our storage. */
const READ_HEADERS = [
  'authorization',
  'idempotency-key',
  'accept',
  'content-type',
  'x-client-id',
  'x-client-anonymous',
] as const;

function refuse(field: string, problem: string): never {
  throw new ApiError(400, 'BAD_REQUEST', `${field} ${problem}`);
}

function checkValue(value: unknown, field: string, multiline: boolean, depth = 0): void {
  if (typeof value === 'string') {
    const problem = controlCharacterProblem(value, multiline);
    if (problem) refuse(field, problem);
  } else if (Array.isArray(value)) {
    value.forEach((item, i) => {
      checkValue(item, `${field}[${i}]`, multiline, depth + 1);
    });
  } else if (value !== null && typeof value === 'object' && depth < 32) {
    for (const [key, item] of Object.entries(value)) {
      const keyProblem = controlCharacterProblem(key, false);
      if (keyProblem) refuse(`${field} key ${JSON.stringify(key.slice(0, 32))}`, keyProblem);
      checkValue(item, `${field}.${key}`, multiline, depth + 1);
    }
  }
}

export function registerInputGuard(app: FastifyInstance): void {
  app.addHook('preValidation', async (request) => {
    for (const name of READ_HEADERS) checkValue(request.headers[name], `header ${name}`, false);
    checkValue(request.params, 'path', false);
    checkValue(request.query, 'query', false);
    checkValue(request.body, 'body', true);
  });
}
