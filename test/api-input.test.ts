/**
 * Bad input on every endpoint: a clear 4xx in the error format, never a 5xx, and nothing changes
 * (counts, claims ledger, pool settings).
 */
import { like } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { claims } from '../drizzle/schema';
import { type Stack, startStack } from './stack';
import { type ErrorBody, json, newKey, shared } from './support/helpers';

let stack: Stack;
let idleId: string;
beforeAll(async () => {
  stack = await startStack(shared({ targetIdle: 1, maxTotal: 5 }));
  await stack.waitFor('1 idle', async () => (await stack.counts()).idle === 1);
  const agents = await json<{ idle: Array<{ id: string }> }>(await stack.api('GET', '/api/pool/agents'));
  idleId = agents.idle[0]!.id;
});
afterAll(() => stack?.stop());

interface Case {
  name: string;
  method: string;
  path: string;
  body?: unknown;
  raw?: string;
  headers?: Record<string, string>;
  auth?: 'key' | 'none' | 'wrong';
  status: number;
  code?: string;
}

const key = () => ({ 'idempotency-key': newKey('bad') });

const cases = (): Case[] => [
  {
    name: 'unknown route (no auth) is 404, not 401',
    method: 'GET',
    path: '/api/nope',
    auth: 'none',
    status: 404,
    code: 'NOT_FOUND',
  },
  { name: 'unknown pool route', method: 'POST', path: '/api/pool/nope', auth: 'none', body: {}, status: 404 },
  {
    name: 'unknown template',
    method: 'GET',
    path: '/api/pool/templates/no-such-template',
    auth: 'none',
    status: 404,
  },
  ...[
    'GET /api/pool/agents',
    'GET /api/pool/instances/x',
    'POST /api/pool/replenish',
    'POST /api/pool/drain',
    'PUT /api/pool/target',
    'POST /api/pool/reconcile',
    'DELETE /api/pool/instances/x',
    'DELETE /api/pool/crashed/x',
    'POST /api/pool/instances/x/retry',
    'POST /api/pool/claim',
  ].flatMap((route): Case[] => {
    const [method, path] = route.split(' ') as [string, string];
    return [
      {
        name: `${route} without a key`,
        method,
        path,
        auth: 'none',
        body: method === 'GET' || method === 'DELETE' ? undefined : {},
        status: 401,
        code: 'UNAUTHORIZED',
      },
      {
        name: `${route} with a wrong key`,
        method,
        path,
        auth: 'wrong',
        body: method === 'GET' || method === 'DELETE' ? undefined : {},
        status: 401,
        code: 'UNAUTHORIZED',
      },
    ];
  }),
  // claim
  {
    name: 'claim without Idempotency-Key',
    method: 'POST',
    path: '/api/pool/claim',
    body: {},
    status: 400,
    code: 'BAD_REQUEST',
  },
  {
    name: 'claim with a malformed key',
    method: 'POST',
    path: '/api/pool/claim',
    body: {},
    headers: { 'idempotency-key': 'has space' },
    status: 400,
  },
  {
    name: 'claim with a 129-char key',
    method: 'POST',
    path: '/api/pool/claim',
    body: {},
    headers: { 'idempotency-key': 'k'.repeat(129) },
    status: 400,
  },
  {
    name: 'claim with an empty agentName',
    method: 'POST',
    path: '/api/pool/claim',
    body: { agentName: '' },
    headers: key(),
    status: 400,
  },
  {
    name: 'claim with a 65-char agentName',
    method: 'POST',
    path: '/api/pool/claim',
    body: { agentName: 'a'.repeat(65) },
    headers: key(),
    status: 400,
  },
  {
    name: 'claim with a blank agentName',
    method: 'POST',
    path: '/api/pool/claim',
    body: { agentName: '   ' },
    headers: key(),
    status: 400,
  },
  {
    name: 'claim with instructions over 32 KiB',
    method: 'POST',
    path: '/api/pool/claim',
    body: { instructions: 'x'.repeat(32 * 1024 + 1) },
    headers: key(),
    status: 400,
  },
  {
    name: 'claim with an unknown template',
    method: 'POST',
    path: '/api/pool/claim',
    body: { templateSlug: 'nope' },
    headers: key(),
    status: 400,
    code: 'UNKNOWN_TEMPLATE',
  },
  {
    name: 'claim with a joinUrl on a pool without XMTP',
    method: 'POST',
    path: '/api/pool/claim',
    body: { joinUrl: 'https://dev.convos.org/v2?i=abc' },
    headers: key(),
    status: 400,
    code: 'JOIN_UNAVAILABLE',
  },
  {
    name: 'claim with maxWaitMs over 60000',
    method: 'POST',
    path: '/api/pool/claim',
    body: { maxWaitMs: 60_001 },
    headers: key(),
    status: 400,
  },
  {
    name: 'claim with a negative maxWaitMs',
    method: 'POST',
    path: '/api/pool/claim',
    body: { maxWaitMs: -1 },
    headers: key(),
    status: 400,
  },
  {
    name: 'claim with a string maxWaitMs',
    method: 'POST',
    path: '/api/pool/claim',
    body: { maxWaitMs: '100' },
    headers: key(),
    status: 400,
  },
  {
    name: 'claim with an unknown field',
    method: 'POST',
    path: '/api/pool/claim',
    body: { agentname: 'typo' },
    headers: key(),
    status: 400,
  },
  {
    name: 'claim with an array body',
    method: 'POST',
    path: '/api/pool/claim',
    body: [1, 2],
    headers: key(),
    status: 400,
  },
  {
    name: 'claim with invalid JSON',
    method: 'POST',
    path: '/api/pool/claim',
    raw: '{"agentName":',
    headers: { ...key(), 'content-type': 'application/json' },
    status: 400,
  },
  {
    name: 'claim with a text body',
    method: 'POST',
    path: '/api/pool/claim',
    raw: 'hello',
    headers: { ...key(), 'content-type': 'text/plain' },
    status: 415,
  },
  {
    name: 'claim with a body over 64 KiB',
    method: 'POST',
    path: '/api/pool/claim',
    body: { instructions: 'x'.repeat(70 * 1024) },
    headers: key(),
    status: 413,
    code: 'BODY_TOO_LARGE',
  },
  // replenish / drain
  ...['replenish', 'drain'].flatMap((route): Case[] =>
    [{ count: 0 }, { count: 21 }, { count: '5' }, { count: 1.5 }, {}, { count: 1, extra: true }, null].map(
      (body) => ({
        name: `${route} with ${JSON.stringify(body)}`,
        method: 'POST',
        path: `/api/pool/${route}`,
        ...(body === null ? { raw: 'null', headers: { 'content-type': 'application/json' } } : { body }),
        status: 400,
      }),
    ),
  ),
  // target
  ...[
    { targetIdle: -1 },
    { targetIdle: 1001 },
    { targetIdle: 1, maxTotal: 0 },
    { targetIdle: 1, maxTotal: 10_001 },
    {},
    { maxTotal: 5 },
  ].map(
    (body): Case => ({
      name: `target ${JSON.stringify(body)}`,
      method: 'PUT',
      path: '/api/pool/target',
      body,
      status: 400,
    }),
  ),
  // instances
  { name: 'instance with a malformed id', method: 'GET', path: '/api/pool/instances/bad%20id', status: 400 },
  { name: 'unknown instance', method: 'GET', path: '/api/pool/instances/no-such-instance', status: 404 },
  {
    name: 'kill an unknown instance',
    method: 'DELETE',
    path: '/api/pool/instances/no-such-instance',
    status: 404,
  },
  {
    name: 'dismiss an unknown instance',
    method: 'DELETE',
    path: '/api/pool/crashed/no-such-instance',
    status: 404,
  },
  {
    name: 'retry an unknown instance',
    method: 'POST',
    path: '/api/pool/instances/no-such-instance/retry',
    status: 404,
  },
  {
    name: 'dismiss an idle (not crashed) instance',
    method: 'DELETE',
    path: `/api/pool/crashed/${idleId}`,
    status: 409,
    code: 'NOT_CRASHED',
  },
  {
    name: 'retry an idle (not failed) instance',
    method: 'POST',
    path: `/api/pool/instances/${idleId}/retry`,
    status: 409,
    code: 'NOT_FAILED',
  },
  // self-destruct
  {
    name: 'self-destruct without credentials',
    method: 'POST',
    path: '/api/pool/self-destruct',
    auth: 'none',
    status: 401,
  },
  {
    name: 'self-destruct with garbage credentials',
    method: 'POST',
    path: '/api/pool/self-destruct',
    auth: 'none',
    headers: { authorization: 'Bearer :::' },
    status: 403,
  },
  {
    name: 'self-destruct of an idle instance with a made-up token',
    method: 'POST',
    path: '/api/pool/self-destruct',
    auth: 'none',
    headers: { authorization: `Bearer ${idleId}:made-up` },
    status: 403,
  },
];

