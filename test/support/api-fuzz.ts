/**
 * The fuzz suite's model of the API (test/api-fuzz.test.ts): the routes as the OpenAPI document lists them,
 * a request as bytes on the wire, and an oracle that says, from the document and docs/api.md alone, which
 * answers a request may get. The oracle follows the order in which a request is refused:
 *
 *   1. the URL (an undecodable percent-encoding is 400, a path parameter over 800 characters 414),
 *   2. the credentials (401 for the API key; 401 or 403 for an instance's own token),
 *   3. the body as bytes (415 not JSON, 413 over 64 KiB — 4 MiB for the codec endpoint —, 400 empty or not JSON),
 *   4. control characters and lone surrogates in any string the client sent (400 naming the field),
 *   5. the route's schemas (400),
 *   6. the handler.
 *
 * It is written from the contract, not from the API's code: its string rules and its JSON Schema checker
 * (json-schema-check.ts) are its own.
 */
import { type Schema, satisfies } from './json-schema-check';
import type { RawRequest } from './raw-http';

/** `signature`: a provider's webhook, authenticated by a signature over the body (the fuzzer never signs). */
export type AuthKind = 'public' | 'apiKey' | 'instance' | 'signature';

export interface Route {
  method: string;
  /** OpenAPI path template, e.g. `/api/pool/instances/{id}`. */
  template: string;
  params: Array<{ name: string; schema: Schema }>;
  headerParams: Array<{ name: string; schema: Schema; required: boolean }>;
  /** A route that declares query parameters refuses any other and any repeated one (docs/api.md). */
  queryParams: Array<{ name: string; schema: Schema; required: boolean }>;
  body: { schema: Schema; required: boolean } | null;
  auth: AuthKind;
  /** Statuses the document lists for the route. */
  statuses: number[];
}

export const BODY_LIMIT = 64 * 1024;
/** docs/api.md: the codec endpoint takes histories' payloads, up to 4 MiB a request. */
export const CODEC_BODY_LIMIT = 4 * 1024 * 1024;
export const bodyLimit = (route: Route) =>
  route.template.startsWith('/api/codec/') ? CODEC_BODY_LIMIT : BODY_LIMIT;
/** The API's `maxParamLength` (docs/api.md): a longer (decoded) path parameter is refused before anything else. */
export const MAX_PARAM_LENGTH = 800;
/** The headers the API reads (docs/api.md, issue 9): the guard checks these and only these. */
export const READ_HEADERS = [
  'authorization',
  'idempotency-key',
  'accept',
  'content-type',
  'x-client-id',
  'x-client-anonymous',
] as const;
const BODYLESS = new Set(['GET', 'HEAD', 'TRACE']);

type OpenApiDoc = {
  paths: Record<string, Record<string, OpenApiOperation>>;
  components?: { schemas?: Record<string, Schema> };
};
type OpenApiOperation = {
  tags?: string[];
  parameters?: Array<{ in: string; name: string; schema: Schema; required?: boolean }>;
  requestBody?: { required?: boolean; content?: Record<string, { schema: Schema }> };
  responses?: Record<string, unknown>;
};

/**
 * Every operation of the document. Which credentials a route takes is read from the statuses it
 * documents (the document declares no per-operation security): 403 means an instance's own token, 401 the
 * API key, neither a public route.
 */
export function routesFromOpenApi(doc: OpenApiDoc): Route[] {
  const resolve = (schema: Schema): Schema => {
    const ref = schema.$ref;
    if (typeof ref === 'string') {
      const name = ref.replace('#/components/schemas/', '');
      const target = doc.components?.schemas?.[name];
      if (!target) throw new Error(`unresolvable $ref ${ref}`);
      return resolve(target);
    }
    return schema;
  };
  const routes: Route[] = [];
  for (const [template, operations] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(operations)) {
      const statuses = Object.keys(op.responses ?? {}).map(Number);
      const parameters = op.parameters ?? [];
      const bodySchema = op.requestBody?.content?.['application/json']?.schema;
      routes.push({
        method: method.toUpperCase(),
        template,
        params: parameters
          .filter((p) => p.in === 'path')
          .map((p) => ({ name: p.name, schema: resolve(p.schema) })),
        headerParams: parameters
          .filter((p) => p.in === 'header')
          .map((p) => ({ name: p.name.toLowerCase(), schema: resolve(p.schema), required: !!p.required })),
        queryParams: parameters
          .filter((p) => p.in === 'query')
          .map((p) => ({ name: p.name, schema: resolve(p.schema), required: !!p.required })),
        body: bodySchema ? { schema: resolve(bodySchema), required: !!op.requestBody?.required } : null,
        auth: op.tags?.includes('webhooks')
          ? 'signature'
          : statuses.includes(403)
            ? 'instance'
            : statuses.includes(401)
              ? 'apiKey'
              : 'public',
        statuses,
      });
      for (const p of parameters) {
        if (!['path', 'header', 'query'].includes(p.in))
          throw new Error(
            `${method} ${template}: parameters in ${p.in} are not modelled; extend api-fuzz.ts`,
          );
      }
    }
  }
  return routes;
}

