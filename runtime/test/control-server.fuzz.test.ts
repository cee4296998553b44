// Property-based fuzzing of the control server (fast-check): hostile strings (U+0000, BEL, ESC, bidi
// overrides, lone surrogates, huge ones), numbers, wrong shapes, bodies over 64 KiB, wrong content types
// and encodings, unknown paths, wrong methods and bad tokens, against every route. Each property asserts a
// 4xx for bad input, never a 5xx, and no state change: the real provision store stays unprovisioned, the
// chat's gateway and self-destruct are never reached, the activity clock stays null. The last test shows a
// valid provision still succeeds afterwards. Requests go over a raw socket, so nothing is normalized
// on the way (methods, paths, header bytes and body bytes are sent exactly as generated).
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  agentNameProblem,
  instructionsProblem,
  isIdempotencyKey,
  joinUrlProblem,
} from '../../contracts/claim.ts';
import { ActivityClock } from '../src/activity.ts';
import { createControlServer } from '../src/control-server.ts';
import { MAX_BODY_BYTES } from '../src/http-request.ts';
import { type ProvisionRequest, ProvisionStore } from '../src/provision-store.ts';
import { validateProvisionRequest } from '../src/validate.ts';

const TOKEN = 'fuzz-instance-token-0123456789abcdef';
const CHAT_SECRET = 'fuzzchatsecretABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
const RUNS = 150;

let server: Server;
let port: number;
let gateway: Server;
let stateDir: string;
let store: ProvisionStore;
let activity: ActivityClock;
const provisionCalls: ProvisionRequest[] = [];
let selfDestructCalls = 0;
let gatewayCalls = 0;
const logs: string[] = [];

