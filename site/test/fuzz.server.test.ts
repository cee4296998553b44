// Property-based fuzzing of every site endpoint (fast-check) against the built site server, run as its own
// process in front of a fake API that answers like the real one and records what reaches it (test/fake-api.ts).
// Requests are sent byte for byte (test/raw-http.ts): control characters, bidi overrides, lone surrogates,
// invalid UTF-8, huge strings, percent-encoded junk, wrong shapes, sizes, methods and content types.
//
// Every property asserts: no 5xx, ever; the answer the contract predicts (a claim is accepted exactly when the
// shared claim contract and the invite shape say so; a session exists exactly when the right key and CSRF token
// were posted; console actions need a session and its token); and nothing outside the contract reaches the
// API (the fake API's violations stay empty). SITE_FUZZ_RUNS scales the number of runs (default 1).
import type { ChildProcess } from 'node:child_process';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  agentNameProblem,
  controlCharacterProblem,
  isIdempotencyKey,
  isTemplateSlug,
} from '../../contracts/claim';
import { checkInviteUrl } from '../src/lib/invite';
import { COUNT_KEYS } from '../src/lib/types';
import { type FakeApi, startFakeApi } from './fake-api';
import { type RawRequest, type RawResponse, rawRequest } from './raw-http';
import { startSite, stopProc } from './site-server';

const SCALE = Number(process.env.SITE_FUZZ_RUNS ?? 1) || 1;
const runs = (n: number) => ({ numRuns: Math.round(n * SCALE), interruptAfterTimeLimit: 25_000 * SCALE });

let api: FakeApi;
let site: { proc: ChildProcess; url: string };
let seq = 0;

// ---------------------------------------------------------------------------------------------- generators

const HOSTILE_CHARS = [
  '\u0000',
  '\u0001',
  '\u0007',
  '\b',
  '\t',
  '\n',
  '\u000b',
  '\f',
  '\r',
  '\u001b',
  '\u007f',
  '\u0085',
  '\u009b',
  '\u00a0',
  '\u061c',
  '\u200b',
  '\u200c',
  '\u200d',
  '\u200e',
  '\u202a',
  '\u202e',
  '\u2066',
  '\u2069',
  '\u2028',
  '\u2029',
  '\ufeff',
  '\ufffe',
  '\uffff',
  '\ud800',
  '\udbff',
  '\udc00',
  '\udfff',
  '😀',
  '👩‍💻',
  'é',
  'ß',
  'Ж',
  '%',
  '%00',
  '%zz',
  '"',
  "'",
  '\\',
  '/',
  '..',
  '<script>',
  '&',
  ' ',
  '+',
  '=',
  ';',
  ',',
  '{',
  '}',
  '[',
  ']',
];
const utf16Unit = fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c));

/** Strings a hostile client sends: control/format characters, lone surrogates, any code point, huge ones. */
const hostile: fc.Arbitrary<string> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc
      .array(fc.oneof(fc.constantFrom(...HOSTILE_CHARS), fc.string({ maxLength: 4 })), { maxLength: 12 })
      .map((a) => a.join('')),
  },
  { weight: 2, arbitrary: fc.string({ unit: utf16Unit, maxLength: 30 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 30 }) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.constantFrom(1, 63, 64, 65, 4097, 70_000), fc.constantFrom('x', 'é', '😀', '\u0000', ' '))
      .map(([n, c]) => c.repeat(n)),
  },
);

const SLUG_ALPHABET = [...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-*'];
const inviteCode = fc.string({ unit: fc.constantFrom(...SLUG_ALPHABET), minLength: 16, maxLength: 60 });
const joinUrl = fc.oneof(
  inviteCode.map((c) => `https://dev.convos.org/v2?i=${c}`),
  inviteCode.map((c) => `https://popup.convos.org/v2?code=${c}`),
  inviteCode.map((c) => `convos://join/${c}`),
  inviteCode,
  fc.tuple(inviteCode, hostile).map(([c, h]) => `https://dev.convos.org/v2?i=${c}${h}`),
  fc.tuple(inviteCode, hostile).map(([c, h]) => `https://dev.con${h}vos.org/v2?i=${c}`),
  hostile,
);

/** Percent-encodes bytes (unreserved ASCII stays as it is). */
const pct = (bytes: Uint8Array) =>
  [...bytes]
    .map((b) =>
      /[A-Za-z0-9\-._~]/.test(String.fromCharCode(b))
        ? String.fromCharCode(b)
        : `%${b.toString(16).toUpperCase().padStart(2, '0')}`,
    )
    .join('');

/** One path segment: encoded hostile text, arbitrary bytes (invalid UTF-8), broken escapes, raw text. */
const segment = fc.oneof(
  { weight: 6, arbitrary: hostile.map((s) => pct(Buffer.from(s, 'utf8'))) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 24 }).map(pct) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      '%',
      '%z',
      '%4',
      '%%',
      '%00',
      '%0A',
      '%ED%A0%80',
      '%C0%AF',
      '%FF',
      '%2F',
      '%2e%2e',
      '..',
      '.',
      '%5C',
      '',
      'trip-planner',
      'trip%2Dplanner',
      'Trip-Planner',
      'i-1',
      'i-404',
      'x'.repeat(300),
      '%25',
      '%u202e',
      '%E2%80%AE',
    ),
  },
  {
    weight: 1,
    arbitrary: fc.string({ unit: fc.constantFrom(..."aé😀-._~!$&'()*+,;=:@".split('')), maxLength: 12 }),
  },
);
const query = fc
  .array(fc.tuple(fc.constantFrom('q', 'category', 'status', 'error', 'wait', 'x', ''), segment), {
    maxLength: 3,
  })
  .map((pairs) => (pairs.length ? `?${pairs.map(([k, v]) => `${k}=${v}`).join('&')}` : ''));

