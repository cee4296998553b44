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

/** Deeper JSON than any route takes: refused outright, so no check ever recurses without bound. */
const MAX_DEPTH = 64;

/** Walks every string (and key) of `root` without recursion: nesting depth is the client's choice. */
function checkValue(root: unknown, rootField: string, multiline: boolean): void {
  const stack: Array<{ value: unknown; field: string; depth: number }> = [
    { value: root, field: rootField, depth: 0 },
  ];
  for (let item = stack.pop(); item; item = stack.pop()) {
    const { value, field, depth } = item;
    if (typeof value === 'string') {
      const problem = controlCharacterProblem(value, multiline);
      if (problem) refuse(field, problem);
      continue;
    }
    if (value === null || typeof value !== 'object') continue;
    if (depth >= MAX_DEPTH) refuse(rootField, `is nested deeper than ${MAX_DEPTH} levels`);
    if (Array.isArray(value)) {
      value.forEach((entry, i) => {
        stack.push({ value: entry, field: `${field}[${i}]`, depth: depth + 1 });
      });
      continue;
    }
    for (const [key, entry] of Object.entries(value)) {
      const keyProblem = controlCharacterProblem(key, false);
      if (keyProblem) refuse(`${field} key ${JSON.stringify(key.slice(0, 32))}`, keyProblem);
      stack.push({ value: entry, field: `${field}.${key}`, depth: depth + 1 });
    }
  }
}

export function registerInputGuard(app: FastifyInstance): void {
  // A body in another charset would be read as UTF-8 and mean something else: refuse it before parsing
  // (after authentication, like every other refusal of a body).
  app.addHook('preParsing', async (request) => {
    const charset = /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(request.headers['content-type'] ?? '')?.[1];
    if (charset && charset.toLowerCase() !== 'utf-8') {
      throw new ApiError(415, 'UNSUPPORTED_MEDIA_TYPE', `bodies are UTF-8 JSON, not ${charset.slice(0, 32)}`);
    }
  });
  app.addHook('preValidation', async (request) => {
    for (const name of READ_HEADERS) checkValue(request.headers[name], `header ${name}`, false);
    checkValue(request.params, 'path', false);
    checkValue(request.query, 'query', false);
    checkValue(request.body, 'body', true);
  });
}

/**
 * Requests Node's HTTP parser refuses (control bytes in a header, a bad request line, headers too large)
 * never reach Fastify's routes: they are answered here, in the API's error format.
 */
export function clientErrorResponse(err: NodeJS.ErrnoException & { code?: string }): string {
  const tooLarge = err.code === 'HPE_HEADER_OVERFLOW';
  const status = tooLarge ? '431 Request Header Fields Too Large' : '400 Bad Request';
  const body = JSON.stringify({
    error: tooLarge ? 'request headers are too large' : 'the request is not valid HTTP',
    code: tooLarge ? 'HEADERS_TOO_LARGE' : 'BAD_REQUEST',
  });
  return `HTTP/1.1 ${status}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`;
}