beforeAll(async () => {
  stateDir = mkdtempSync(path.join(tmpdir(), 'control-fuzz-'));
  store = new ProvisionStore(path.join(stateDir, 'provision.json'));
  activity = new ActivityClock(path.join(stateDir, 'activity.json'));
  gateway = createServer((req, res) => {
    gatewayCalls += 1;
    req.resume();
    res
      .writeHead(200, { 'content-type': 'application/json' })
      .end(JSON.stringify({ choices: [{ message: { content: 'ok' } }] }));
  });
  await new Promise<void>((r) => gateway.listen(0, '127.0.0.1', r));
  server = createControlServer({
    instanceToken: TOKEN,
    health: () => ({
      ready: true,
      gateway: 'ready',
      channel: 'disabled',
      version: 'fuzz',
      lastActivityAt: activity.lastActivityAt(),
    }),
    // The real store: a request that got through validation would be recorded here.
    provision: (request) =>
      store.provision(request, async (r) => {
        provisionCalls.push(r);
        return {
          conversationId: null,
          inviteUrl: null,
          joined: false,
          status: 'created',
          chatUrl: 'http://x/chat/y',
        };
      }),
    selfDestruct: async () => {
      selfDestructCalls += 1;
      return { status: 202, body: { accepted: true } };
    },
    chatSecret: CHAT_SECRET,
    chat: {
      gatewayUrl: `http://127.0.0.1:${(gateway.address() as AddressInfo).port}`,
      gatewayToken: 'gw',
      agentName: () => 'Ada',
    },
    recordActivity: () => activity.record(),
    log: (line) => logs.push(line),
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  for (const s of [server, gateway]) {
    s?.closeAllConnections();
    await new Promise<void>((r) => (s ? s.close(() => r()) : r()));
  }
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------------
// A raw HTTP/1.1 client: exactly these bytes, one request per connection.

interface RawResponse {
  status: number | null;
  headers: string;
  body: string;
}

function dechunk(body: Buffer): Buffer {
  const out: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = body.indexOf('\r\n', at);
    if (eol < 0) break;
    const size = Number.parseInt(body.subarray(at, eol).toString('latin1'), 16);
    if (!Number.isFinite(size) || size === 0) break;
    out.push(body.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
  return Buffer.concat(out);
}

function raw(
  request: Buffer | string,
  opts: { localAddress?: string; waitMs?: number } = {},
): Promise<RawResponse> {
  return new Promise((resolve) => {
    const socket = connect({
      host: '127.0.0.1',
      port,
      ...(opts.localAddress ? { localAddress: opts.localAddress } : {}),
    });
    const got: Buffer[] = [];
    let done = false;
    // Every request says "Connection: close": the response is complete when the server closes.
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      const all = Buffer.concat(got);
      const split = all.indexOf('\r\n\r\n');
      const headers = (split >= 0 ? all.subarray(0, split) : all).toString('latin1');
      const rest = split >= 0 ? all.subarray(split + 4) : Buffer.alloc(0);
      const match = /^HTTP\/1\.1 (\d{3})/.exec(headers);
      const body = /\r\ntransfer-encoding: chunked/i.test(headers) ? dechunk(rest) : rest;
      resolve({ status: match ? Number(match[1]) : null, headers, body: body.toString('utf8') });
    };
    // A request the server cannot complete (say, a body shorter than its Content-Length) gets no answer.
    const timer = setTimeout(finish, opts.waitMs ?? 5_000);
    socket.on('data', (d: Buffer) => got.push(d));
    socket.on('error', finish);
    socket.on('close', finish);
    socket.write(typeof request === 'string' ? Buffer.from(request, 'utf8') : request);
  });
}

interface Req {
  method?: string;
  path?: string;
  headers?: Record<string, string | Buffer>;
  body?: Buffer | string;
  /** Content-Length as sent; default: the body's real length. */
  contentLength?: number | null;
}

function build(r: Req): Buffer {
  const body =
    r.body === undefined ? Buffer.alloc(0) : Buffer.isBuffer(r.body) ? r.body : Buffer.from(r.body, 'utf8');
  const head: Buffer[] = [
    Buffer.from(
      `${r.method ?? 'GET'} ${r.path ?? '/'} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n`,
      'latin1',
    ),
  ];
  for (const [name, value] of Object.entries(r.headers ?? {})) {
    head.push(
      Buffer.from(`${name}: `, 'latin1'),
      Buffer.isBuffer(value) ? value : Buffer.from(value, 'utf8'),
      Buffer.from('\r\n'),
    );
  }
  const length = r.contentLength === undefined ? body.length : r.contentLength;
  if (length !== null && (r.body !== undefined || r.contentLength !== undefined))
    head.push(Buffer.from(`Content-Length: ${length}\r\n`));
  head.push(Buffer.from('\r\n'));
  return Buffer.concat([...head, body]);
}

const send = (r: Req, opts?: { localAddress?: string; waitMs?: number }) => raw(build(r), opts);

const AUTH = { Authorization: `Bearer ${TOKEN}` };
const JSON_TYPE = { 'Content-Type': 'application/json' };

// ---------------------------------------------------------------------------------------------------
// State: nothing a bad request does may change it.

function expectUnchanged(label: string): void {
  expect(store.current(), label).toBeNull();
  expect(existsSync(path.join(stateDir, 'provision.json')), label).toBe(false);
  expect(provisionCalls, label).toEqual([]);
  expect(selfDestructCalls, label).toBe(0);
  expect(gatewayCalls, label).toBe(0);
  expect(activity.lastActivityAt(), label).toBeNull();
  // A 5xx (or an exception on the way to one) is always logged by the server.
  expect(
    logs.filter((l) => l.includes('failed')),
    label,
  ).toEqual([]);
}

function expect4xx(res: RawResponse, label: string, allowed?: number[]): void {
  expect(res.status, `${label}\n${res.headers}\n${res.body.slice(0, 300)}`).not.toBeNull();
  const status = res.status as number;
  expect(status >= 400 && status < 500, `${label} → ${status} ${res.body.slice(0, 300)}`).toBe(true);
  if (allowed) expect(allowed, `${label} → ${status} ${res.body.slice(0, 300)}`).toContain(status);
}

const label = (x: unknown) => {
  const text =
    typeof x === 'string' ? x : Buffer.isBuffer(x) ? `<${x.length} bytes>` : (JSON.stringify(x) ?? String(x));
  return text.length > 200 ? `${text.slice(0, 200)}… (${text.length})` : text;
};

// ---------------------------------------------------------------------------------------------------
// Arbitraries.

/** Characters no agent name may contain (contracts/claim.ts): controls, format characters, separators, lone surrogates. */
const NAME_FORBIDDEN = [
  '\u0000',
  '\u0007',
  '\u0008',
  '\t',
  '\n',
  '\r',
  '\u000b',
  '\u000c',
  '\u001b',
  '\u001f',
  '\u007f',
  '\u0080',
  '\u0085',
  '\u009b',
  '\u009f',
  '\u00ad',
  '\u061c',
  '\u200b',
  '\u200e',
  '\u200f',
  '\u202a',
  '\u202b',
  '\u202c',
  '\u202d',
  '\u202e',
  '\u2060',
  '\u2066',
  '\u2067',
  '\u2068',
  '\u2069',
  '\ufeff',
  '\ufff9',
  '\u2028',
  '\u2029',
  '\ud800',
  '\udbff',
  '\udc00',
  '\udfff',
  '\u{e0001}',
];
/** In instructions tabs and line breaks are text; everything else above is still refused. */
const TEXT_FORBIDDEN = NAME_FORBIDDEN.filter((c) => c !== '\t' && c !== '\n' && c !== '\r');

const loneSurrogate = fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c));
const hostileChar = fc.oneof(
  fc.constantFrom(...NAME_FORBIDDEN),
  loneSurrogate,
  fc.integer({ min: 0, max: 0x1f }).map((c) => String.fromCharCode(c)),
);
/** Any text: printable, any code point, raw controls, lone surrogates and known-hostile pieces. */
const anyString = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: 'binary-ascii', maxLength: 40 }),
  fc.string({ unit: fc.oneof(hostileChar, fc.string({ minLength: 1, maxLength: 3 })), maxLength: 20 }),
  fc.constantFrom(
    '',
    ' ',
    '\u0000',
    'A\u0000B',
    '%00',
    '\u001b[2J',
    '\u202egnp.exe',
    '\ud800',
    '<script>alert(1)</script>',
    '{{agentName}}',
    '../../etc/passwd',
    '${process.env}',
    '__proto__',
  ),
);
/** Big strings: up to past the 64 KiB body limit once JSON-encoded. */
const hugeString = fc
  .tuple(
    fc.integer({ min: 8_000, max: 80_000 }),
    fc.constantFrom('x', '\u0000', 'é', '😀', '\ud800', '\u202e', ' '),
  )
  .map(([n, c]) => c.repeat(Math.ceil(n / c.length)));