/** Header values as a client can send them: no CR/LF (they would split our own request), anything else. */
const headerValue = hostile.map((s) => s.replace(/[\r\n]/g, ''));
const ipv4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((p) => p.join('.'));
const forwardedFor = fc.option(
  fc.oneof(
    ipv4,
    headerValue,
    fc.tuple(headerValue, ipv4).map(([h, ip]) => `${h}, ${ip}`),
  ),
  { nil: undefined },
);
const anyValue = fc.oneof(
  hostile,
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.nat(), { maxLength: 3 }),
  fc.object({ maxDepth: 1 }),
);

/**
 * A request as a test case: a valid one (what the page sends) with up to three mutations applied, so that
 * both sides of every rule are exercised, one rule at a time as well as several at once.
 */
const withMutations = <M>(mutation: fc.Arbitrary<M>) => fc.array(mutation, { maxLength: 3 });

/** A claim: headers and fields; `raw` replaces the JSON body (any JSON, bytes, a huge body). */
interface Claim {
  key: string;
  type: string | undefined;
  fields: Record<string, unknown>;
  raw?: Uint8Array;
  xff?: string | undefined;
  origin: string;
}
const validClaimFields = fc.record(
  {
    templateSlug: fc.constant('trip-planner'),
    agentName: fc.constantFrom(
      'Bob',
      ' Bob ',
      '👩‍💻 Coder',
      'Ассистент',
      'مساعد',
      'x'.repeat(64),
      '😀'.repeat(64),
      'Zoë & Co.',
      '',
    ),
    joinUrl: fc.oneof(
      inviteCode.map((c) => `https://dev.convos.org/v2?i=${c}`),
      inviteCode.map((c) => `https://popup.convos.org/v2?code=${c}`),
      inviteCode.map((c) => `convos://join/${c}`),
      inviteCode,
    ),
    maxWaitMs: fc.integer({ min: 0, max: 60_000 }),
  },
  { requiredKeys: [] },
);
type ClaimMutation =
  | { set: string; value: unknown }
  | { key: string }
  | { type: string | undefined }
  | { raw: Uint8Array }
  | { xff: string | undefined }
  | { origin: string };
const claimMutation: fc.Arbitrary<ClaimMutation> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ set: fc.constant('agentName'), value: fc.oneof(hostile, anyValue) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      set: fc.constant('templateSlug'),
      value: fc.oneof(hostile, anyValue, fc.constant('no-such-template')),
    }),
  },
  { weight: 2, arbitrary: fc.record({ set: fc.constant('joinUrl'), value: fc.oneof(joinUrl, anyValue) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      set: fc.constant('maxWaitMs'),
      value: fc.oneof(fc.integer({ min: -10, max: 70_000 }), anyValue),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      set: fc.oneof(fc.constantFrom('instructions', '__proto__', 'constructor'), hostile),
      value: anyValue,
    }),
  },
  { weight: 1, arbitrary: fc.record({ key: headerValue }) },
  {
    weight: 1,
    arbitrary: fc.record({
      type: fc.oneof(
        fc.constantFrom(
          'text/plain',
          'application/x-www-form-urlencoded',
          'multipart/form-data; boundary=x',
          'application/jsonx',
          'text/json',
          'application/json; charset=utf-8',
          'APPLICATION/JSON',
          undefined,
        ),
        headerValue,
      ),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      raw: fc.oneof(
        fc.jsonValue().map((v) => Buffer.from(JSON.stringify(v) ?? '', 'utf8')),
        fc.uint8Array({ maxLength: 200 }),
        fc.constantFrom(65_536, 70_000).map((n) => Buffer.from(JSON.stringify({ agentName: 'x'.repeat(n) }))),
      ),
    }),
  },
  { weight: 1, arbitrary: fc.record({ xff: forwardedFor }) },
  { weight: 1, arbitrary: fc.record({ origin: fc.constantFrom('http://evil.example', 'null', '') }) },
);
const claimCase: fc.Arbitrary<Claim> = fc
  .tuple(validClaimFields, withMutations(claimMutation), fc.option(ipv4, { nil: undefined }))
  .map(([fields, mutations, xff]) => {
    const c: Claim = { key: `fz-${++seq}`, type: 'application/json', fields: { ...fields }, xff, origin: '' };
    for (const m of mutations) {
      if ('set' in m)
        Object.defineProperty(c.fields, m.set, {
          value: m.value,
          enumerable: true,
          writable: true,
          configurable: true,
        });
      else Object.assign(c, m);
    }
    return c;
  });
const claimBody = (c: Claim) => c.raw ?? Buffer.from(JSON.stringify(c.fields), 'utf8');

// ------------------------------------------------------------------------------------------------- oracles

/** Node's HTTP parser refuses these in a header value itself (400), before the site sees the request. */
const badHeaderByte = (v: string) => /[\x00-\x08\x0a-\x1f\x7f]/.test(v);
/** What the site sees of a header value: trimmed of spaces and tabs, bytes read as Latin-1. */
const seenHeader = (v: string) => Buffer.from(v.replace(/^[ \t]+|[ \t]+$/g, ''), 'utf8').toString('latin1');

