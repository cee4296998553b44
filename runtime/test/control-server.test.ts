// (d) The control server's edges, with the gateway replaced by plain functions: auth, validation,
// unknown paths, methods, self-destruct from loopback only, and the chat page's secret path.
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ActivityClock } from '../src/activity.ts';
import {
  ChatQueue,
  MAX_PENDING_CHAT_MESSAGES,
  MAX_PENDING_CHAT_MESSAGES_PER_SESSION,
  validateChatMessage,
} from '../src/chat-page.ts';
import { createControlServer, type Health } from '../src/control-server.ts';
import type { ProvisionRequest } from '../src/provision-store.ts';

const TOKEN = 'instance-token-0123456789';
const CHAT_SECRET = 'chat-secret-abcdefghijklmnopqrstuvwxyz012345';
let server: Server;
let base: string;
const provisioned: ProvisionRequest[] = [];
let selfDestructCalls = 0;
// A stand-in for the gateway's /v1/chat/completions (the chat page's upstream).
let gateway: Server;
const gatewayCalls: Array<{ user: unknown; content: unknown }> = [];
let activity: ActivityClock;

beforeAll(async () => {
  gateway = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
      user?: unknown;
      messages?: Array<{ content?: unknown }>;
    };
    gatewayCalls.push({ user: body.user, content: body.messages?.[0]?.content });
    res
      .writeHead(200, { 'content-type': 'application/json' })
      .end(JSON.stringify({ choices: [{ message: { content: 'stand-in reply' } }] }));
  });
  await new Promise<void>((resolve) => gateway.listen(0, '127.0.0.1', resolve));
  activity = new ActivityClock(null);
  const health = (): Health => ({
    ready: true,
    gateway: 'ready',
    channel: 'disabled',
    version: 'test',
    lastActivityAt: activity.lastActivityAt(),
  });
  server = createControlServer({
    instanceToken: TOKEN,
    health,
    provision: async (req) => {
      provisioned.push(req);
      return {
        conversationId: null,
        inviteUrl: null,
        joined: false,
        status: 'created',
        chatUrl: 'http://x/chat/y',
      };
    },
    selfDestruct: async () => {
      selfDestructCalls += 1;
      return { status: 202, body: { accepted: true } };
    },
    chatSecret: CHAT_SECRET,
    chat: {
      gatewayUrl: `http://127.0.0.1:${(gateway.address() as AddressInfo).port}`,
      gatewayToken: 'unused',
      agentName: () => 'Ada <b>',
    },
    recordActivity: () => activity.record(),
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  for (const s of [server, gateway]) {
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
});

const auth = { authorization: `Bearer ${TOKEN}` };
const json = { 'content-type': 'application/json' };

async function call(path: string, init: RequestInit = {}) {
  const res = await fetch(`${base}${path}`, init);
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // HTML pages stay text
  }
  return { status: res.status, body: body as Record<string, unknown> };
}

const valid = { requestId: 'r-1', agentName: 'Ada', instructions: 'Be kind.' };