/** A plain JSON value that is no string. */
const wrongType = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.constantFrom(0, -0, 1e308, -1, 2 ** 53 + 1, true, false),
  fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 4 }),
  fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 4 }),
);

const insert = (base: fc.Arbitrary<string>, bad: fc.Arbitrary<string>) =>
  fc.tuple(base, bad, base).map(([a, b, c]) => `${a}${b}${c}`);
const printable = (max: number) => fc.string({ maxLength: max });

const validName = fc.string({ minLength: 1, maxLength: 64 }).filter((s) => /\S/.test(s));
const validBody = fc.record({
  requestId: fc.stringMatching(/^[A-Za-z0-9._:-]{1,128}$/),
  agentName: validName,
  instructions: fc.string({ maxLength: 200 }),
});

const badAgentName = fc.oneof(
  wrongType,
  fc.constant(null),
  fc.constantFrom('', ' ', '   ', '\u3000'),
  fc.integer({ min: 65, max: 300 }).map((n) => 'N'.repeat(n)),
  insert(printable(20), fc.constantFrom(...NAME_FORBIDDEN)),
  insert(printable(20), loneSurrogate),
);
const badInstructions = fc.oneof(
  wrongType,
  fc.constant(null),
  fc.integer({ min: 20_001, max: 30_000 }).map((n) => 'i'.repeat(n)),
  insert(fc.string({ maxLength: 100 }), fc.constantFrom(...TEXT_FORBIDDEN)),
  insert(fc.string({ maxLength: 100 }), loneSurrogate),
);
const badRequestId = fc.oneof(
  wrongType,
  fc.constant(null),
  fc.constant(''),
  fc.integer({ min: 129, max: 400 }).map((n) => 'r'.repeat(n)),
  insert(
    fc.stringMatching(/^[A-Za-z0-9]{0,10}$/),
    fc.oneof(hostileChar, fc.constantFrom(' ', '/', 'é', '😀', '+', '=', '%', '\u202e')),
  ),
);
const badJoinUrl = fc.oneof(
  wrongType,
  fc.constant(''),
  fc.integer({ min: 8_193, max: 12_000 }).map((n) => `https://popup.convos.org/v2?i=${'a'.repeat(n)}`),
  insert(
    fc.constant('https://popup.convos.org/v2?i='),
    fc.oneof(hostileChar, fc.constantFrom(' ', 'é', '\u202e', '\u00a0')),
  ),
);
const unknownKey = fc
  .oneof(
    fc.constantFrom(
      '__proto__',
      'constructor',
      'prototype',
      'toString',
      'hasOwnProperty',
      'chatUrl',
      'admin',
      'requestid',
      'agent_name',
      '',
    ),
    fc.string({ maxLength: 12 }),
  )
  .filter((k) => !['requestId', 'agentName', 'instructions', 'joinUrl'].includes(k));

/** A provision body that is wrong in at least one way, built from a valid one. */
const badProvisionBody = fc.oneof(
  fc.tuple(validBody, badAgentName).map(([b, v]) => ({ ...b, agentName: v })),
  fc.tuple(validBody, badInstructions).map(([b, v]) => ({ ...b, instructions: v })),
  fc.tuple(validBody, badRequestId).map(([b, v]) => ({ ...b, requestId: v })),
  fc.tuple(validBody, badJoinUrl).map(([b, v]) => ({ ...b, joinUrl: v })),
  fc.tuple(validBody, unknownKey, fc.jsonValue({ maxDepth: 1 })).map(([b, k, v]) => ({ ...b, [k]: v })),
  fc.tuple(validBody, fc.constantFrom('requestId', 'agentName', 'instructions')).map(([b, k]) => {
    const copy: Record<string, unknown> = { ...b };
    delete copy[k];
    return copy;
  }),
  // Huge: a name of thousands of characters, instructions past 20,000 (or past the 64 KiB body limit).
  fc.tuple(validBody, hugeString).map(([b, s]) => ({ ...b, agentName: s })),
  fc.tuple(validBody, hugeString).map(([b, s]) => ({ ...b, instructions: s.padEnd(20_001, s[0]) })),
);

