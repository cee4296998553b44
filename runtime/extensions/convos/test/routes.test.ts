import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  PROVISION_PATH,
  provisionHandler,
  type RouteDeps,
  STATUS_PATH,
  statusHandler,
} from '../src/routes.js';
import type { ConvosService } from '../src/service.js';
import { FakeNetwork } from './fake-xmtp.js';
import { makeService, RecordingAgent, tempStateDir } from './helpers.js';

const TOKEN = 'gateway-token-for-tests';
let server: Server | undefined;
let service: ConvosService | undefined;

afterEach(async () => {
  await service?.stop();
  service = undefined;
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  server = undefined;
});

async function serve(overrides: Partial<RouteDeps> = {}, net = new FakeNetwork()) {
  const dir = await tempStateDir('routes');
  let started: ConvosService | undefined;
  const deps: RouteDeps = {
    token: () => TOKEN,
    current: () => started,
    ensure: async () => {
      started ??= makeService(net, dir, new RecordingAgent('Ada'));
      service = started;
      await started.start();
      return started;
    },
    disabledReason: () => undefined,
    log: () => {},
    ...overrides,
  };
  const provision = provisionHandler(deps);
  const status = statusHandler(deps);
  server = createServer((req, res) => {
    if (req.url === PROVISION_PATH) void provision(req, res);
    else if (req.url === STATUS_PATH) void status(req, res);
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => server?.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const call = async (path: string, init: RequestInit & { token?: string | null } = {}) => {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (init.token !== null) headers.authorization = `Bearer ${init.token ?? TOKEN}`;
    const res = await fetch(`${base}${path}`, { ...init, headers });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  return { call, net };
}

const body = (b: unknown) => ({ method: 'POST', body: typeof b === 'string' ? b : JSON.stringify(b) });

describe('gateway routes /convos/provision and /convos/status', () => {
  it('refuse a missing or wrong bearer token, and every call when no token is configured', async () => {
    const { call } = await serve();
    expect((await call(STATUS_PATH, { token: null })).status).toBe(401);
    expect((await call(STATUS_PATH, { token: 'nope' })).status).toBe(401);
    expect((await call(PROVISION_PATH, { ...body({}), token: 'gateway-token-for-test' })).status).toBe(401);
    await new Promise<void>((r) => server?.close(() => r()));
    const unconfigured = await serve({ token: () => undefined });
    expect((await unconfigured.call(STATUS_PATH)).body).toEqual({
      error: 'missing or wrong bearer token',
      code: 'unauthorized',
    });
  });

  it('reports starting, then ready; error when the channel is disabled', async () => {
    const { call } = await serve();
    expect(await call(STATUS_PATH)).toEqual({
      status: 200,
      body: { state: 'starting', lastActivityAt: null, conversation: null },
    });
    const created = await call(PROVISION_PATH, body({ requestId: 'r', agentName: 'Ada', instructions: '' }));
    expect(await call(STATUS_PATH)).toEqual({
      status: 200,
      body: {
        state: 'ready',
        lastActivityAt: null,
        // The conversation the control server reports to the pool (its acceptance, its end).
        conversation: {
          requestId: 'r',
          conversationId: created.body.conversationId,
          status: 'created',
          exit: null,
        },
      },
    });
    await new Promise<void>((r) => server?.close(() => r()));
    const off = await serve({ disabledReason: () => 'XMTP_ENV=off' });
    expect((await off.call(STATUS_PATH)).body).toEqual({
      state: 'error',
      error: 'channel disabled: XMTP_ENV=off',
    });
    expect((await off.call(PROVISION_PATH, body({ requestId: 'r', agentName: 'A' }))).status).toBe(503);
  });

  it('provisions idempotently and answers bad requests with 4xx and a clear message', async () => {
    const { call, net } = await serve();
    const first = await call(PROVISION_PATH, body({ requestId: 'r1', agentName: 'Ada', instructions: 'hi' }));
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ joined: false, status: 'created' });
    expect(String(first.body.inviteUrl)).toMatch(/^https:\/\/dev\.convos\.org\/v2\?i=/);
    expect(
      await call(PROVISION_PATH, body({ requestId: 'r1', agentName: 'Ada', instructions: 'hi' })),
    ).toEqual(first);
    expect(net.groupsCreated).toBe(1);

    const bad: Array<[unknown, number, string]> = [
      ['{not json', 400, 'invalid_json'],
      [[1, 2], 400, 'invalid_body'],
      [{ agentName: 'A' }, 400, 'invalid_body'],
      [{ requestId: 7, agentName: 'A' }, 400, 'invalid_body'],
      [{ requestId: 'x', agentName: '  ' }, 400, 'invalid_body'],
      [{ requestId: 'x', agentName: 'A'.repeat(101) }, 400, 'invalid_body'],
      [
        { requestId: 'x', agentName: 'A', joinUrl: 'https://evil.example/v2?i=x' },
        400,
        'invite_unsupported_url',
      ],
      [
        { requestId: 'x', agentName: 'A', joinUrl: 'https://popup.convos.org/v2?i=%%%' },
        400,
        'invite_bad_encoding',
      ],
      [{ requestId: 'r2', agentName: 'A' }, 409, 'already_provisioned'],
      ['x'.repeat(300_000), 413, 'body_too_large'],
    ];
    for (const [b, status, code] of bad) {
      const r = await call(PROVISION_PATH, body(b));
      expect(r.status, JSON.stringify(b).slice(0, 60)).toBe(status);
      expect(r.body.code).toBe(code);
      expect(typeof r.body.error).toBe('string');
    }
    expect((await call(PROVISION_PATH, { method: 'GET' })).status).toBe(405);
    expect(net.groupsCreated).toBe(1);
  });

  it('answers 503 with a clear message when the XMTP network is unreachable', async () => {
    const net = new FakeNetwork();
    net.online = false;
    const { call } = await serve({}, net);
    const r = await call(PROVISION_PATH, body({ requestId: 'r', agentName: 'Ada' }));
    expect(r.status).toBe(503);
    expect(r.body.code).toBe('xmtp_unavailable');
    expect(String(r.body.error)).toMatch(/could not reach the XMTP network/);
  });
});