describe('control server', () => {
  it('answers health with the token', async () => {
    const res = await call('/pool/health', { headers: auth });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      ready: true,
      gateway: 'ready',
      channel: 'disabled',
      version: 'test',
      lastActivityAt: null,
    });
  });

  it.each([
    ['no header', {}],
    ['wrong token', { authorization: 'Bearer nope' }],
    ['token prefix', { authorization: `Bearer ${TOKEN.slice(0, -1)}` }],
    ['token plus extra', { authorization: `Bearer ${TOKEN}x` }],
    ['basic scheme', { authorization: `Basic ${TOKEN}` }],
  ])('401 with %s', async (_name, headers) => {
    for (const [path, method] of [
      ['/pool/health', 'GET'],
      ['/pool/provision', 'POST'],
    ] as const) {
      const res = await call(path, {
        method,
        headers: { ...headers, ...json },
        body: method === 'POST' ? JSON.stringify(valid) : undefined,
      });
      expect(res.status).toBe(401);
      expect(res.body).toMatchObject({ code: 'unauthorized', error: expect.any(String) });
    }
  });

  it.each([
    ['not JSON', '{nope', 400, 'invalid_json'],
    ['an array', '[]', 400, 'invalid_request'],
    ['missing requestId', JSON.stringify({ agentName: 'A', instructions: '' }), 400, 'invalid_request'],
    ['empty requestId', JSON.stringify({ ...valid, requestId: '  ' }), 400, 'invalid_request'],
    ['numeric agentName', JSON.stringify({ ...valid, agentName: 5 }), 400, 'invalid_request'],
    ['multi-line agentName', JSON.stringify({ ...valid, agentName: 'A\nB' }), 400, 'invalid_request'],
    ['missing instructions', JSON.stringify({ requestId: 'r', agentName: 'A' }), 400, 'invalid_request'],
    [
      'huge instructions',
      JSON.stringify({ ...valid, instructions: 'x'.repeat(20_001) }),
      400,
      'invalid_request',
    ],
    ['empty joinUrl', JSON.stringify({ ...valid, joinUrl: '' }), 400, 'invalid_request'],
    ['unknown field', JSON.stringify({ ...valid, admin: true }), 400, 'invalid_request'],
    // The shared claim contract (contracts/claim.ts), exactly as the site and the API apply it.
    [
      'a 65-character agentName',
      JSON.stringify({ ...valid, agentName: 'A'.repeat(65) }),
      400,
      'invalid_request',
    ],
    ['a CR in agentName', JSON.stringify({ ...valid, agentName: 'A\rB' }), 400, 'invalid_request'],
    ['U+0000 in agentName', JSON.stringify({ ...valid, agentName: 'A\u0000B' }), 400, 'invalid_request'],
    ['BEL in agentName', JSON.stringify({ ...valid, agentName: 'A\u0007' }), 400, 'invalid_request'],
    ['ESC in agentName', JSON.stringify({ ...valid, agentName: '\u001b[31mA' }), 400, 'invalid_request'],
    [
      'a bidi override in agentName',
      JSON.stringify({ ...valid, agentName: 'Ada\u202Egnp.exe' }),
      400,
      'invalid_request',
    ],
    [
      'a lone surrogate in agentName',
      JSON.stringify({ ...valid, agentName: 'Ada\ud800' }),
      400,
      'invalid_request',
    ],
    [
      'U+0000 in instructions',
      JSON.stringify({ ...valid, instructions: 'Be\u0000kind' }),
      400,
      'invalid_request',
    ],
    [
      'a bidi override in instructions',
      JSON.stringify({ ...valid, instructions: 'Be \u202Ekind' }),
      400,
      'invalid_request',
    ],
    [
      'a lone surrogate in instructions',
      JSON.stringify({ ...valid, instructions: '\udc00' }),
      400,
      'invalid_request',
    ],
    [
      'a requestId with a control character',
      JSON.stringify({ ...valid, requestId: 'r-1\u0000' }),
      400,
      'invalid_request',
    ],
    [
      'a requestId that is no Idempotency-Key',
      JSON.stringify({ ...valid, requestId: 'r 1' }),
      400,
      'invalid_request',
    ],
    [
      'a 129-character requestId',
      JSON.stringify({ ...valid, requestId: 'r'.repeat(129) }),
      400,
      'invalid_request',
    ],
    [
      'a joinUrl with spaces',
      JSON.stringify({ ...valid, joinUrl: ' https://popup.convos.org/v2?i=abc ' }),
      400,
      'invalid_request',
    ],
    [
      'a joinUrl with U+0000',
      JSON.stringify({ ...valid, joinUrl: 'https://popup.convos.org/v2?i=a\u0000' }),
      400,
      'invalid_request',
    ],
    [
      'a joinUrl over 8192 characters',
      JSON.stringify({ ...valid, joinUrl: `https://popup.convos.org/v2?i=${'a'.repeat(8_200)}` }),
      400,
      'invalid_request',
    ],
    ['too large body', JSON.stringify({ ...valid, instructions: 'x'.repeat(70_000) }), 413, 'body_too_large'],
  ])('rejects %s', async (_name, body, status, code) => {
    const before = provisioned.length;
    const res = await call('/pool/provision', { method: 'POST', headers: { ...auth, ...json }, body });
    expect(res.status).toBe(status);
    expect(res.body).toMatchObject({ code, error: expect.any(String) });
    expect(provisioned.length).toBe(before);
  });

  it('rejects a non-JSON content type and wrong methods', async () => {
    const text = await call('/pool/provision', {
      method: 'POST',
      headers: { ...auth, 'content-type': 'text/plain' },
      body: 'hi',
    });
    expect(text.status).toBe(415);
    const get = await call('/pool/provision', { headers: auth });
    expect(get.status).toBe(405);
    const post = await call('/pool/health', { method: 'POST', headers: auth });
    expect(post.status).toBe(405);
  });

  it('404s unknown paths as JSON, with or without the token', async () => {
    for (const path of [
      '/',
      '/pool/nope',
      '/pool',
      '/v1/chat/completions',
      '/chat/wrong-secret',
      `/chat/${CHAT_SECRET}/nope`,
    ]) {
      const res = await call(path, { headers: auth });
      expect(res.status, path).toBe(404);
      expect(res.body).toMatchObject({ code: 'not_found' });
    }
  });

  it('refuses what the fuzz suite found: odd request targets, deeper chat paths, bodies that are not plain UTF-8 JSON, CONNECT', async () => {
    const before = provisioned.length;
    // `//` made `new URL()` throw (a 500); `//host/pool/health` routed to health.
    for (const target of ['//', '//evil.example/pool/health']) {
      const res = await call(target, { headers: auth });
      expect(res.status, target).toBe(400);
      expect(res.body).toMatchObject({ code: 'invalid_request_target' });
    }
    // `/chat/<secret>/messages/<anything>` was the messages route.
    const deeper = await call(`/chat/${CHAT_SECRET}/messages/x`, {
      method: 'POST',
      headers: json,
      body: JSON.stringify({ message: 'hi', session: 'session-1234' }),
    });
    expect(deeper.status).toBe(404);
    const post = (body: BodyInit, headers: Record<string, string>) =>
      call('/pool/provision', { method: 'POST', headers: { ...auth, ...headers }, body });
    // Invalid UTF-8 was decoded to U+FFFD and provisioned.
    const invalidUtf8 = Buffer.concat([
      Buffer.from('{"requestId":"r-8","agentName":"'),
      Buffer.from([0x80]),
      Buffer.from('","instructions":""}'),
    ]);
    expect(await post(invalidUtf8, json)).toMatchObject({ status: 400, body: { code: 'invalid_json' } });
    // A content coding was ignored (a gzip body read as JSON, or a plain one accepted under "gzip").
    expect((await post(JSON.stringify(valid), { ...json, 'content-encoding': 'gzip' })).status).toBe(415);
    // Only application/json itself, in UTF-8.
    for (const type of ['application/json-seq', 'application/json; charset=utf-16', 'text/json']) {
      expect((await post(JSON.stringify(valid), { 'content-type': type })).status, type).toBe(415);
    }
    expect(
      (await post(JSON.stringify(valid), { 'content-type': 'Application/JSON; charset=UTF-8' })).status,
    ).toBe(200);
    expect(provisioned.length).toBe(before + 1);
    provisioned.pop();
    // CONNECT closed the connection without an answer.
    const status = await new Promise<number | undefined>((resolve, reject) => {
      const req = httpRequest({
        host: '127.0.0.1',
        port: Number(new URL(base).port),
        method: 'CONNECT',
        path: 'example.com:443',
      });
      req.on('connect', (res, socket) => {
        socket.destroy();
        resolve(res.statusCode);
      });
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(405);
  });

  it('provisions a valid request and passes exactly the validated fields', async () => {
    const res = await call('/pool/provision', {
      method: 'POST',
      headers: { ...auth, ...json },
      body: JSON.stringify({ ...valid, joinUrl: 'https://popup.convos.org/v2?i=abc' }),
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'created', joined: false });
    expect(provisioned.at(-1)).toEqual({ ...valid, joinUrl: 'https://popup.convos.org/v2?i=abc' });
  });

  it('accepts what the contract allows at its limits: 64 characters, emoji, joiners, multi-line instructions', async () => {
    const edge = [
      { ...valid, requestId: 'K'.repeat(128), agentName: 'A'.repeat(64) },
      {
        ...valid,
        requestId: 'claim:2026-01-01T00:00:00.000Z_x',
        agentName: 'Zoë 👩‍💻 محمد',
        instructions: `line 1\n\tline 2\r\n${'x'.repeat(19_980)}`,
      },
    ];
    for (const body of edge) {
      const res = await call('/pool/provision', {
        method: 'POST',
        headers: { ...auth, ...json },
        body: JSON.stringify(body),
      });
      expect(res.status, JSON.stringify(body).slice(0, 80)).toBe(200);
      expect(provisioned.at(-1)).toEqual(body);
    }
  });

  it('accepts self-destruct from loopback without a token', async () => {
    const res = await call('/pool/self-destruct', { method: 'POST' });
    expect(res.status).toBe(202);
    expect(selfDestructCalls).toBe(1);
  });

  it('serves the chat page only at the secret path, escaping the agent name', async () => {
    const res = await fetch(`${base}/chat/${CHAT_SECRET}`);
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain('Ada &#60;b&#62;');
    expect(html).not.toContain('Ada <b>');
    const bad = await call(`/chat/${CHAT_SECRET}/messages`, {
      method: 'POST',
      headers: json,
      body: JSON.stringify({ message: '' }),
    });
    expect(bad.status).toBe(400);
  });

  it('refuses chat messages with control characters or lone surrogates (tabs and line breaks are text)', async () => {
    for (const message of [
      'hi\u0000',
      'ring \u0007',
      '\u001b[2J',
      'del \u007f',
      'c1 \u0085',
      'half \ud83d',
    ]) {
      const res = await call(`/chat/${CHAT_SECRET}/messages`, {
        method: 'POST',
        headers: json,
        body: JSON.stringify({ message, session: 'session-1234' }),
      });
      expect(res.status, JSON.stringify(message)).toBe(400);
      expect(res.body).toMatchObject({
        code: 'invalid_request',
        error: expect.stringMatching(/^message contains/),
      });
    }
    expect(validateChatMessage({ message: 'a\tb\nc\r\nd 😀', session: 'session-1234' })).toEqual({
      message: 'a\tb\nc\r\nd 😀',
      session: 'session-1234',
    });
  });

  it("a chat page message and its reply are activity: health's lastActivityAt moves from null to an ISO time", async () => {
    const health = async () => (await call('/pool/health', { headers: auth })).body.lastActivityAt;
    expect(await health()).toBeNull();
    // Refused messages are not activity.
    await call(`/chat/${CHAT_SECRET}/messages`, {
      method: 'POST',
      headers: json,
      body: JSON.stringify({ message: '\u0000', session: 'session-1234' }),
    });
    expect(await health()).toBeNull();
    const before = Date.now();
    const res = await call(`/chat/${CHAT_SECRET}/messages`, {
      method: 'POST',
      headers: json,
      body: JSON.stringify({ message: 'hello', session: 'session-1234' }),
    });
    expect(res).toEqual({ status: 200, body: { reply: 'stand-in reply' } });
    expect(gatewayCalls.at(-1)).toEqual({ user: 'chat-session-1234', content: 'hello' });
    const at = await health();
    expect(typeof at).toBe('string');
    expect(new Date(at as string).toISOString()).toBe(at);
    expect(Date.parse(at as string)).toBeGreaterThanOrEqual(before);
    expect(Date.parse(at as string)).toBeLessThanOrEqual(Date.now());
  });
});