export const routeName = (r: Route) => `${r.method} ${r.template}`;

// ── strings ──────────────────────────────────────────────────────────────────────────────────────────

/** A control character (other than tab, and line breaks where allowed) or a lone surrogate. */
export function forbidden(value: string, multiline: boolean): boolean {
  return (multiline ? /\p{Cs}|(?![\t\n\r])\p{Cc}/u : /\p{Cs}|(?!\t)\p{Cc}/u).test(value);
}

/** Percent-encodes every code unit but the unreserved ones; a lone surrogate becomes its (invalid) WTF-8. */
export function percentEncode(value: string): string {
  let out = '';
  for (const char of value) {
    if (/^[A-Za-z0-9\-._~]$/.test(char)) {
      out += char;
      continue;
    }
    const cp = char.codePointAt(0) ?? 0;
    const bytes =
      cp < 0x80
        ? [cp]
        : cp < 0x800
          ? [0xc0 | (cp >> 6), 0x80 | (cp & 0x3f)]
          : cp < 0x10000
            ? [0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f)]
            : [0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 0x3f), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f)];
    out += bytes.map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join('');
  }
  return out;
}

const tryDecode = (raw: string): string | null => {
  try {
    return decodeURIComponent(raw);
  } catch {
    return null;
  }
};

/** A query string as the server reads it: `&`-separated pairs, `+` is a space, undecodable text kept raw. */
export function parseQuery(raw: string): Array<[string, string]> {
  const pairs: Array<[string, string]> = [];
  if (!raw) return pairs;
  for (const part of raw.split('&')) {
    const eq = part.indexOf('=');
    const decode = (s: string) => {
      const spaced = s.replaceAll('+', ' ');
      return spaced.includes('%') ? (tryDecode(spaced) ?? spaced) : spaced;
    };
    if (eq < 0) {
      if (part.length > 0) pairs.push([decode(part), '']);
    } else pairs.push([decode(part.slice(0, eq)), decode(part.slice(eq + 1))]);
  }
  return pairs;
}

// ── requests ─────────────────────────────────────────────────────────────────────────────────────────

export type Auth = { kind: 'valid' } | { kind: 'none' } | { kind: 'value'; value: string };

export interface FuzzRequest {
  route: Route;
  /** Each path parameter as written in the request target (already percent-encoded, maybe badly). */
  segments: Record<string, string>;
  /** The query string as written (without `?`); empty for none. */
  query: string;
  auth: Auth;
  /** Other header lines, as latin1 text (no CR/LF; the raw-header property sends those). */
  headers: Array<[string, string]>;
  contentType?: string;
  body?: Buffer;
  chunked?: boolean;
}

export interface Credentials {
  apiKey: string;
  instanceId: string;
  instanceToken: string;
}

export function target(req: FuzzRequest): string {
  const path = req.route.template.replace(/\{([^}]+)\}/g, (_m, name: string) => req.segments[name] ?? '');
  return req.query ? `${path}?${req.query}` : path;
}

export function authHeader(req: FuzzRequest, creds: Credentials): string | undefined {
  if (req.auth.kind === 'none') return undefined;
  if (req.auth.kind === 'value') return req.auth.value;
  return req.route.auth === 'instance'
    ? `Bearer ${creds.instanceId}:${creds.instanceToken}`
    : `Bearer ${creds.apiKey}`;
}

export function toRaw(req: FuzzRequest, creds: Credentials): RawRequest {
  const headers: Array<[string, string]> = [];
  const auth = authHeader(req, creds);
  if (auth !== undefined) headers.push(['authorization', auth]);
  if (req.contentType !== undefined) headers.push(['content-type', req.contentType]);
  headers.push(...req.headers);
  return { method: req.route.method, target: target(req), headers, body: req.body, chunked: req.chunked };
}

/** Header values as Node hands them over: surrounding spaces and tabs trimmed, repeats joined by ", ". */
function receivedHeaders(req: FuzzRequest, creds: Credentials): Map<string, string> {
  const out = new Map<string, string>();
  const lines = toRaw(req, creds).headers ?? [];
  for (const [rawName, rawValue] of lines) {
    const name = rawName.toLowerCase();
    const value = rawValue.replace(/^[ \t]+|[ \t]+$/g, '');
    const seen = out.get(name);
    // Node keeps the first of a repeated authorization / content-type and joins the others.
    if (seen === undefined) out.set(name, value);
    else if (name !== 'authorization' && name !== 'content-type') out.set(name, `${seen}, ${value}`);
  }
  return out;
}