describe('bad input', () => {
  it('gets a clear 4xx on every endpoint and changes nothing', async () => {
    const countsBefore = await stack.counts();
    const infoBefore = await json<{ targetIdle: number; maxTotal: number }>(
      await fetch(`${stack.apiUrl}/api/pool/info`),
    );

    for (const c of cases()) {
      const auth =
        c.auth === 'none'
          ? {}
          : { authorization: `Bearer ${c.auth === 'wrong' ? 'wrong-key' : stack.apiKey}` };
      const res = await fetch(`${stack.apiUrl}${c.path}`, {
        method: c.method,
        headers: {
          ...auth,
          ...(c.body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...c.headers,
        },
        body: c.raw ?? (c.body !== undefined ? JSON.stringify(c.body) : undefined),
      });
      const body = await json<ErrorBody>(res);
      expect(res.status, `${c.name}: ${JSON.stringify(body)}`).toBe(c.status);
      expect(typeof body.error, c.name).toBe('string');
      expect(body.error.length, c.name).toBeGreaterThan(0);
      expect(typeof body.code, c.name).toBe('string');
      if (c.code) expect(body.code, c.name).toBe(c.code);
    }

    expect(await stack.counts()).toEqual(countsBefore);
    const infoAfter = await json<{ targetIdle: number; maxTotal: number }>(
      await fetch(`${stack.apiUrl}/api/pool/info`),
    );
    expect(infoAfter.targetIdle).toBe(infoBefore.targetIdle);
    expect(infoAfter.maxTotal).toBe(infoBefore.maxTotal);
    // No bad claim reached the ledger (the database is shared by the run: look at this test's keys only).
    const ledger = await stack.database.db.select().from(claims).where(like(claims.key, 'bad-%'));
    expect(ledger).toEqual([]);
  });

  it('publishes every route in the OpenAPI document', async () => {
    const doc = await json<{ paths: Record<string, unknown> }>(
      await fetch(`${stack.apiUrl}/api/openapi.json`),
    );
    for (const path of [
      '/api/pool/claim',
      '/api/pool/counts',
      '/api/pool/agents',
      '/api/pool/instances/{id}',
      '/api/pool/self-destruct',
    ]) {
      expect(Object.keys(doc.paths)).toContain(path);
    }
  });
});

describe('claim rate limit', () => {
  it('answers 429 in the error format past the per-minute limit', async () => {
    const limited = await startStack(shared({ targetIdle: 0, claimRateLimitPerMinute: 2 }));
    try {
      const claim = () =>
        limited.api('POST', '/api/pool/claim', { maxWaitMs: 0 }, { 'idempotency-key': newKey('rate') });
      expect((await claim()).status).toBe(503);
      expect((await claim()).status).toBe(503);
      const third = await claim();
      expect(third.status).toBe(429);
      expect((await json<ErrorBody>(third)).code).toBe('RATE_LIMITED');
      // Other routes are not limited.
      expect((await limited.api('GET', '/api/pool/agents')).status).toBe(200);
    } finally {
      await limited.stop();
    }
  });
});