const provision = (body: Buffer | string, headers: Record<string, string | Buffer> = JSON_TYPE) =>
  send({ method: 'POST', path: '/pool/provision', headers: { ...AUTH, ...headers }, body });

// ---------------------------------------------------------------------------------------------------

describe('control server fuzz (fast-check)', () => {
  it('POST /pool/provision: a body wrong in any one field is a 400 invalid_request (413 past 64 KiB) and records nothing', async () => {
    await fc.assert(
      fc.asyncProperty(badProvisionBody, async (body) => {
        const text = JSON.stringify(body);
        const res = await provision(text);
        const tooBig = Buffer.byteLength(text) > MAX_BODY_BYTES;
        expect4xx(res, label(body), [tooBig ? 413 : 400]);
        expect(JSON.parse(res.body), label(body)).toMatchObject({
          code: tooBig ? 'body_too_large' : 'invalid_request',
          error: expect.any(String),
        });
        expectUnchanged(label(body));
      }),
      { numRuns: RUNS },
    );
  });

  /** A provision-shaped value: the known keys (each maybe missing), hostile or well-formed values, maybe an extra key. */
  const shapedValue = (() => {
    const hostileText = fc.oneof(
      anyString,
      fc.string({ maxLength: 30 }),
      fc.string({ unit: 'grapheme', maxLength: 30 }),
      hugeString,
    );
    const fieldValue = fc.oneof(
      { weight: 4, arbitrary: hostileText },
      { weight: 1, arbitrary: wrongType },
      { weight: 1, arbitrary: fc.constant(null) },
    );
    const requestId = fc.oneof(
      { weight: 2, arbitrary: fc.stringMatching(/^[A-Za-z0-9._:-]{1,128}$/) },
      { weight: 2, arbitrary: fieldValue },
    );
    const fields = {
      requestId,
      agentName: fieldValue,
      instructions: fieldValue,
      joinUrl: fc.oneof(fieldValue, fc.constant('https://popup.convos.org/v2?i=abc')),
    };
    return fc
      .tuple(
        fc.oneof(
          // Mostly all three required fields, so the values themselves are what is judged.
          {
            weight: 4,
            arbitrary: fc.record(fields, { requiredKeys: ['requestId', 'agentName', 'instructions'] }),
          },
          { weight: 1, arbitrary: fc.record(fields, { requiredKeys: [] }) },
        ),
        fc.option(fc.tuple(unknownKey, fc.jsonValue({ maxDepth: 1 })), { nil: undefined, freq: 5 }),
      )
      .map(([v, extra]) => (extra ? { ...v, [extra[0]]: extra[1] } : v));
  })();

  /** Whether the shared contract (contracts/claim.ts, what the site and the API apply) refuses `value`. */
  function contractRefuses(value: unknown): boolean {
    if (!value || typeof value !== 'object' || Array.isArray(value)) return true;
    const v = value as Record<string, unknown>;
    if (Object.keys(v).some((k) => !['requestId', 'agentName', 'instructions', 'joinUrl'].includes(k)))
      return true;
    if (
      !isIdempotencyKey(v.requestId) ||
      agentNameProblem(v.agentName) ||
      instructionsProblem(v.instructions)
    )
      return true;
    return v.joinUrl !== undefined && v.joinUrl !== null && joinUrlProblem(v.joinUrl) !== null;
  }

  it("the runtime's validator accepts exactly what the shared claim contract accepts", () => {
    fc.assert(
      fc.property(fc.oneof(shapedValue, validBody, fc.jsonValue({ maxDepth: 3 })), (value) => {
        const verdict = validateProvisionRequest(value);
        expect(typeof verdict === 'string', label(value)).toBe(contractRefuses(value));
      }),
      { numRuns: 500 },
    );
  });

  it('POST /pool/provision: any JSON value the contract refuses is a 4xx and records nothing', async () => {
    const hostileJson = fc.jsonValue({
      maxDepth: 4,
      stringUnit: fc.oneof(hostileChar, fc.string({ unit: 'binary', minLength: 1, maxLength: 2 })),
    });
    const values = fc.oneof(
      { weight: 3, arbitrary: shapedValue },
      { weight: 1, arbitrary: hostileJson },
      {
        weight: 1,
        arbitrary: fc
          .anything({ maxDepth: 3 })
          .map((v) => JSON.parse(JSON.stringify(v) ?? 'null') as unknown),
      },
    );
    await fc.assert(
      fc.asyncProperty(values, async (value) => {
        fc.pre(contractRefuses(value));
        const text = JSON.stringify(value);
        const res = await provision(text);
        expect4xx(res, label(value), [Buffer.byteLength(text) > MAX_BODY_BYTES ? 413 : 400]);
        expectUnchanged(label(value));
      }),
      { numRuns: RUNS },
    );
  });

  it('POST /pool/provision: bytes that are no UTF-8 JSON object, wrong content types and encodings are 4xx and record nothing', async () => {
    const claim = JSON.stringify({ requestId: 'fuzz-raw', agentName: 'Ada', instructions: 'hi' });
    const bodies = fc.oneof(
      fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
      // Invalid UTF-8: a lone continuation byte, an overlong "/", an encoded surrogate, bytes no UTF-8 has.
      fc
        .constantFrom('80', 'c0af', 'eda080', 'fffe', 'f4908080', 'c328')
        .map((h) =>
          Buffer.concat([
            Buffer.from('{"requestId":"r","agentName":"'),
            Buffer.from(h, 'hex'),
            Buffer.from('","instructions":""}'),
          ]),
        ),
      fc
        .constantFrom(
          '',
          ' ',
          'null',
          '[]',
          '0',
          '"x"',
          '{',
          '{"a":',
          '}',
          'NaN',
          'Infinity',
          'undefined',
          '\u0000',
          `${claim}x`,
          claim.slice(0, -1),
        )
        .map((s) => Buffer.from(s)),
      // The claim in other encodings: UTF-16 with and without a byte order mark, and gzip.
      fc.constantFrom(
        Buffer.from(`\ufeff${claim}`, 'utf16le'),
        Buffer.from(claim, 'utf16le'),
        Buffer.from(claim, 'utf16le').swap16(),
        gzipSync(claim),
      ),
      // Deep nesting and bodies past the limit (a valid claim padded with whitespace is still too large).
      fc.integer({ min: 1_000, max: 30_000 }).map((n) => Buffer.from(`${'['.repeat(n)}${']'.repeat(n)}`)),
      fc
        .integer({ min: MAX_BODY_BYTES - claim.length + 1, max: 3 * MAX_BODY_BYTES })
        .map((n) => Buffer.from(`${claim}${' '.repeat(n)}`)),
    );
    type Headers = Record<string, string | Buffer>;
    const contentTypes: fc.Arbitrary<Headers> = fc.oneof(
      fc.constant<Headers>({ 'Content-Type': 'application/json' }),
      fc.constantFrom<Headers>(
        {},
        { 'Content-Type': '' },
        { 'Content-Type': 'text/plain' },
        { 'Content-Type': 'application/x-www-form-urlencoded' },
        { 'Content-Type': 'multipart/form-data; boundary=x' },
        { 'Content-Type': 'application/json-seq' },
        { 'Content-Type': 'application/jsonp' },
        { 'Content-Type': 'application/json; charset=utf-16' },
        { 'Content-Type': 'application/json; charset=latin1' },
        { 'Content-Type': 'text/json' },
        { 'Content-Type': 'application/json', 'Content-Encoding': 'gzip' },
        { 'Content-Type': 'application/json', 'Content-Encoding': 'br' },
        { 'Content-Type': 'application/json', 'Content-Encoding': 'identity, gzip' },
      ),
      anyString
        .filter((s) => !/[\r\n]/.test(s))
        .map((s): Headers => ({ 'Content-Type': Buffer.from(s, 'utf8') })),
    );
    await fc.assert(
      fc.asyncProperty(bodies, contentTypes, async (body, headers) => {
        const res = await provision(body, headers);
        expect4xx(res, `${label(body)} ${label(headers)}`, [400, 413, 415]);
        expectUnchanged(label(body));
      }),
      { numRuns: RUNS },
    );
    // A valid claim is refused too when it is not plain UTF-8 application/json (nothing is guessed).
    for (const headers of [
      { 'Content-Type': 'application/json-seq' } as Headers,
      { 'Content-Type': 'application/json; charset=utf-16' },
      { 'Content-Type': 'application/json', 'Content-Encoding': 'gzip' },
      { 'Content-Type': 'text/plain' },
    ]) {
      expect4xx(await provision(claim, headers), label(headers), [415]);
    }
    expect4xx(
      await provision(gzipSync(claim), { 'Content-Type': 'application/json', 'Content-Encoding': 'gzip' }),
      'gzip',
      [415],
    );
    expectUnchanged('valid claim, wrong type or encoding');
  });

  it('GET /pool/health and POST /pool/provision: a missing or wrong token is a 401, whatever the header holds', async () => {
    const nearMiss = fc.oneof(
      fc.constantFrom(
        '',
        'Bearer',
        'Bearer ',
        `Bearer  ${TOKEN}`,
        `bearer ${TOKEN}`,
        `BEARER ${TOKEN}`,
        `Basic ${TOKEN}`,
        `Bearer ${TOKEN.toUpperCase()}`,
        `Bearer ${TOKEN.slice(0, -1)}`,
        `Bearer ${TOKEN}x`,
        `Bearer ${TOKEN},Bearer ${TOKEN}`,
        `Bearer ${Buffer.from(TOKEN).toString('base64')}`,
        `Bearer ${TOKEN}\u0000`,
        TOKEN,
      ),
      fc
        .tuple(
          fc.integer({ min: 0, max: TOKEN.length - 1 }),
          fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
        )
        .map(([i, c]) => `Bearer ${TOKEN.slice(0, i)}${c}${TOKEN.slice(i + 1)}`),
      anyString.map((s) => `Bearer ${s}`),
      anyString,
      fc.integer({ min: 9_000, max: 40_000 }).map((n) => `Bearer ${'t'.repeat(n)}`),
    );
    // Spaces and tabs around a header value are not part of it (RFC 9110 §5.5): those are the right token.
    const authHeader = fc
      .option(nearMiss, { nil: undefined })
      .filter((h) => h?.replace(/^[ \t]+|[ \t]+$/g, '') !== `Bearer ${TOKEN}`);
    await fc.assert(
      fc.asyncProperty(authHeader, fc.constantFrom('health', 'provision'), async (header, route) => {
        // A valid claim: only the token stands between it and the store.
        const headers: Record<string, string | Buffer> =
          header === undefined ? {} : { Authorization: Buffer.from(header, 'utf8') };
        const res =
          route === 'health'
            ? await send({ method: 'GET', path: '/pool/health', headers })
            : await send({
                method: 'POST',
                path: '/pool/provision',
                headers: { ...headers, ...JSON_TYPE },
                body: JSON.stringify({ requestId: 'fuzz-auth', agentName: 'Ada', instructions: '' }),
              });
        // 401 from the server; 400/431 when Node's parser refuses the header bytes themselves.
        expect4xx(res, `${route} ${label(header)}`, [400, 401, 431]);
        if (res.status === 401) expect(JSON.parse(res.body)).toMatchObject({ code: 'unauthorized' });
        expectUnchanged(label(header));
      }),
      { numRuns: RUNS },
    );
  });

  it('every other path and method, with the token and a valid body, is a 4xx and reaches nothing', async () => {
    const ROUTES: Array<[string, string]> = [
      ['GET', '/pool/health'],
      ['POST', '/pool/provision'],
      ['POST', '/pool/self-destruct'],
      ['GET', `/chat/${CHAT_SECRET}`],
      ['POST', `/chat/${CHAT_SECRET}/messages`],
    ];
    // The page is served with or without a trailing slash (its script handles both).
    const VALID = new Set([...ROUTES.map(([m, p]) => `${m} ${p}`), `GET /chat/${CHAT_SECRET}/`]);
    const methods = fc.constantFrom(
      'GET',
      'HEAD',
      'POST',
      'PUT',
      'DELETE',
      'PATCH',
      'OPTIONS',
      'TRACE',
      'PROPFIND',
      'CONNECT',
      'get',
      'Post',
      'FOO',
      'G\u0000T',
      '',
    );
    /** Ways to miss a route's path by a little. */
    const nearMiss: fc.Arbitrary<(p: string) => string> = fc.oneof(
      fc
        .constantFrom(
          '/',
          '//',
          '/x',
          '/messages',
          '/messages/x',
          '%00',
          '%20',
          '/..',
          '/.',
          '/../messages',
          ';x',
          '%2F',
          '.json',
          '\u00e9',
          '#x',
        )
        .map((x) => (p: string) => `${p}${x}`),
      fc
        .constantFrom('/', '//evil.example', '/x', '/.', '/..', 'http://127.0.0.1', '/pool', '/chat')
        .map((x) => (p: string) => `${x}${p}`),
      fc.constant((p: string) => p.toUpperCase()),
      fc.constant((p: string) => p.slice(0, -1)),
      fc.nat().map((i) => (p: string) => {
        const at = 1 + (i % (p.length - 1));
        return `${p.slice(0, at)}/${p.slice(at)}`;
      }),
      fc.nat().map((i) => (p: string) => {
        const at = 1 + (i % (p.length - 1));
        return `${p.slice(0, at)}%${p.charCodeAt(at).toString(16).toUpperCase().padStart(2, '0')}${p.slice(at + 1)}`;
      }),
      fc.nat().map((i) => (p: string) => {
        const at = 1 + (i % (p.length - 1));
        return `${p.slice(0, at)}${String.fromCharCode(p.charCodeAt(at) ^ 1)}${p.slice(at + 1)}`;
      }),
    );
    const segment = fc.oneof(
      fc.constantFrom(
        'pool',
        'health',
        'provision',
        'self-destruct',
        'chat',
        'messages',
        '..',
        '.',
        '',
        '%00',
        '%2e%2e',
        'v1',
        'convos',
        'status',
        CHAT_SECRET,
      ),
      fc.stringMatching(/^[A-Za-z0-9._~%!$&'()*+,;=:@-]{0,12}$/),
    );
    const anyPath = fc.oneof(
      fc.array(segment, { minLength: 0, maxLength: 5 }).map((s) => `/${s.join('/')}`),
      fc.constantFrom(
        '*',
        '//',
        '///',
        '//evil.example/pool/health',
        'http://127.0.0.1/pool/health',
        '/chat/../pool/health',
        '\\pool\\health',
        '/pool/health\u0000',
        '',
      ),
    );
    const requests = fc.oneof(
      // The right method, a path next to the route's.
      fc.tuple(fc.constantFrom(...ROUTES), nearMiss).map(([[m, p], f]) => [m, f(p)] as const),
      // The right path, any other method.
      fc.tuple(fc.constantFrom(...ROUTES), methods).map(([[, p], m]) => [m, p] as const),
      fc.tuple(methods, anyPath),
    );
    await fc.assert(
      fc.asyncProperty(requests, fc.boolean(), async ([method, p], withQuery) => {
        const target = withQuery ? `${p}?requestId=x&agentName=%00` : p;
        fc.pre(!VALID.has(`${method} ${target.split('?')[0]}`));
        const body = JSON.stringify({
          requestId: 'fuzz-route',
          agentName: 'Ada',
          instructions: '',
          message: 'hi',
          session: 'session-1234',
        });
        const res = await send({ method, path: target, headers: { ...AUTH, ...JSON_TYPE }, body });
        expect4xx(res, `${method} ${label(target)}`);
        expectUnchanged(`${method} ${label(target)}`);
      }),
      { numRuns: 200 },
    );
  });

  it('POST /pool/self-destruct: only loopback may ask; wrong methods are 405, whatever the body', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'),
        fc.option(fc.oneof(anyString, hugeString), { nil: undefined }),
        fc.boolean(),
        async (method, body, withToken) => {
          // From 127.0.0.2: on this machine, but not the loopback address the route accepts.
          const headers = { ...(withToken ? AUTH : {}), ...JSON_TYPE };
          const far = await send(
            { method, path: '/pool/self-destruct', headers, ...(body === undefined ? {} : { body }) },
            { localAddress: '127.0.0.2' },
          );
          expect4xx(far, `${method} from 127.0.0.2`, [403]);
          if (method !== 'POST') {
            const near = await send({
              method,
              path: '/pool/self-destruct',
              headers,
              ...(body === undefined ? {} : { body }),
            });
            expect4xx(near, `${method} from loopback`, [405]);
          }
          expectUnchanged(`self-destruct ${method}`);
        },
      ),
      { numRuns: 100 },
    );
  });

  it('POST /chat/<secret>/messages: a bad message or session is a 4xx, never reaches the agent and is no activity', async () => {
    const okMessage = fc.string({ minLength: 1, maxLength: 50 }).filter((s) => /\S/.test(s));
    const okSession = fc.stringMatching(/^[A-Za-z0-9-]{8,64}$/);
    const badMessage = fc.oneof(
      wrongType,
      fc.constant(null),
      fc.constantFrom('', ' ', '\n\t'),
      fc.integer({ min: 8_001, max: 20_000 }).map((n) => 'm'.repeat(n)),
      insert(
        fc.string({ maxLength: 30 }),
        fc.oneof(
          fc.constantFrom('\u0000', '\u0007', '\u001b', '\u007f', '\u0085', '\u009b', '\u000b', '\u000c'),
          loneSurrogate,
        ),
      ),
      hugeString,
    );
    const badSession = fc.oneof(
      wrongType,
      fc.constant(null),
      fc.stringMatching(/^[A-Za-z0-9-]{0,7}$/),
      fc.integer({ min: 65, max: 200 }).map((n) => 's'.repeat(n)),
      insert(
        fc.stringMatching(/^[A-Za-z0-9-]{4,8}$/),
        fc.oneof(hostileChar, fc.constantFrom(' ', '/', 'é', '_', '.', '\u202e')),
      ),
    );
    const body = fc.oneof(
      fc.tuple(badMessage, okSession).map(([message, session]) => JSON.stringify({ message, session })),
      fc.tuple(okMessage, badSession).map(([message, session]) => JSON.stringify({ message, session })),
      okMessage.map((message) => JSON.stringify({ message })),
      fc
        .jsonValue({ maxDepth: 2 })
        .filter((v) => typeof v !== 'object' || v === null || Array.isArray(v))
        .map((v) => JSON.stringify(v)),
      fc.constantFrom('', '{', 'not json', '\u0000'),
    );
    await fc.assert(
      fc.asyncProperty(
        body,
        fc.constantFrom<Record<string, string>>(
          JSON_TYPE,
          {},
          { 'Content-Type': 'text/plain' },
          { 'Content-Type': 'application/json', 'Content-Encoding': 'gzip' },
        ),
        async (text, headers) => {
          const res = await send({
            method: 'POST',
            path: `/chat/${CHAT_SECRET}/messages`,
            headers,
            body: text,
          });
          expect4xx(res, label(text), [400, 413, 415]);
          expectUnchanged(label(text));
        },
      ),
      { numRuns: RUNS },
    );
  });

  const SHORT_BODY = '{"requestId":"fuzz-short","agentName":"Ada","instructions":""}';
  it('headers and bodies the HTTP layer refuses (huge headers, bad Content-Length, truncated bodies) are 4xx or dropped, never a 5xx', async () => {
    const cases = fc.oneof(
      fc.integer({ min: 17_000, max: 100_000 }).map((n) => ({
        req: { method: 'GET', path: '/pool/health', headers: { ...AUTH, 'X-Big': 'b'.repeat(n) } },
        answered: true,
      })),
      fc.integer({ min: 120, max: 400 }).map((n) => ({
        req: {
          method: 'GET',
          path: '/pool/health',
          headers: Object.fromEntries([
            ...Array.from({ length: n }, (_, i) => [`X-H${i}`, 'v']),
            ['Authorization', `Bearer ${TOKEN}`],
          ]),
        },
        // Node keeps the first 2000 headers; this is still a normal request.
        answered: true,
        ok: true,
      })),
      fc.constantFrom('-1', 'abc', '1e3', '0x10', '99999999999999999999', '5, 6').map((cl) => ({
        req: {
          method: 'POST',
          path: '/pool/provision',
          headers: { ...AUTH, ...JSON_TYPE, 'Content-Length': cl },
          body: '{}',
          contentLength: null,
        },
        answered: true,
      })),
      // A body shorter than its Content-Length: the server waits, the client gives up.
      fc.integer({ min: 1, max: 10_000 }).map((extra) => ({
        req: {
          method: 'POST',
          path: '/pool/provision',
          headers: { ...AUTH, ...JSON_TYPE },
          body: SHORT_BODY,
          contentLength: SHORT_BODY.length + extra,
        },
        answered: false,
      })),
    );
    await fc.assert(
      fc.asyncProperty(cases, async (c) => {
        const res = await send(c.req as Req, { waitMs: c.answered ? 3_000 : 150 });
        if ('ok' in c) expect(res.status).toBe(200);
        else if (c.answered) expect4xx(res, label(c.req.headers), [400, 413, 431]);
        else
          expect(res.status === null || (res.status >= 400 && res.status < 500), `${res.status}`).toBe(true);
        expectUnchanged(label(c.req.path));
      }),
      { numRuns: 60 },
    );
    // The server noticed nothing worth a 5xx, even for the clients that went away mid-body.
    await new Promise((r) => setTimeout(r, 100));
    expectUnchanged('after truncated bodies');
  });

  it('afterwards the instance is still unprovisioned and healthy, and a valid provision and chat message succeed', async () => {
    expectUnchanged('before the valid requests');
    const health = await send({ method: 'GET', path: '/pool/health', headers: AUTH });
    expect(health.status).toBe(200);
    expect(JSON.parse(health.body)).toMatchObject({ ready: true, lastActivityAt: null });

    const claim = { requestId: 'fuzz-final', agentName: 'Ada 👩‍💻', instructions: 'Be kind.\nAnd brief.' };
    const first = await provision(JSON.stringify(claim));
    expect(first.status).toBe(200);
    const again = await provision(JSON.stringify(claim));
    expect(JSON.parse(again.body)).toEqual(JSON.parse(first.body));
    expect(provisionCalls).toEqual([claim]);
    expect(store.current()).toMatchObject({ state: 'done', request: claim });

    const chat = await send({
      method: 'POST',
      path: `/chat/${CHAT_SECRET}/messages`,
      headers: JSON_TYPE,
      body: JSON.stringify({ message: 'hello', session: 'session-1234' }),
    });
    expect(chat.status).toBe(200);
    expect(gatewayCalls).toBe(1);
    expect(activity.lastActivityAt()).not.toBeNull();
    expect(logs.filter((l) => l.includes('failed'))).toEqual([]);
  });
});