// ── the oracle ───────────────────────────────────────────────────────────────────────────────────────

export interface Expectation {
  /** The statuses the API may answer. */
  statuses: number[];
  /** Where the request is refused (or `handler` when it is not). */
  stage: 'url' | 'auth' | 'body' | 'strings' | 'schema' | 'handler';
  /** The request is invalid: the answer must be a 4xx in the error format and nothing may change. */
  invalid: boolean;
  /**
   * For a refusal of a control character: the fields that hold one; the message must name one of them
   * (`<field> contains …`, or `<field> key "…" contains …` for a key).
   */
  fields: string[];
  /** A valid request that could change state (the suite must never send one). */
  unsafe: boolean;
}

const refuse = (stage: Expectation['stage'], statuses: number[], fields: string[] = []): Expectation => ({
  statuses,
  stage,
  invalid: true,
  fields,
  unsafe: false,
});

interface Node {
  value: unknown;
  depth: number;
  parent: Node | null;
  /** `.key` or `[i]`: this node's part of its field name. */
  step: string;
}
const fieldOf = (node: Node): string => {
  const steps: string[] = [];
  for (let n: Node | null = node; n; n = n.parent) steps.push(n.step);
  return steps.reverse().join('');
};

/**
 * Fields holding a forbidden character, named the way the API's errors name them (`body.a[0]`, and
 * `body.a key ` for a key). Iterative: bodies nest tens of thousands of levels deep.
 */
function stringProblems(root: unknown, field: string, multiline: boolean): string[] {
  const problems: string[] = [];
  const stack: Node[] = [{ value: root, depth: 0, parent: null, step: field }];
  while (stack.length > 0) {
    const node = stack.pop() as Node;
    const { value, depth } = node;
    if (typeof value === 'string') {
      if (forbidden(value, multiline)) problems.push(fieldOf(node));
    } else if (Array.isArray(value)) {
      value.forEach((item, i) => {
        stack.push({ value: item, depth: depth + 1, parent: node, step: `[${i}]` });
      });
    } else if (value !== null && typeof value === 'object') {
      for (const [key, item] of Object.entries(value)) {
        if (forbidden(key, false)) problems.push(`${fieldOf(node)} key `);
        stack.push({ value: item, depth: depth + 1, parent: node, step: `.${key}` });
      }
    }
  }
  return problems;
}

const MAX_BODY_DEPTH = 64;

/** How many arrays and objects deep `root` nests (iterative: bodies nest tens of thousands deep). */
function nestingDepth(root: unknown): number {
  let max = 0;
  const stack: Array<{ value: unknown; depth: number }> = [{ value: root, depth: 0 }];
  while (stack.length > 0) {
    const { value, depth } = stack.pop() as { value: unknown; depth: number };
    if (value === null || typeof value !== 'object') continue;
    max = Math.max(max, depth + 1);
    for (const item of Object.values(value)) stack.push({ value: item, depth: depth + 1 });
  }
  return max;
}

/** secure-json-parse's refusal (Fastify's JSON parser): `__proto__`, or `constructor.prototype`. */
function prototypePoisoning(root: unknown): boolean {
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const value = stack.pop();
    if (value === null || typeof value !== 'object') continue;
    if (Array.isArray(value)) {
      stack.push(...value);
      continue;
    }
    if (Object.hasOwn(value, '__proto__')) return true;
    const ctor = (value as Record<string, unknown>).constructor;
    if (Object.hasOwn(value, 'constructor') && ctor !== null && typeof ctor === 'object') {
      if (Object.hasOwn(ctor, 'prototype')) return true;
    }
    stack.push(...Object.values(value));
  }
  return false;
}

function credentialsValid(route: Route, header: string | undefined, creds: Credentials): 'ok' | 401 | 403 {
  if (route.auth === 'public') return 'ok';
  // HTTP trims only its own whitespace (SP, HTAB) around a header value; JavaScript's trim() would also take
  // e.g. U+00A0, which a header may carry as a byte (obs-text) and the API rightly reads as a credential.
  const token = header?.startsWith('Bearer ')
    ? header.slice('Bearer '.length).replace(/^[ \t]+|[ \t]+$/g, '') || null
    : null;
  if (route.auth === 'apiKey') return token === creds.apiKey ? 'ok' : 401;
  if (token === null) return 401;
  const sep = token.indexOf(':');
  return sep > 0 && token.slice(0, sep) === creds.instanceId && token.slice(sep + 1) === creds.instanceToken
    ? 'ok'
    : 403;
}

