/**
 * The codec endpoint on the real app (`buildApp`, requests injected): the API key, the local Web UI
 * exception, CORS for the configured origins only, an encode → decode round trip, refusals of bad input
 * (4xx, never 5xx), and 409 with payload encryption off.
 */
import { randomBytes } from 'node:crypto';
import { defaultPayloadConverter } from '@temporalio/common';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Env, loadConfig } from '../../config/env';
import { buildApp } from '../app';
import type { ApiContext } from '../context';

const API_KEY = `codec-test-${randomBytes(8).toString('hex')}`;
const UI = 'http://127.0.0.1:8233';
const KEY = randomBytes(32).toString('base64');

async function appWith(env: Env): Promise<FastifyInstance> {
  // The codec routes need only configuration and the API key; nothing here touches the database or Temporal.
  const ctx = {
    db: {},
    temporal: {},
    secrets: {},
    config: loadConfig(env),
    apiKey: API_KEY,
    senders: {},
  } as unknown as ApiContext;
  const app = await buildApp(ctx);
  await app.ready();
  return app;
}

const jsonPayload = (value: unknown) => {
  const p = defaultPayloadConverter.toPayload(value);
  return {
    metadata: Object.fromEntries(
      Object.entries(p.metadata!).map(([k, v]) => [k, Buffer.from(v).toString('base64')]),
    ),
    data: Buffer.from(p.data!).toString('base64'),
  };
};

const post = (
  app: FastifyInstance,
  op: 'encode' | 'decode',
  body: unknown,
  headers: Record<string, string> = { authorization: `Bearer ${API_KEY}` },
  remoteAddress?: string,
) =>
  app.inject({
    method: 'POST',
    url: `/api/codec/${op}`,
    headers: { 'content-type': 'application/json', ...headers },
    payload: typeof body === 'string' ? body : JSON.stringify(body),
    ...(remoteAddress ? { remoteAddress } : {}),
  });