/** Whether the contract (and the invite shape check) accepts this claim: the site must agree exactly. */
function claimIsValid(key: string, type: string, body: Uint8Array): boolean {
  if (!isIdempotencyKey(seenHeader(key))) return false;
  if (seenHeader(type).split(';')[0]?.trim().toLowerCase() !== 'application/json') return false;
  if (body.byteLength > 64 * 1024) return false;
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body));
  } catch {
    return false;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const o = value as Record<string, unknown>;
  if (Object.keys(o).some((k) => !['templateSlug', 'agentName', 'joinUrl', 'maxWaitMs'].includes(k)))
    return false;
  if (o.templateSlug !== undefined && !isTemplateSlug(o.templateSlug)) return false;
  if (o.agentName !== undefined && o.agentName !== '' && agentNameProblem(o.agentName) !== null) return false;
  if (
    o.joinUrl !== undefined &&
    o.joinUrl !== '' &&
    (typeof o.joinUrl !== 'string' || !checkInviteUrl(o.joinUrl).ok)
  )
    return false;
  const w = o.maxWaitMs;
  if (w !== undefined && !(typeof w === 'number' && Number.isInteger(w) && w >= 0 && w <= 60_000))
    return false;
  return true;
}

/**
 * A request target Node refuses (raw bytes outside printable ASCII) or Astro cannot decode (a broken or
 * non-UTF-8 percent escape): either answers 400 itself.
 */
const malformedUrl = (target: string) => {
  if (/[^\x21-\x7e]/.test(target)) return true;
  try {
    decodeURI(target);
    return false;
  } catch {
    return true;
  }
};

/** A query parameter (name or value) with a control character or a lone surrogate: the site answers 400. */
const controlInQuery = (q: string) =>
  [...new URL(q, 'http://site.invalid').searchParams].some(
    ([k, v]) => controlCharacterProblem(k, false) ?? controlCharacterProblem(v, false),
  );

/** The path a URL routes to once dot segments (also `%2e%2e`) are resolved. */
const normalized = (target: string) => new URL(target, 'http://site.invalid').pathname;

/** Node answers 431 itself for a request head over its 16 KiB limit, before the site sees the request. */
const headTooLarge = (res: RawResponse, headers: Array<[string, string]>) =>
  res.status === 431 &&
  headers.reduce((n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(v) + 4, 0) > 8 * 1024;

/** A site answer is never a 5xx, and its 4xx JSON errors have a message and a code. */
function expectSane(res: RawResponse, what: string): void {
  what = what.length > 400 ? `${what.slice(0, 400)}…` : what;
  expect(res.status, `${what} → ${res.status} ${res.body.toString().slice(0, 300)}`).toBeLessThan(500);
  if (res.status >= 400 && (res.headers['content-type'] ?? '').includes('application/json')) {
    const data = JSON.parse(res.body.toString()) as { error?: unknown; code?: unknown };
    expect(typeof data.error, what).toBe('string');
    expect(typeof data.code, what).toBe('string');
  }
  const location = res.headers.location;
  if (location !== undefined) {
    // Redirects stay on the site: a path of printable ASCII (no header injection), never `//host` or `/\host`.
    expect(location, what).toMatch(/^\/(?![/\\])[\x21-\x7e]*$/);
  }
}

/** Runs `check`, then asserts that nothing outside the contract reached the API meanwhile. */
async function withApiWatch<T>(check: () => Promise<T>): Promise<T> {
  const before = api.violations.length;
  const result = await check();
  expect(api.violations.slice(before)).toEqual([]);
  return result;
}

const send = (req: RawRequest) => rawRequest(site.url, req);
const headersOf = (h: Record<string, string | undefined>): Array<[string, string]> =>
  Object.entries(h).filter((e): e is [string, string] => e[1] !== undefined);
const cookie = (res: RawResponse, name: string) =>
  res.cookies.map((c) => new RegExp(`^${name}=([^;]*)`).exec(c)?.[1]).find((v) => v !== undefined);

interface Login {
  session: string;
  csrf: string;
}

async function login(ip: string): Promise<Login> {
  const page = await send({ method: 'GET', target: '/admin', headers: [['X-Forwarded-For', ip]] });
  const loginCsrf = cookie(page, 'convos_login_csrf') ?? '';
  const res = await send({
    method: 'POST',
    target: '/admin/login',
    headers: [
      ['Origin', site.url],
      ['Content-Type', 'application/x-www-form-urlencoded'],
      ['Cookie', `convos_login_csrf=${loginCsrf}`],
      ['X-Forwarded-For', ip],
    ],
    body: new URLSearchParams({ csrf: loginCsrf, key: api.apiKey }).toString(),
  });
  const session = cookie(res, 'convos_admin') ?? '';
  expect(session).not.toBe('');
  const csrf = /name="csrf" value="([^"]+)"/.exec((await consolePage(session)).body.toString())?.[1] ?? '';
  expect(csrf).not.toBe('');
  return { session, csrf };
}

const consolePage = (session: string) =>
  send({ method: 'GET', target: '/admin', headers: [['Cookie', `convos_admin=${session}`]] });
const loggedIn = async (session: string) =>
  (await consolePage(session)).body.toString().includes('action="/admin/logout"');

/** A form body, urlencoded or multipart, from fields in order (values encoded as UTF-8). */
function formBody(fields: Array<[string, string]>, multipart: boolean): { type: string; body: Buffer } {
  if (!multipart) {
    const enc = (s: string) => pct(Buffer.from(s, 'utf8'));
    return {
      type: 'application/x-www-form-urlencoded',
      body: Buffer.from(fields.map(([k, v]) => `${enc(k)}=${enc(v)}`).join('&')),
    };
  }
  const b = 'fuzzboundary7MA4YWxkTrZu0gW';
  const parts = fields.map(
    ([k, v]) => `--${b}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`,
  );
  return {
    type: `multipart/form-data; boundary=${b}`,
    body: Buffer.from(`${parts.join('')}--${b}--\r\n`, 'utf8'),
  };
}