describe("the chat page's bound on messages waiting for the agent", () => {
  it(`refuses the newest with 429 past ${MAX_PENDING_CHAT_MESSAGES_PER_SESSION} per session / ${MAX_PENDING_CHAT_MESSAGES} in total, and frees slots as answers come`, async () => {
    expect(MAX_PENDING_CHAT_MESSAGES_PER_SESSION).toBe(20);
    // A gateway that answers only when told to (a slow model); 500 for "fail".
    const held: Array<() => void> = [];
    const slow = createServer(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const content = (
        JSON.parse(Buffer.concat(chunks).toString('utf8')) as { messages: Array<{ content: string }> }
      ).messages[0]?.content;
      const answer = () =>
        content === 'fail'
          ? res.writeHead(500).end('{}')
          : res
              .writeHead(200, { 'content-type': 'application/json' })
              .end(JSON.stringify({ choices: [{ message: { content: `re: ${content}` } }] }));
      if (content === 'fail') answer();
      else held.push(answer);
    });
    await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r));
    const logs: string[] = [];
    const limited = createControlServer({
      instanceToken: TOKEN,
      health: () => ({
        ready: true,
        gateway: 'ready',
        channel: 'disabled',
        version: 'test',
        lastActivityAt: null,
      }),
      provision: async () => {
        throw new Error('unused');
      },
      selfDestruct: async () => ({ status: 202, body: {} }),
      chatSecret: CHAT_SECRET,
      chat: {
        gatewayUrl: `http://127.0.0.1:${(slow.address() as AddressInfo).port}`,
        gatewayToken: 'unused',
        agentName: () => 'Ada',
      },
      chatQueue: new ChatQueue(2, 3),
      log: (l) => logs.push(l),
    });
    await new Promise<void>((r) => limited.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(limited.address() as AddressInfo).port}/chat/${CHAT_SECRET}/messages`;
    const post = async (session: string, message: string) => {
      const res = await fetch(url, {
        method: 'POST',
        headers: json,
        body: JSON.stringify({ session, message }),
      });
      return {
        status: res.status,
        retryAfter: res.headers.get('retry-after'),
        body: (await res.json()) as Record<string, unknown>,
      };
    };
    const until = async (n: number) => {
      for (let i = 0; held.length < n && i < 200; i++) await new Promise((r) => setTimeout(r, 10));
      expect(held).toHaveLength(n);
    };
    try {
      const a1 = post('session-aaaa', 'a1');
      const a2 = post('session-aaaa', 'a2');
      await until(2);
      // The session is full: the newest is refused, the two in flight are untouched.
      expect(await post('session-aaaa', 'a3-secret')).toMatchObject({
        status: 429,
        retryAfter: '5',
        body: { code: 'too_many_pending' },
      });
      // Another session still has room, up to the instance-wide bound.
      const b1 = post('session-bbbb', 'b1');
      await until(3);
      expect(await post('session-cccc', 'c1')).toMatchObject({
        status: 429,
        body: { code: 'too_many_pending' },
      });
      expect(logs.join('\n')).toMatch(/chat: refused 1 message\(s\): too many waiting/);
      expect(logs.join('\n')).not.toContain('a3-secret');
      for (const answer of held.splice(0)) answer();
      expect((await a1).body).toEqual({ reply: 're: a1' });
      expect((await a2).body).toEqual({ reply: 're: a2' });
      expect((await b1).body).toEqual({ reply: 're: b1' });
      // Answered (and failed) messages give their slots back.
      expect((await post('session-aaaa', 'fail')).status).toBe(502);
      expect((await post('session-aaaa', 'fail')).status).toBe(502);
      const again = post('session-aaaa', 'a4');
      await until(1);
      for (const answer of held.splice(0)) answer();
      expect((await again).body).toEqual({ reply: 're: a4' });
    } finally {
      for (const answer of held.splice(0)) answer();
      for (const s of [limited, slow]) {
        s.closeAllConnections();
        await new Promise<void>((r) => s.close(() => r()));
      }
    }
  });
});
