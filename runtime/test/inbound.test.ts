// /pool/inbound: validated, deduplicated by eventId, persisted before the 200, handed to the agent once
// (retried while it cannot take it), and still handed over after a restart.
import { mkdtempSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { InboundRequest } from '../../contracts/runtime.ts';
import { createControlServer } from '../src/control-server.ts';
import { InboundQueue, validateInboundRequest } from '../src/inbound.ts';

const TOKEN = 'instance-token-0123456789';
const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise<void>((r) => s.close(() => r()));
});

const email: InboundRequest = {
  eventId: 'agentmail:evt_1',
  channel: 'email',
  from: 'Jane Doe <jane@example.com>',
  subject: 'Dinner on Friday?',
  text: 'Are you free at 8?',
  receivedAt: '2026-03-01T10:00:00.000Z',
};

async function serve(queue: InboundQueue): Promise<string> {
  const server = createControlServer({
    instanceToken: TOKEN,
    health: () => ({
      ready: true,
      gateway: 'ready',
      channel: 'disabled',
      version: 't',
      lastActivityAt: null,
    }),
    provision: async () => {
      throw new Error('unused');
    },
    selfDestruct: async () => ({ status: 202, body: {} }),
    inbound: (r) => queue.accept(r),
    chatSecret: 'chat-secret-abcdefghijklmnopqrstuvwxyz012345',
    chat: { gatewayUrl: 'http://127.0.0.1:1', gatewayToken: 'x', agentName: () => 'Ada' },
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const post = (base: string, body: unknown, token = TOKEN) =>
  fetch(`${base}/pool/inbound`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

const until = async (check: () => boolean) => {
  for (let i = 0; i < 100 && !check(); i++) await new Promise((r) => setTimeout(r, 20));
  expect(check()).toBe(true);
};

describe('POST /pool/inbound', () => {
  it('hands an event to the agent once, however often the pool sends it', async () => {
    const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'inbound-')), 'inbound.json');
    const turns: string[] = [];
    const queue = new InboundQueue(file, async (text) => {
      turns.push(text);
    });
    queue.start();
    const base = await serve(queue);
    const first = await post(base, email);
    expect(first.status).toBe(200);
    expect(await first.json()).toEqual({ accepted: true, duplicate: false });
    const again = await post(base, email);
    expect(await again.json()).toEqual({ accepted: true, duplicate: true });
    await until(() => turns.length === 1);
    await new Promise((r) => setTimeout(r, 100));
    expect(turns).toHaveLength(1);
    expect(turns[0]).toContain(
      'You received an email from Jane Doe <jane@example.com> about "Dinner on Friday?"',
    );
    expect(turns[0]).toContain('Are you free at 8?');
    queue.stop();
  });

  it('refuses a wrong token and a bad body, recording nothing', async () => {
    const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'inbound-')), 'inbound.json');
    const queue = new InboundQueue(file, async () => {});
    const base = await serve(queue);
    expect((await post(base, email, 'wrong-token-0123456789')).status).toBe(401);
    expect((await post(base, { ...email, channel: 'fax' })).status).toBe(400);
    expect((await post(base, { ...email, extra: 1 })).status).toBe(400);
    expect((await post(base, { ...email, text: 'a\u0000b' })).status).toBe(400);
    expect(queue.pending()).toEqual([]);
  });

  it('keeps an event the agent could not take yet across a restart, and hands it over then', async () => {
    const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'inbound-')), 'inbound.json');
    const down = new InboundQueue(
      file,
      async () => {
        throw new Error('the gateway is not ready');
      },
      () => {},
      [10_000],
    );
    down.start();
    expect(down.accept(email)).toEqual({ accepted: true, duplicate: false });
    await new Promise((r) => setTimeout(r, 50));
    down.stop();
    const turns: InboundRequest[] = [];
    const restarted = new InboundQueue(file, async (_t, r) => {
      turns.push(r);
    });
    expect(restarted.pending().map((r) => r.eventId)).toEqual([email.eventId]);
    restarted.start();
    await until(() => turns.length === 1);
    // Still known after delivery: a late repeat from the pool is a duplicate.
    expect(restarted.accept(email).duplicate).toBe(true);
    restarted.stop();
  });

  it('validates exactly the contract', () => {
    expect(validateInboundRequest(email)).toEqual(email);
    expect(validateInboundRequest({ ...email, subject: null, channel: 'sms' })).toMatchObject({
      subject: null,
    });
    expect(typeof validateInboundRequest({ ...email, eventId: 'has space' })).toBe('string');
  });
});