/** The field values the site reads from a form: the first of each name, as the server decodes it. */
const firstField = (fields: Array<[string, string]>, name: string) => {
  const hit = fields.find(([k]) => Buffer.from(k, 'utf8').toString() === name);
  return hit ? Buffer.from(hit[1], 'utf8').toString() : undefined;
};
const formIsClean = (fields: Array<[string, string]>) =>
  fields.every(([k, v]) =>
    [k, v].every((s) => controlCharacterProblem(Buffer.from(s, 'utf8').toString(), false) === null),
  );

// ----------------------------------------------------------------------------------------------- the suite

beforeAll(async () => {
  api = await startFakeApi();
  // One trusted proxy hop: every request's X-Forwarded-For is fuzzed, and its right end is the client.
  site = await startSite(api.url, api.apiKey, {
    SITE_TRUSTED_PROXY_HOPS: '1',
    SITE_CLAIM_RATE_LIMIT: '1000000',
  });
});

afterAll(async () => {
  await stopProc(site?.proc, 5_000);
  await api?.close();
});

/** Sends a claim to `/api/claim` or `/admin/claim` and checks the answer against the contract. */
async function fuzzClaim(c: Claim, path: string, extra: Record<string, string | undefined> = {}) {
  const body = claimBody(c);
  const headers = headersOf({
    'Idempotency-Key': c.key,
    'Content-Type': c.type,
    'X-Forwarded-For': c.xff,
    Origin: c.origin || site.url,
    ...extra,
  });
  const res = await withApiWatch(() => send({ method: 'POST', target: path, headers, body }));
  const what = `${path} ${JSON.stringify({ ...c, raw: c.raw && Buffer.from(c.raw).toString().slice(0, 100) })}`;
  expectSane(res, what);
  return { res, headers, body, what };
}

/** The answer to a claim that got past the session gate (if any): exactly what the contract says. */
function expectClaimAnswer(
  c: Claim,
  { res, headers, body, what }: Awaited<ReturnType<typeof fuzzClaim>>,
): 'refused' | 'accepted' | 'node' {
  if (headTooLarge(res, headers)) return 'node';
  if (headers.some(([, v]) => badHeaderByte(v))) {
    expect(res.status, what).toBe(400);
    return 'node';
  }
  const formLike = /application\/x-www-form-urlencoded|multipart\/form-data|text\/plain/i.test(c.type ?? '');
  // Astro's origin check: a form-like or untyped POST from another origin.
  if (c.origin && (c.type === undefined || formLike)) {
    expect(res.status, what).toBe(403);
    return 'refused';
  }
  if (!claimIsValid(c.key, c.type ?? '', body)) {
    expect([400, 413, 415], what).toContain(res.status);
    return 'refused';
  }
  expect(res.status, what).toBe(200);
  expect(res.body.toString(), what).toContain('event: complete');
  return 'accepted';
}

const claimSeen = (key: string) =>
  api.requests.findLast(
    (r) => r.path === '/api/pool/claim' && r.headers['idempotency-key'] === seenHeader(key),
  );

describe('fuzz: the public claim (POST /api/claim)', () => {
  it('accepts exactly what the contract accepts, forwards only that, for an opaque visitor id; never 5xx', async () => {
    const outcomes = { accepted: 0, refused: 0, node: 0 };
    await fc.assert(
      fc.asyncProperty(claimCase, async (c) => {
        const sent = await fuzzClaim(c, '/api/claim');
        const outcome = expectClaimAnswer(c, sent);
        outcomes[outcome] += 1;
        if (outcome !== 'accepted') return;
        // The API saw this claim, for this anonymous visitor, under an opaque id.
        const seen = claimSeen(c.key);
        expect(seen?.headers['x-client-id'], sent.what).toMatch(/^site-[0-9a-f]{32}$/);
        expect(seen?.headers['x-client-anonymous'], sent.what).toBe('true');
        if (c.xff) expect(String(seen?.headers['x-client-id']), sent.what).not.toContain(c.xff);
      }),
      runs(200),
    );
    // The generator keeps both sides of the contract busy.
    expect(outcomes.accepted).toBeGreaterThan(20 * SCALE);
    expect(outcomes.refused).toBeGreaterThan(50 * SCALE);
  });
});

