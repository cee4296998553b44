// A scheduled message of a Convos group, on the in-memory XMTP network: the runtime's scheduler, at the due
// time, sends through the channel client to the convos plugin's POST /convos/send (the real handler over the
// real ConvosService), which posts it into the agent's own group, where the person in it reads it. Another
// agent's group gets nothing; a conversation that is not the agent's is refused for good, not retried.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SEND_PATH, sendHandler } from '../extensions/convos/src/routes.ts';
import type { ConvosService } from '../extensions/convos/src/service.ts';
import { type FakeDm, FakeNetwork } from '../extensions/convos/test/fake-xmtp.ts';
import { eventually, makeService, RecordingAgent, tempStateDir } from '../extensions/convos/test/helpers.ts';
import { ChannelClient } from '../src/channel-client.ts';
import { parseInviteUrl } from '../src/invite/index.ts';
import { Scheduler } from '../src/scheduler.ts';

const TOKEN = 'gateway-token-for-scheduled-sends';
const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

async function agentWithGroup(net: FakeNetwork, name: string) {
  const service = makeService(
    net,
    await tempStateDir(`sched-${name}`),
    new RecordingAgent(name, () => false),
  );
  cleanup.push(() => service.stop());
  await service.start();
  const created = await service.provision({ requestId: `req-${name}`, agentName: name, instructions: '' });
  // A person joins, the way the Convos app does, and reads the group.
  const person = net.personClient();
  const invite = parseInviteUrl(created.inviteUrl ?? '');
  const dm = (await person.createDm(invite.creatorInboxId)) as FakeDm;
  await dm.sendJoinRequest({ inviteSlug: invite.slug, profile: { name: 'Pat' } });
  const group = await eventually(async () =>
    (await person.listConversations()).find((c) => c.kind === 'group'),
  );
  if (!group) throw new Error('the person never got the group');
  return { service, conversationId: created.conversationId ?? '', group };
}

/** The plugin's send route over `service`, as the gateway serves it. */
async function gatewayRoute(service: ConvosService): Promise<string> {
  const handle = sendHandler({
    token: () => TOKEN,
    current: () => service,
    ensure: async () => service,
    disabledReason: () => undefined,
    log: () => {},
  });
  const server: Server = createServer((req, res) => {
    if (req.url === SEND_PATH) void handle(req, res);
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanup.push(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('a scheduled message of a Convos group', () => {
  it('is posted into the agent’s own group at its time, and nowhere else', async () => {
    const net = new FakeNetwork();
    const ada = await agentWithGroup(net, 'Ada');
    const bob = await agentWithGroup(net, 'Bob');
    const channel = new ChannelClient(await gatewayRoute(ada.service), TOKEN);
    const dir = await tempStateDir('sched-store');
    const scheduler = new Scheduler({
      file: path.join(dir, 'scheduled.json'),
      limits: { maxPending: 5, minGapMs: 200, maxAheadMs: 3600_000 },
      deliver: (conversation, text) => channel.send(conversation.slice('convos:'.length), text),
    });
    cleanup.push(async () => scheduler.stop());
    scheduler.start();
    const before = (await ada.group.messages()).length;
    const message = scheduler.schedule({
      conversation: `convos:${ada.conversationId}`,
      text: 'Reminder: standup in 5 minutes',
      inMinutes: 0.005,
    });
    // Bob's conversation is not Ada's: her channel refuses it for good.
    const foreign = scheduler.schedule({
      conversation: `convos:${bob.conversationId}`,
      text: 'not yours',
      inMinutes: 0.005,
    });
    const posted = await eventually(async () => {
      const texts = (await ada.group.messages()).slice(before).map((m) => m.text);
      return texts.includes('Reminder: standup in 5 minutes') ? Date.now() : null;
    }, 3000);
    if (posted === null) throw new Error('never posted');
    expect(posted - Date.parse(message.dueAt)).toBeLessThan(500);
    expect(posted - Date.parse(message.dueAt)).toBeGreaterThanOrEqual(0);
    await eventually(() => scheduler.all().find((m) => m.id === foreign.id)?.state === 'failed', 3000);
    expect(scheduler.all().find((m) => m.id === message.id)).toMatchObject({ state: 'sent', attempts: 1 });
    expect(scheduler.all().find((m) => m.id === foreign.id)).toMatchObject({ state: 'failed', attempts: 1 });
    expect((await bob.group.messages()).map((m) => m.text)).not.toContain('not yours');
    expect((await bob.group.messages()).map((m) => m.text)).not.toContain('Reminder: standup in 5 minutes');
  });

  it('the send route needs the gateway token and the agent’s conversation', async () => {
    const net = new FakeNetwork();
    const ada = await agentWithGroup(net, 'Ada');
    const base = await gatewayRoute(ada.service);
    const post = (body: unknown, token = TOKEN) =>
      fetch(`${base}${SEND_PATH}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    expect((await post({ conversationId: ada.conversationId, text: 'x' }, 'wrong')).status).toBe(401);
    expect((await post({ conversationId: 'zz', text: 'x' })).status).toBe(400);
    expect((await post({ conversationId: ada.conversationId, text: '' })).status).toBe(400);
    const unknown = await post({ conversationId: 'ab'.repeat(16), text: 'x' });
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { code: string }).code).toBe('unknown_conversation');
    const ok = await post({ conversationId: ada.conversationId, text: 'direct' });
    expect(ok.status).toBe(200);
    expect((await ada.group.messages()).map((m) => m.text)).toContain('direct');
  });
});