/** What the API may answer to `req`. `knownIds` are the ids of live instances (a valid request naming one is unsafe). */
export function expect(req: FuzzRequest, creds: Credentials, knownIds: Set<string>): Expectation {
  const { route } = req;

  // 1. The URL.
  const params: Record<string, string> = {};
  for (const { name } of route.params) {
    const decoded = tryDecode(req.segments[name] ?? '');
    if (decoded === null) return refuse('url', [400]);
    if (decoded.length > MAX_PARAM_LENGTH) return refuse('url', [414]);
    params[name] = decoded;
  }

  // 2. Credentials. A webhook without its provider's signature is refused, whatever else it holds: a 4xx
  // the route documents (not configured, unsigned, badly signed, replayed, too large, not JSON), nothing else.
  if (route.auth === 'signature')
    return refuse(
      'auth',
      route.statuses.filter((s) => s >= 400 && s < 500),
    );
  const headers = receivedHeaders(req, creds);
  const auth = credentialsValid(route, headers.get('authorization'), creds);
  if (auth !== 'ok') return refuse('auth', [auth]);

  // 3. The body as bytes.
  let body: unknown;
  if (!BODYLESS.has(route.method)) {
    const contentType = headers.get('content-type');
    const hasBytes = req.body !== undefined && (req.body.length > 0 || !!req.chunked);
    if (contentType === undefined) {
      if (hasBytes) return refuse('body', [415]);
    } else {
      const mediaType = contentType.split(';')[0]?.trim().toLowerCase();
      if (mediaType !== 'application/json') return refuse('body', [415]);
      // Bodies are UTF-8: a declared charset that is not UTF-8 is refused before the body is read.
      const charset = /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(contentType)?.[1];
      if (charset && charset.toLowerCase() !== 'utf-8') return refuse('body', [415]);
      const bytes = req.body ?? Buffer.alloc(0);
      if (bytes.length > bodyLimit(route)) return refuse('body', [413]);
      if (bytes.length === 0) return refuse('body', [400]);
      try {
        body = JSON.parse(bytes.toString('utf8').replace(/^\uFEFF/, ''));
      } catch {
        return refuse('body', [400]);
      }
      if (prototypePoisoning(body)) return refuse('body', [400]);
    }
  }

  // 4. Control characters and lone surrogates, wherever the client put them.
  const query = parseQuery(req.query);
  const fields: string[] = [];
  for (const name of READ_HEADERS) {
    const value = headers.get(name);
    if (value !== undefined && forbidden(value, false)) fields.push(`header ${name}`);
  }
  for (const [name, value] of Object.entries(params)) {
    if (forbidden(value, false)) fields.push(`path.${name}`);
  }
  const counts = new Map<string, number>();
  for (const [key] of query) counts.set(key, (counts.get(key) ?? 0) + 1);
  const seen = new Map<string, number>();
  for (const [key, value] of query) {
    const i = seen.get(key) ?? 0;
    seen.set(key, i + 1);
    if (forbidden(key, false)) fields.push('query key ');
    if (forbidden(value, false))
      fields.push((counts.get(key) ?? 0) > 1 ? `query.${key}[${i}]` : `query.${key}`);
  }
  fields.push(...stringProblems(body, 'body', true));
  // No route takes JSON nested deeper than 64 levels: such a body is refused as a whole.
  if (nestingDepth(body) > MAX_BODY_DEPTH) fields.push('body');
  if (fields.length > 0) return refuse('strings', [400], fields);

  // 5. The route's schemas.
  for (const { name, schema } of route.params) {
    if (!satisfies(schema, params[name])) return refuse('schema', [400]);
  }
  for (const { name, schema, required } of route.headerParams) {
    const value = headers.get(name);
    if (value === undefined ? required : !satisfies(schema, value)) return refuse('schema', [400]);
  }
  if (route.queryParams.length > 0) {
    const declared = new Set(route.queryParams.map((p) => p.name));
    if (query.some(([key]) => !declared.has(key))) return refuse('schema', [400]);
    for (const { name, schema, required } of route.queryParams) {
      const values = query.filter(([key]) => key === name).map(([, value]) => value);
      if (values.length > 1) return refuse('schema', [400]);
      if (values.length === 0 ? required : !satisfies(schema, values[0])) return refuse('schema', [400]);
    }
  }
  if (route.body) {
    if (body === undefined ? route.body.required : !satisfies(route.body.schema, body))
      return refuse('schema', [400]);
  }

  // 6. A valid request. A read answers what the document lists; a write naming an unknown resource is a
  // 404; any other write could change state.
  if (route.method === 'GET') {
    return {
      statuses: route.statuses.filter((s) => s < 500),
      stage: 'handler',
      invalid: false,
      fields: [],
      unsafe: false,
    };
  }
  const names = Object.values(params);
  if (names.length > 0 && names.every((v) => !knownIds.has(v))) {
    return { statuses: [404], stage: 'handler', invalid: false, fields: [], unsafe: false };
  }
  return { statuses: [], stage: 'handler', invalid: false, fields: [], unsafe: true };
}