describe('fuzz: GET endpoints and pages', () => {
  it('GET /api/counts answers the counts whatever the query, headers or method', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'),
        query,
        forwardedFor,
        headerValue,
        async (method, q, xff, accept) => {
          const headers = headersOf({ 'X-Forwarded-For': xff, Accept: accept, Origin: site.url });
          const res = await withApiWatch(() => send({ method, target: `/api/counts${q}`, headers }));
          const what = `${method} /api/counts${q} accept=${JSON.stringify(accept)}`;
          expectSane(res, what);
          if (headTooLarge(res, [...headers, ['', q]])) return;
          if (badHeaderByte(accept) || (xff !== undefined && badHeaderByte(xff)))
            return void expect(res.status, what).toBe(400);
          // Node or Astro ("Bad request"), or the site: a control character in a query parameter.
          if (method === 'GET' && (malformedUrl(q) || controlInQuery(q)))
            return void expect(res.status, what).toBe(400);
          if (method === 'GET') {
            expect(res.status, what).toBe(200);
            expect(Object.keys(JSON.parse(res.body.toString())).sort(), what).toEqual([...COUNT_KEYS].sort());
          }
        },
      ),
      runs(60),
    );
  });

  it('pages, images and unknown paths answer a normal page (200/404) or a 4xx, never a 5xx', async () => {
    const shapes = fc.oneof(
      segment.map((s) => `/a/${s}`),
      segment.map((s) => `/og/${s}.png`),
      segment.map((s) => `/qr/${s}.png`),
      segment.map((s) => `/og/${s}`),
      fc.array(segment, { minLength: 1, maxLength: 4 }).map((s) => `/${s.join('/')}`),
      query.map((q) => `/${q}`),
      query.map((q) => `/admin${q}`),
      fc.constantFrom(
        '/safety',
        '/a/trip-planner',
        '/og/trip-planner.png',
        '/qr/trip-planner.png',
        '/404',
        '/_image',
        '/_image?href=%00',
        '/_server-islands/x',
        '//',
        '/./a/../a/trip-planner',
        '/a/trip-planner/',
      ),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('GET', 'GET', 'GET', 'HEAD', 'POST', 'DELETE'),
        shapes,
        query,
        forwardedFor,
        async (method, path, q, xff) => {
          const target = `${path}${path.includes('?') ? '' : q}`;
          const headers = headersOf({
            'X-Forwarded-For': xff,
            Origin: site.url,
            'Content-Type': method === 'POST' ? 'application/json' : undefined,
          });
          const res = await withApiWatch(() =>
            send({ method, target, headers, body: method === 'POST' ? '{}' : undefined }),
          );
          const what = `${method} ${JSON.stringify(target)}`;
          expectSane(res, what);
          if (headTooLarge(res, [...headers, ['', target]])) return;
          if (method === 'GET') expect([200, 301, 302, 303, 308, 400, 404], what).toContain(res.status);
          // (`/og/%2e%2e` is `/`: dot segments are resolved, as browsers do, before routing.)
          if (res.status === 200 && /^\/(og|qr)\//.test(normalized(target)) && method === 'GET') {
            expect(res.headers['content-type'], what).toBe('image/png');
          }
        },
      ),
      runs(200),
    );
  });
});