describe('codec endpoint (encryption on, production)', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await appWith({ PAYLOAD_ENCRYPTION_KEY: KEY, POOL_ENVIRONMENT: 'production', SECRETS_KEY: KEY });
  });
  afterAll(() => app?.close());

  it('round-trips encode → decode, and the encoded form hides the value', async () => {
    const original = [jsonPayload({ agentName: 'Codec Test Agent' }), jsonPayload(42)];
    const encoded = await post(app, 'encode', { payloads: original });
    expect(encoded.statusCode).toBe(200);
    const enc = encoded.json<{ payloads: Array<{ metadata: Record<string, string>; data: string }> }>();
    expect(enc.payloads).toHaveLength(2);
    expect(Buffer.from(enc.payloads[0]!.metadata.encoding!, 'base64').toString()).toBe('binary/encrypted');
    expect(Buffer.from(enc.payloads[0]!.data, 'base64').includes('Codec Test Agent')).toBe(false);
    const decoded = await post(app, 'decode', enc);
    expect(decoded.statusCode).toBe(200);
    expect(decoded.json()).toEqual({ payloads: original });
  });

  it('round-trips payloads without data (null, undefined values)', async () => {
    const empty = [{ metadata: { encoding: Buffer.from('binary/null').toString('base64') }, data: '' }];
    const encoded = await post(app, 'encode', { payloads: empty });
    expect(encoded.statusCode).toBe(200);
    const decoded = await post(app, 'decode', encoded.json());
    expect(decoded.statusCode, decoded.body).toBe(200);
    expect(decoded.json()).toEqual({ payloads: empty });
  });

  it('passes plaintext payloads through decode', async () => {
    const plain = { payloads: [jsonPayload('plain'), { metadata: {}, data: '' }] };
    const res = await post(app, 'decode', plain);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual(plain);
  });

  it('requires the API key: none, wrong, or another scheme is 401 — also from the Web UI origin', async () => {
    const body = { payloads: [jsonPayload(1)] };
    const variants: Array<Record<string, string>> = [
      {},
      { authorization: 'Bearer wrong' },
      { authorization: `bearer ${API_KEY}` },
      { origin: UI },
      { origin: UI, authorization: 'Bearer wrong' },
    ];
    for (const headers of variants) {
      for (const op of ['encode', 'decode'] as const) {
        const res = await post(app, op, body, headers);
        expect(res.statusCode, JSON.stringify(headers)).toBe(401);
        expect(res.json().code).toBe('UNAUTHORIZED');
      }
    }
  });

  it('answers the CORS preflight for the configured Web UI origin, and refuses others', async () => {
    const preflight = (origin: string) =>
      app.inject({
        method: 'OPTIONS',
        url: '/api/codec/decode',
        headers: {
          origin,
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'authorization, content-type, x-namespace',
        },
      });
    const ok = await preflight(UI);
    expect(ok.statusCode).toBe(204);
    expect(ok.headers['access-control-allow-origin']).toBe(UI);
    expect(ok.headers['access-control-allow-methods']).toBe('POST');
    expect(String(ok.headers['access-control-allow-headers']).split(/,\s*/).sort()).toEqual([
      'authorization',
      'content-type',
      'x-namespace',
    ]);
    for (const origin of ['https://evil.example', 'http://127.0.0.1:8234', 'null', `${UI}.evil.example`]) {
      const refused = await preflight(origin);
      expect(refused.statusCode, origin).toBe(403);
      expect(refused.headers['access-control-allow-origin'], origin).toBeUndefined();
    }
    // An OPTIONS that is not a preflight is an unknown route, like everywhere else.
    const plain = await app.inject({ method: 'OPTIONS', url: '/api/codec/decode' });
    expect(plain.statusCode).toBe(404);
    expect(plain.json().code).toBe('NOT_FOUND');
  });

  it('sends CORS headers on answers to the allowed origin only', async () => {
    const body = { payloads: [jsonPayload(1)] };
    const allowed = await post(app, 'decode', body, { authorization: `Bearer ${API_KEY}`, origin: UI });
    expect(allowed.statusCode).toBe(200);
    expect(allowed.headers['access-control-allow-origin']).toBe(UI);
    const other = await post(app, 'decode', body, {
      authorization: `Bearer ${API_KEY}`,
      origin: 'https://evil.example',
    });
    expect(other.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('refuses bad input with a 4xx, never a 5xx', async () => {
    const [sealed] = (await post(app, 'encode', { payloads: [jsonPayload('x')] })).json<{
      payloads: Array<{ metadata: Record<string, string>; data: string }>;
    }>().payloads;
    const tampered = {
      ...sealed!,
      data: Buffer.from(Buffer.from(sealed!.data, 'base64').map((b) => b ^ 1)).toString('base64'),
    };
    const otherKeyId = {
      ...sealed!,
      metadata: { ...sealed!.metadata, 'encryption-key-id': Buffer.from('deadbeef').toString('base64') },
    };
    const cases: Array<[string, unknown, number, string?]> = [
      ['not JSON', '{"payloads":', 400],
      ['no payloads', {}, 400],
      ['payloads not an array', { payloads: 'x' }, 400],
      ['bad base64 data', { payloads: [{ data: 'not base64!' }] }, 400],
      ['bad base64 metadata', { payloads: [{ metadata: { encoding: '%%%' } }] }, 400],
      ['extra fields', { payloads: [], extra: 1 }, 400],
      ['a control character in a key', { payloads: [{ metadata: { 'a\u0001': 'AA==' } }] }, 400],
      ['too many payloads', { payloads: Array.from({ length: 10_001 }, () => ({})) }, 400],
      ['tampered ciphertext', { payloads: [tampered] }, 400, 'PAYLOAD_NOT_DECODABLE'],
      ['unknown key id', { payloads: [otherKeyId] }, 400, 'PAYLOAD_NOT_DECODABLE'],
      ['over 4 MiB', { payloads: [{ data: 'A'.repeat(4 * 1024 * 1024 + 4) }] }, 413],
    ];
    for (const [name, body, status, code] of cases) {
      const res = await post(app, 'decode', body);
      expect(res.statusCode, `${name}: ${res.body.slice(0, 200)}`).toBe(status);
      if (code) expect(res.json().code, name).toBe(code);
    }
    // The unknown key id is named (it is a hash, not a key).
    expect((await post(app, 'decode', { payloads: [otherKeyId] })).json().error).toContain('deadbeef');
    // Between the API's usual 64 KiB and 4 MiB: accepted.
    const big = await post(app, 'encode', { payloads: [{ data: 'A'.repeat(1024 * 1024) }] });
    expect(big.statusCode).toBe(200);
  });
});

describe('codec endpoint in local development', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await appWith({ PAYLOAD_ENCRYPTION_KEY: KEY });
  });
  afterAll(() => app?.close());

  it('lets the local Web UI (its origin, over loopback, no Authorization) decode without the API key', async () => {
    const body = { payloads: [jsonPayload('local')] };
    const res = await post(app, 'decode', body, { origin: UI }, '127.0.0.1');
    expect(res.statusCode).toBe(200);
    expect(res.headers['access-control-allow-origin']).toBe(UI);
    expect((await post(app, 'decode', body, { origin: 'http://localhost:8233' }, '::1')).statusCode).toBe(
      200,
    );
  });

  it('still requires the key from another origin, without an origin, from another host, or with a wrong key', async () => {
    const body = { payloads: [jsonPayload('local')] };
    expect((await post(app, 'decode', body, {}, '127.0.0.1')).statusCode).toBe(401);
    expect(
      (await post(app, 'decode', body, { origin: 'https://evil.example' }, '127.0.0.1')).statusCode,
    ).toBe(401);
    expect((await post(app, 'decode', body, { origin: UI }, '192.168.1.20')).statusCode).toBe(401);
    expect(
      (await post(app, 'decode', body, { origin: UI, authorization: 'Bearer wrong' }, '127.0.0.1'))
        .statusCode,
    ).toBe(401);
  });
});

describe('codec endpoint with payload encryption off', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await appWith({});
  });
  afterAll(() => app?.close());

  it('answers 409 PAYLOAD_ENCRYPTION_OFF after authentication (401 before)', async () => {
    const body = { payloads: [jsonPayload(1)] };
    const off = await post(app, 'decode', body);
    expect(off.statusCode).toBe(409);
    expect(off.json().code).toBe('PAYLOAD_ENCRYPTION_OFF');
    expect((await post(app, 'encode', body, {})).statusCode).toBe(401);
  });
});
