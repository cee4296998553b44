// The control server's side of CONTRACT.md, against a stand-in of the convos plugin's gateway routes
// (the plugin itself is tested inside a real gateway in extensions/convos/test/gateway.e2e.test.ts).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChannelClient, ChannelError } from '../src/channel-client.ts';

const TOKEN = 'gateway-token-for-test';
let server: Server;
let base: string;
let statusAnswer: { code: number; body: string; type?: string } = {
  code: 200,
  body: JSON.stringify({ state: 'ready' }),
};
let provisionAnswer: { code: number; body: unknown } = { code: 200, body: {} };
const seen: Array<{ path: string; auth: string | undefined; body: string }> = [];

beforeAll(async () => {
  server = createServer(async (req, res) => {
    let body = '';
    for await (const c of req) body += c;
    seen.push({ path: req.url ?? '', auth: req.headers.authorization, body });
    if (req.url === '/convos/status') {
      res.writeHead(statusAnswer.code, { 'content-type': statusAnswer.type ?? 'application/json' });
      res.end(statusAnswer.body);
      return;
    }
    res.writeHead(provisionAnswer.code, { 'content-type': 'application/json' });
    res.end(JSON.stringify(provisionAnswer.body));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});

describe('ChannelClient', () => {
  it('maps /convos/status, treating HTML (the Control UI catch-all) and errors as starting', async () => {
    const client = new ChannelClient(base, TOKEN);
    for (const state of ['starting', 'ready', 'error']) {
      statusAnswer = { code: 200, body: JSON.stringify({ state }) };
      expect(await client.status()).toEqual({ state, lastActivityAt: null, conversation: null });
    }
    statusAnswer = {
      code: 200,
      body: JSON.stringify({ state: 'ready', lastActivityAt: '2026-01-02T03:04:05.678Z' }),
    };
    expect(await client.status()).toEqual({
      state: 'ready',
      lastActivityAt: '2026-01-02T03:04:05.678Z',
      conversation: null,
    });
    statusAnswer = { code: 200, body: JSON.stringify({ state: 'ready', lastActivityAt: 12 }) };
    expect(await client.status()).toEqual({ state: 'ready', lastActivityAt: null, conversation: null });
    const starting = { state: 'starting', lastActivityAt: null, conversation: null };
    statusAnswer = { code: 200, body: '<!doctype html><html></html>', type: 'text/html' };
    expect(await client.status()).toEqual(starting);
    statusAnswer = {
      code: 401,
      body: JSON.stringify({ error: 'no', code: 'unauthorized', lastActivityAt: '2026-01-02T03:04:05.678Z' }),
    };
    expect(await client.status()).toEqual(starting);
    expect(await new ChannelClient('http://127.0.0.1:9', TOKEN).status()).toEqual(starting);
    expect(seen.at(-2)?.auth).toBe(`Bearer ${TOKEN}`);
  });

  it("reads the plugin's conversation (its acceptance, its end), dropping what is not one", async () => {
    const client = new ChannelClient(base, TOKEN);
    const conversation = {
      requestId: 'claim-1',
      conversationId: 'conv-1',
      status: 'joined',
      exit: 'removed_from_conversation',
    };
    statusAnswer = { code: 200, body: JSON.stringify({ state: 'ready', conversation }) };
    expect((await client.status()).conversation).toEqual(conversation);
    const variants: Array<[unknown, unknown]> = [
      [
        { ...conversation, exit: 'bored' },
        { ...conversation, exit: null },
      ],
      [
        { ...conversation, exit: undefined, conversationId: '' },
        { ...conversation, exit: null, conversationId: null },
      ],
      [{ ...conversation, status: 'gone' }, null],
      [{ ...conversation, requestId: 7 }, null],
      ['conv-1', null],
    ];
    for (const [sent, read] of variants) {
      statusAnswer = { code: 200, body: JSON.stringify({ state: 'ready', conversation: sent }) };
      expect((await client.status()).conversation, JSON.stringify(sent)).toEqual(read);
    }
  });

  it("posts the provision request with the gateway token and returns the contract's fields only", async () => {
    provisionAnswer = {
      code: 200,
      body: {
        conversationId: 'conv-1',
        inviteUrl: 'https://dev.convos.org/v2?i=abc',
        joined: false,
        status: 'created',
        extra: 'dropped',
      },
    };
    const request = {
      requestId: 'r1',
      agentName: 'Ada',
      instructions: 'hi',
      joinUrl: 'https://popup.convos.org/v2?i=x',
    };
    const result = await new ChannelClient(base, TOKEN).provision(request);
    expect(result).toEqual({
      conversationId: 'conv-1',
      inviteUrl: 'https://dev.convos.org/v2?i=abc',
      joined: false,
      status: 'created',
    });
    const call = seen.at(-1);
    expect(call?.path).toBe('/convos/provision');
    expect(call?.auth).toBe(`Bearer ${TOKEN}`);
    expect(JSON.parse(call?.body ?? '{}')).toEqual(request);
  });

  it("turns plugin errors and unknown statuses into ChannelError with the plugin's code", async () => {
    const client = new ChannelClient(base, TOKEN);
    provisionAnswer = { code: 400, body: { error: 'bad invite', code: 'invalid_invite' } };
    await expect(
      client.provision({ requestId: 'r', agentName: 'A', instructions: '' }),
    ).rejects.toMatchObject({
      status: 400,
      code: 'invalid_invite',
    });
    provisionAnswer = { code: 200, body: { status: 'maybe' } };
    const err = await client
      .provision({ requestId: 'r', agentName: 'A', instructions: '' })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ChannelError);
    expect((err as ChannelError).code).toBe('channel_bad_response');
  });
});