describe('fuzz: the operator console', () => {
  let admin: Login;
  beforeAll(async () => {
    admin = await login('192.0.2.1');
  });

  it('POST /admin/login creates a session exactly for the right key with the form token; never 5xx', async () => {
    type LoginMutation =
      | { csrf: string }
      | { key: string }
      | { extra: [string, string]; first: boolean }
      | { kind: 'multipart' | 'text/plain' | 'application/json' | 'none' }
      | { crossOrigin: true }
      | { noCookie: true };
    const mutation: fc.Arbitrary<LoginMutation> = fc.oneof(
      fc.record({ csrf: fc.oneof(hostile, fc.constant('')) }),
      fc.record({
        key: fc.oneof(
          hostile,
          fc.constantFrom('', `${api.apiKey} `, api.apiKey.toUpperCase(), api.apiKey.slice(1)),
        ),
      }),
      fc.record({
        extra: fc.tuple(fc.oneof(fc.constantFrom('csrf', 'key'), hostile), hostile),
        first: fc.boolean(),
      }),
      fc.record({
        kind: fc.constantFrom('multipart', 'multipart', 'text/plain', 'application/json', 'none'),
      }),
      fc.record({ crossOrigin: fc.constant(true as const) }),
      fc.record({ noCookie: fc.constant(true as const) }),
    );
    const outcomes = { session: 0, none: 0 };
    await fc.assert(
      fc.asyncProperty(withMutations(mutation), async (mutations) => {
        const ip = `198.51.${(++seq >> 8) & 255}.${seq & 255}`; // a fresh client each run: no attempt limit
        const page = await send({ method: 'GET', target: '/admin', headers: [['X-Forwarded-For', ip]] });
        const loginCsrf = cookie(page, 'convos_login_csrf') ?? '';
        const fields: Array<[string, string]> = [
          ['csrf', loginCsrf],
          ['key', api.apiKey],
        ];
        let kind = 'urlencoded';
        let sameOrigin = true;
        let hasCookie = true;
        for (const m of mutations) {
          if ('csrf' in m) fields[0] = ['csrf', m.csrf];
          else if ('key' in m) fields[1] = ['key', m.key];
          else if ('extra' in m) m.first ? fields.unshift(m.extra) : fields.push(m.extra);
          else if ('kind' in m) kind = m.kind;
          else if ('crossOrigin' in m) sameOrigin = false;
          else hasCookie = false;
        }
        const form = formBody(fields, kind === 'multipart');
        const type =
          kind === 'urlencoded' || kind === 'multipart' ? form.type : kind === 'none' ? undefined : kind;
        const res = await withApiWatch(() =>
          send({
            method: 'POST',
            target: '/admin/login',
            headers: headersOf({
              Origin: sameOrigin ? site.url : 'http://evil.example',
              'Content-Type': type,
              Cookie: hasCookie ? `convos_login_csrf=${loginCsrf}` : undefined,
              'X-Forwarded-For': ip,
            }),
            body: form.body,
          }),
        );
        const what = `login ${JSON.stringify(mutations)}`;
        expectSane(res, what);
        const shouldLogIn =
          sameOrigin &&
          hasCookie &&
          (kind === 'urlencoded' || kind === 'multipart') &&
          form.body.length <= 4096 &&
          formIsClean(fields) &&
          firstField(fields, 'csrf') === loginCsrf &&
          firstField(fields, 'key') === api.apiKey;
        const session = cookie(res, 'convos_admin');
        outcomes[session ? 'session' : 'none'] += 1;
        // A multipart body with a hostile field name is malformed on purpose: it may only ever fail closed.
        if (kind === 'multipart' && shouldLogIn && !session && res.status === 400) return;
        expect(Boolean(session), what).toBe(shouldLogIn);
        expect(res.status, what).toBe(shouldLogIn ? 303 : res.status);
      }),
      runs(100),
    );
    expect(outcomes.session).toBeGreaterThan(5 * SCALE);
    expect(outcomes.none).toBeGreaterThan(30 * SCALE);
  });

  it('POST /admin/action: only a session with its token reaches the API, with valid values only; never 5xx', async () => {
    const validForm = fc.oneof(
      fc.record({
        action: fc.constantFrom('replenish', 'drain'),
        count: fc.integer({ min: 1, max: 20 }).map(String),
      }),
      fc.record(
        {
          action: fc.constant('target'),
          targetIdle: fc.integer({ min: 0, max: 1000 }).map(String),
          maxTotal: fc.integer({ min: 1, max: 10_000 }).map(String),
        },
        { requiredKeys: ['action', 'targetIdle'] },
      ),
      fc.record({ action: fc.constant('reconcile') }),
      fc.record({ action: fc.constantFrom('kill', 'dismiss', 'retry'), id: fc.constantFrom('i-1', 'i-404') }),
      fc.record({
        action: fc.constant('llm-limit'),
        id: fc.constantFrom('i-1', 'i-404'),
        monthlyLimitUsd: fc.oneof(
          fc.integer({ min: 1, max: 100_000 }).map(String),
          fc.constantFrom('0.01', '12.5', '99999.99'),
        ),
      }),
    );
    const number = fc.oneof(
      fc.integer({ min: -5, max: 20_000 }).map(String),
      fc.constantFrom('21', '0', '1e1', '0x10', ' 3 ', '2.5', '', 'NaN', 'Infinity', '-0'),
      hostile,
    );
    type ActionMutation =
      | { set: string; value: string }
      | { token: 'wrong' | 'missing' | 'header' }
      | { noSession: true }
      | { multipart: true }
      | { json: true };
    const mutation: fc.Arbitrary<ActionMutation> = fc.oneof(
      { weight: 1, arbitrary: fc.record({ set: fc.constant('action'), value: hostile }) },
      {
        weight: 2,
        arbitrary: fc.record({
          set: fc.constantFrom('count', 'targetIdle', 'maxTotal', 'monthlyLimitUsd'),
          value: fc.oneof(number, fc.constantFrom('100000.01', '0.001', '1e3', '5.', '.5')),
        }),
      },
      {
        weight: 1,
        arbitrary: fc.record({
          set: fc.constant('id'),
          value: fc.oneof(
            fc.constantFrom('../i-1', 'i-1/retry', 'i 1', 'i%2F1', '%2e%2e', 'x'.repeat(129)),
            hostile,
          ),
        }),
      },
      {
        weight: 2,
        arbitrary: fc.record({
          set: fc.constant('back'),
          value: fc.oneof(
            fc.constantFrom(
              '/admin',
              '/admin/instances/i-1',
              '/admin?status=idle&q=é',
              '//evil.example',
              'https://evil.example/admin',
              '/admin/../x',
              '/admin\\evil',
              '/admin/\\evil',
              '/admin\r\nSet-Cookie: x=1',
              '/adminx',
              '/admin#x',
              '/admin/%0d%0aX:1',
            ),
            hostile.map((h) => `/admin${h}`),
            hostile.map((h) => `/admin/${h}`),
            hostile,
          ),
        }),
      },
      { weight: 1, arbitrary: fc.record({ set: hostile, value: hostile }) },
      {
        weight: 1,
        arbitrary: fc.record({
          token: fc.constantFrom('wrong', 'missing', 'header') as fc.Arbitrary<
            'wrong' | 'missing' | 'header'
          >,
        }),
      },
      { weight: 1, arbitrary: fc.record({ noSession: fc.constant(true as const) }) },
      { weight: 1, arbitrary: fc.record({ multipart: fc.constant(true as const) }) },
      { weight: 1, arbitrary: fc.record({ json: fc.constant(true as const) }) },
    );
    const outcomes = { done: 0, refused: 0 };
    await fc.assert(
      fc.asyncProperty(validForm, withMutations(mutation), async (valid, mutations) => {
        const fields = new Map<string, string>(Object.entries(valid));
        let token = 'right' as 'right' | 'wrong' | 'missing' | 'header';
        let withSession = true;
        let multipart = false;
        let wantsJson = false;
        for (const m of mutations) {
          if ('set' in m) fields.set(m.set, m.value);
          else if ('token' in m) token = m.token;
          else if ('noSession' in m) withSession = false;
          else if ('multipart' in m) multipart = true;
          else wantsJson = true;
        }
        const list = [...fields];
        if (token === 'right') list.push(['csrf', admin.csrf]);
        if (token === 'wrong') list.push(['csrf', `${admin.csrf.slice(1)}x`]);
        const form = formBody(list, multipart);
        const before = api.requests.length;
        const res = await withApiWatch(() =>
          send({
            method: 'POST',
            target: '/admin/action',
            headers: headersOf({
              Origin: site.url,
              'Content-Type': form.type,
              Cookie: withSession ? `convos_admin=${admin.session}` : undefined,
              'X-CSRF-Token': token === 'header' ? admin.csrf : undefined,
              Accept: wantsJson ? 'application/json' : 'text/html',
            }),
            body: form.body,
          }),
        );
        const what = `action ${JSON.stringify(list).slice(0, 300)} token=${token} session=${withSession} json=${wantsJson} multipart=${multipart}`;
        expectSane(res, what);
        const calls = api.requests.slice(before);
        const authorized = withSession && (token === 'right' || token === 'header');
        if (!authorized) {
          // Refused before anything reached the API (a broken form is a 400/413 before the gate).
          expect([400, 401, 403, 413], what).toContain(res.status);
          if (res.status !== 400 && res.status !== 413)
            expect(res.status, what).toBe(withSession ? 403 : 401);
          expect(calls, what).toEqual([]);
        }
        const clean =
          mutations.length === 0 ||
          mutations.every((m) => 'json' in m || 'multipart' in m || ('token' in m && m.token === 'header'));
        if (authorized && clean) {
          // An untouched valid form is carried out (the API may answer 404 for an unknown instance).
          expect(calls.length, what).toBeGreaterThan(0);
          expect(wantsJson ? [200, 404] : [303], what).toContain(res.status);
        }
        if (res.status === 303) expect(res.headers.location, what).toMatch(/^\/admin(\/|\?|$)/);
        outcomes[calls.some((r) => r.method !== 'GET') ? 'done' : 'refused'] += 1;
      }),
      runs(150),
    );
    expect(outcomes.done).toBeGreaterThan(15 * SCALE);
    expect(outcomes.refused).toBeGreaterThan(30 * SCALE);
    expect(await loggedIn(admin.session)).toBe(true);
  });

  it('POST /admin/pool-stream and /admin/environment: a session and its token, then valid values only; never 5xx', async () => {
    const outcomes = { streamed: 0, switched: 0, refused: 0, invalid: 0 };
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('/admin/pool-stream', '/admin/environment'),
        fc.record({
          // Mostly valid values (so both sides of each rule are reached), else near misses and hostile strings.
          action: fc.oneof(
            { weight: 6, arbitrary: fc.constantFrom('replenish', 'drain') },
            { weight: 1, arbitrary: fc.constantFrom('target', 'kill', '') },
            { weight: 1, arbitrary: hostile },
          ),
          count: fc.oneof(
            { weight: 6, arbitrary: fc.integer({ min: 1, max: 20 }).map(String) },
            { weight: 1, arbitrary: fc.constantFrom('0', '21', '2.5', '', ' 3 ', '1e1', 'NaN') },
            { weight: 1, arbitrary: hostile },
          ),
          environment: fc.oneof(
            { weight: 6, arbitrary: fc.constant('default') },
            { weight: 1, arbitrary: fc.constantFrom('nope', 'DEFAULT', '', '../default') },
            { weight: 1, arbitrary: hostile },
          ),
        }),
        fc.constantFrom('right', 'right', 'right', 'wrong', 'missing', 'nosession'),
        async (target, f, token) => {
          const list: Array<[string, string]> = Object.entries(f);
          if (token === 'right' || token === 'nosession') list.push(['csrf', admin.csrf]);
          if (token === 'wrong') list.push(['csrf', `${admin.csrf.slice(1)}x`]);
          const form = formBody(list, false);
          const before = api.requests.length;
          const res = await withApiWatch(() =>
            send({
              method: 'POST',
              target,
              headers: headersOf({
                Origin: site.url,
                'Content-Type': form.type,
                Cookie: token === 'nosession' ? undefined : `convos_admin=${admin.session}`,
              }),
              body: form.body,
            }),
          );
          const what = `${target} ${JSON.stringify(list).slice(0, 300)} token=${token}`;
          expectSane(res, what);
          const calls = api.requests.slice(before);
          if (form.body.length > 4096) {
            // Past the console forms' 4 KiB cap: refused before it is read.
            expect(res.status, what).toBe(413);
            expect(calls, what).toEqual([]);
            outcomes.invalid += 1;
            return;
          }
          if (!formIsClean(list)) {
            // A control character in any field: refused before the gate and before the API.
            expect(res.status, what).toBe(400);
            expect(calls, what).toEqual([]);
            outcomes.invalid += 1;
            return;
          }
          if (token !== 'right') {
            expect(res.status, what).toBe(token === 'nosession' ? 401 : 403);
            expect(calls, what).toEqual([]);
            outcomes.refused += 1;
            return;
          }
          if (target === '/admin/pool-stream') {
            const n = Number(f.count);
            const valid =
              (f.action === 'replenish' || f.action === 'drain') &&
              f.count.trim() !== '' &&
              Number.isInteger(n) &&
              n >= 1 &&
              n <= 20;
            expect(res.status, what).toBe(valid ? 200 : 400);
            if (!valid) {
              expect(calls, what).toEqual([]);
              outcomes.invalid += 1;
              return;
            }
            expect(res.headers['content-type'], what).toContain('text/event-stream');
            expect(res.body.toString(), what).toContain('event: complete');
            expect(calls[0], what).toMatchObject({ method: 'POST', path: `/api/pool/${f.action}` });
            outcomes.streamed += 1;
          } else {
            // The fuzzed site has one environment, "default"; nothing of this reaches the API.
            const valid = f.environment === 'default';
            expect(res.status, what).toBe(valid ? 303 : 400);
            expect(calls, what).toEqual([]);
            if (valid) {
              expect(
                res.cookies.some((c) => c.startsWith('convos_env=default;')),
                what,
              ).toBe(true);
              outcomes.switched += 1;
            } else {
              expect(
                res.cookies.some((c) => c.startsWith('convos_env=')),
                what,
              ).toBe(false);
              outcomes.invalid += 1;
            }
          }
        },
      ),
      runs(120),
    );
    expect(outcomes.streamed).toBeGreaterThan(3 * SCALE);
    expect(outcomes.switched).toBeGreaterThan(3 * SCALE);
    expect(outcomes.refused).toBeGreaterThan(10 * SCALE);
    expect(await loggedIn(admin.session)).toBe(true);
  });

  it('POST /admin/claim: a session and its token, then the contract; operator claims carry no visitor id', async () => {
    const outcomes = { accepted: 0, refused: 0, node: 0 };
    await fc.assert(
      fc.asyncProperty(
        claimCase,
        fc.constantFrom('right', 'right', 'right', 'wrong', 'none'),
        // Mostly with a session: only those reach the contract. With a fair coin and 100 runs, 5 or fewer were
        // accepted now and then (seen in a full run); like this 25–37 of 150 in three runs.
        fc.constantFrom(false, false, false, true),
        async (c, token, noSession) => {
          const sent = await fuzzClaim(c, '/admin/claim', {
            Cookie: noSession ? undefined : `convos_admin=${admin.session}`,
            'X-CSRF-Token':
              token === 'right' ? admin.csrf : token === 'wrong' ? `${admin.csrf.slice(1)}x` : undefined,
          });
          const { res, what } = sent;
          // The gate comes first: the body of a caller without a session and token is never read.
          const gated = !(
            headTooLarge(res, sent.headers) ||
            sent.headers.some(([, v]) => badHeaderByte(v)) ||
            (c.origin && (c.type === undefined || /form|text\/plain/i.test(c.type)))
          );
          if (gated && noSession) return void expect(res.status, what).toBe(401);
          if (gated && token !== 'right') return void expect(res.status, what).toBe(403);
          const outcome = expectClaimAnswer(c, sent);
          outcomes[outcome] += 1;
          if (outcome !== 'accepted') return;
          const seen = claimSeen(c.key);
          expect(seen, what).toBeDefined();
          expect(seen?.headers['x-client-id'], what).toBeUndefined();
          expect(seen?.headers['x-client-anonymous'], what).toBeUndefined();
        },
      ),
      runs(150),
    );
    expect(outcomes.accepted).toBeGreaterThan(5 * SCALE);
  });

  it('GET /admin/instances/<id> answers the instance, a 404 or a 4xx for any id; never 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(segment, query, fc.boolean(), async (id, q, withSession) => {
        const target = `/admin/instances/${id}${q}`;
        const res = await withApiWatch(() =>
          send({
            method: 'GET',
            target,
            headers: headersOf({ Cookie: withSession ? `convos_admin=${admin.session}` : undefined }),
          }),
        );
        const what = `GET ${JSON.stringify(target)} session=${withSession}`;
        expectSane(res, what);
        if (headTooLarge(res, [['', target]])) return;
        expect([200, 303, 400, 404], what).toContain(res.status);
        if (!withSession && normalized(target).startsWith('/admin/instances/'))
          expect([303, 400, 404], what).toContain(res.status);
      }),
      runs(80),
    );
  });

  it('POST /admin/logout: without the session token nothing happens; never 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.oneof(fc.constant('csrf'), hostile), hostile), { maxLength: 3 }),
        fc.boolean(),
        fc.constantFrom('urlencoded', 'multipart', 'application/json', 'none'),
        async (fields, withSession, kind) => {
          const form = formBody(fields, kind === 'multipart');
          const type =
            kind === 'urlencoded' || kind === 'multipart' ? form.type : kind === 'none' ? undefined : kind;
          const res = await withApiWatch(() =>
            send({
              method: 'POST',
              target: '/admin/logout',
              headers: headersOf({
                Origin: site.url,
                'Content-Type': type,
                Cookie: withSession ? `convos_admin=${admin.session}` : undefined,
              }),
              body: form.body,
            }),
          );
          expectSane(res, `logout ${JSON.stringify(fields).slice(0, 200)} ${kind}`);
          expect(res.status).not.toBe(303);
        },
      ),
      runs(40),
    );
    expect(await loggedIn(admin.session)).toBe(true);
    // With its token, logout ends the session at once.
    const { type, body } = formBody([['csrf', admin.csrf]], false);
    const out = await send({
      method: 'POST',
      target: '/admin/logout',
      headers: [
        ['Origin', site.url],
        ['Content-Type', type],
        ['Cookie', `convos_admin=${admin.session}`],
      ],
      body,
    });
    expect(out.status).toBe(303);
    expect(await loggedIn(admin.session)).toBe(false);
  });
});

describe('control characters in the URL', () => {
  it.each([
    ['/?q=%00', /^Query parameter "q" contains a control character \(U\+0000 at index 0\)/],
    ['/?category=a%0Ab', /^Query parameter "category" contains a control character \(U\+000A/],
    ['/admin?status=%1B%5B2J', /^Query parameter "status" contains a control character \(U\+001B/],
    ['/api/counts?x=%07', /^Query parameter "x" contains a control character/],
    ['/a/trip%00planner', /^The path contains a control character \(U\+0000/],
    ['/og/%1B.png', /^The path contains a control character \(U\+001B/],
  ])('%s is a 400 that names what is wrong', async (target, message) => {
    const res = await send({ method: 'GET', target });
    expect(res.status).toBe(400);
    expect(res.body.toString()).toMatch(message);
  });
});

describe('fuzz: afterwards', () => {
  it('the site is still up, and nothing outside the contract ever reached the API', async () => {
    expect(site.proc.exitCode).toBeNull();
    expect((await send({ method: 'GET', target: '/safety' })).status).toBe(200);
    expect(api.violations).toEqual([]);
  });
});
