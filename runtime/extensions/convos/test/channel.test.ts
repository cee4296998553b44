import { afterEach, describe, expect, it } from 'vitest';
import { createInvite, decodeAppData, parseInviteUrl } from '../../../src/invite/index.js';
import type { ConvosService } from '../src/service.js';
import { ProvisionError } from '../src/service.js';
import { type FakeDm, type FakeGroup, FakeNetwork } from './fake-xmtp.js';
import { eventually, identities, makeService, RecordingAgent, tempStateDir, testLog } from './helpers.js';

const services: ConvosService[] = [];
function track<T extends ConvosService>(s: T): T {
  services.push(s);
  return s;
}
afterEach(async () => {
  await Promise.all(services.splice(0).map((s) => s.stop()));
});

async function creatorSetup(net = new FakeNetwork()) {
  const dir = await tempStateDir('creator');
  const agent = new RecordingAgent('Ada', (m) => !m.text.includes('heard:'));
  const log = testLog();
  const svc = track(makeService(net, dir, agent, log));
  await svc.start();
  const created = await svc.provision({
    requestId: 'req-create',
    agentName: 'Ada',
    instructions: 'be brief',
  });
  return { net, dir, agent, log, svc, created };
}

/** A person (not a runtime) asks to join with an invite, the way the Convos app does. */
async function personJoins(net: FakeNetwork, inviteUrl: string) {
  const person = net.personClient();
  const invite = parseInviteUrl(inviteUrl);
  const dm = (await person.createDm(invite.creatorInboxId)) as FakeDm;
  await dm.sendJoinRequest({ inviteSlug: invite.slug, profile: { name: 'Pat' } });
  const group = await eventually(async () =>
    (await person.listConversations()).find((c) => c.kind === 'group'),
  );
  return { person, dm, group: group as FakeGroup };
}

describe('convos channel on the in-memory XMTP network', () => {
  it('creates a group with Convos metadata and a verifiable invite', async () => {
    const { net, dir, created } = await creatorSetup();
    expect(created.status).toBe('created');
    expect(created.joined).toBe(false);
    expect(created.inviteUrl).toMatch(/^https:\/\/dev\.convos\.org\/v2\?i=/);
    const [record] = await identities(dir);
    expect(record?.conversationId).toBe(created.conversationId);
    const invite = parseInviteUrl(created.inviteUrl ?? '');
    expect(invite.creatorInboxId).toBe(record?.inboxId);
    const group = net.conversations.get(created.conversationId ?? '');
    expect(group?.name).toBe('Ada');
    const meta = decodeAppData(group?.appData ?? '');
    expect(meta.tag).toBe(invite.tag);
    expect(meta.profiles).toEqual([{ inboxId: record?.inboxId, name: 'Ada' }]);
    // The DB lives under the state dir, never the working directory.
    expect(record?.dbPath.startsWith(dir)).toBe(true);
  });

  it('a joiner runtime joins through the invite; messages reach both agents and replies come back', async () => {
    const { net, agent: ada, created } = await creatorSetup();
    const joinerDir = await tempStateDir('joiner');
    const bob = new RecordingAgent('Bob', (m) => !m.text.includes('heard:'));
    const joiner = track(makeService(net, joinerDir, bob));
    await joiner.start();
    const joined = await joiner.provision({
      requestId: 'req-join',
      agentName: 'Bob',
      instructions: '',
      joinUrl: created.inviteUrl ?? '',
    });
    expect(joined).toEqual({
      conversationId: created.conversationId,
      inviteUrl: created.inviteUrl,
      joined: true,
      status: 'joined',
    });
    const [bobRecord] = await identities(joinerDir);
    const group = net.conversations.get(created.conversationId ?? '');
    expect(group?.members.has(bobRecord?.inboxId ?? '')).toBe(true);
    // The joiner wrote its profile; the creator recorded the name from the join request too.
    await eventually(() => decodeAppData(group?.appData ?? '').profiles.some((p) => p.name === 'Bob'));

    const { person, group: personGroup } = await personJoins(net, created.inviteUrl ?? '');
    await personGroup.sendText('hello agents');
    await eventually(() => ada.turns.length >= 1 && bob.turns.length >= 1);
    expect(ada.turns[0]).toMatchObject({
      conversationId: created.conversationId,
      text: 'hello agents',
      senderInboxId: person.inboxId,
      groupName: 'Ada',
    });
    expect(bob.turns[0]).toMatchObject({ conversationId: created.conversationId, text: 'hello agents' });
    const texts = async () => (await personGroup.messages()).map((m) => m.text);
    await eventually(
      async () =>
        (await texts()).includes('Ada heard: hello agents') &&
        (await texts()).includes('Bob heard: hello agents'),
    );
    // Each agent saw the other's reply (and did not answer it), never its own.
    await eventually(() => ada.turns.length === 2 && bob.turns.length === 2);
    expect(ada.turns.map((t) => t.text)).not.toContain('Ada heard: hello agents');
    expect(bob.turns.map((t) => t.text)).not.toContain('Bob heard: hello agents');
  });

  it('provisioning twice (and concurrently) with one requestId creates one group and one identity', async () => {
    const net = new FakeNetwork();
    const dir = await tempStateDir('idem');
    const svc = track(makeService(net, dir, new RecordingAgent('Ada')));
    const req = { requestId: 'same', agentName: 'Ada', instructions: '' };
    const [a, b] = await Promise.all([svc.provision(req), svc.provision(req)]);
    const c = await svc.provision(req);
    expect(a).toEqual(b);
    expect(c).toEqual(a);
    expect(net.groupsCreated).toBe(1);
    expect(await identities(dir)).toHaveLength(1);
    await expect(svc.provision({ ...req, requestId: 'other' })).rejects.toMatchObject({
      httpStatus: 409,
      code: 'already_provisioned',
    });
    // A restarted runtime answers the same request from disk.
    const again = track(makeService(net, dir, new RecordingAgent('Ada')));
    expect(await again.provision(req)).toEqual(a);
    expect(net.groupsCreated).toBe(1);
  });

  it('fails clearly when the network is down, then resumes the same identity', async () => {
    const net = new FakeNetwork();
    net.online = false;
    const dir = await tempStateDir('offline');
    const svc = track(makeService(net, dir, new RecordingAgent('Ada')));
    const req = { requestId: 'r', agentName: 'Ada', instructions: '' };
    const err = await svc.provision(req).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProvisionError);
    expect(err).toMatchObject({ httpStatus: 503, code: 'xmtp_unavailable' });
    const [pending] = await identities(dir);
    net.online = true;
    const ok = await svc.provision(req);
    expect(ok.status).toBe('created');
    const all = await identities(dir);
    expect(all).toHaveLength(1);
    expect(all[0]?.id).toBe(pending?.id);
  });

  it('rejects a join URL that is malformed, expired or for another network before creating anything', async () => {
    const net = new FakeNetwork();
    const dir = await tempStateDir('badjoin');
    const svc = track(makeService(net, dir, new RecordingAgent('Bob')));
    const base = { requestId: 'j', agentName: 'Bob', instructions: '' };
    await expect(svc.provision({ ...base, joinUrl: 'https://example.com/x' })).rejects.toMatchObject({
      httpStatus: 400,
      code: 'invite_unsupported_url',
    });
    await expect(svc.provision({ ...base, joinUrl: 'not-a-slug!' })).rejects.toMatchObject({
      httpStatus: 400,
      code: 'invite_bad_encoding',
    });
    const key = `0x${'33'.repeat(32)}`;
    const inbox = 'ab'.repeat(32);
    const prod = createInvite({
      conversationId: 'g',
      creatorInboxId: inbox,
      walletPrivateKey: key,
      tag: 'T',
      env: 'production',
    });
    await expect(svc.provision({ ...base, joinUrl: prod.url })).rejects.toMatchObject({
      httpStatus: 400,
      code: 'wrong_environment',
    });
    const expired = createInvite({
      conversationId: 'g',
      creatorInboxId: inbox,
      walletPrivateKey: key,
      tag: 'T',
      env: 'dev',
      expiresAt: new Date(Date.now() - 1000),
    });
    await expect(svc.provision({ ...base, joinUrl: expired.url })).rejects.toMatchObject({
      httpStatus: 400,
      code: 'invite_expired',
    });
    expect(net.clientsCreated).toBe(0);
    expect(net.conversations.size).toBe(0);
  });

  it('denies forged, foreign, expired, revoked and malformed join requests; ignores chat', async () => {
    const { net, dir, created } = await creatorSetup();
    const [record] = await identities(dir);
    const wallet = record?.walletKey ?? '';
    const inboxId = record?.inboxId ?? '';
    const conversationId = created.conversationId ?? '';
    const group = net.conversations.get(conversationId);
    const tag = decodeAppData(group?.appData ?? '').tag;
    const otherKey = `0x${'44'.repeat(32)}`;

    const attempts: Array<[string, string | undefined]> = [
      // Signed by someone else but naming our inbox and conversation.
      [
        'forged',
        createInvite({ conversationId, creatorInboxId: inboxId, walletPrivateKey: otherKey, tag, env: 'dev' })
          .slug,
      ],
      // A real invite of another creator.
      [
        'foreign',
        createInvite({
          conversationId: 'x',
          creatorInboxId: 'cd'.repeat(32),
          walletPrivateKey: otherKey,
          tag: 'Other',
          env: 'dev',
        }).slug,
      ],
      [
        'expired',
        createInvite({
          conversationId,
          creatorInboxId: inboxId,
          walletPrivateKey: wallet,
          tag,
          env: 'dev',
          expiresAt: new Date(Date.now() - 60_000),
        }).slug,
      ],
      [
        'revoked tag',
        createInvite({
          conversationId,
          creatorInboxId: inboxId,
          walletPrivateKey: wallet,
          tag: 'OldTag1234',
          env: 'dev',
        }).slug,
      ],
      [
        'other conversation',
        createInvite({
          conversationId: 'not-ours',
          creatorInboxId: inboxId,
          walletPrivateKey: wallet,
          tag,
          env: 'dev',
        }).slug,
      ],
      ['malformed', 'AAAA'],
      ['empty request', undefined],
    ];
    for (const [name, slug] of attempts) {
      const stranger = net.personClient();
      const dm = (await stranger.createDm(inboxId)) as FakeDm;
      await dm.sendRawJoinRequest(slug === undefined ? undefined : { inviteSlug: slug });
      const creatorView = net.conversations.get(dm.id);
      await eventually(() => creatorView?.consent.get(inboxId) === 'denied').catch(() => {
        throw new Error(`${name}: join request was not denied`);
      });
      expect(group?.members.has(stranger.inboxId), name).toBe(false);
    }

    // Plain chat in a DM is not an invite: ignored, not denied.
    const chatty = net.personClient();
    const chatDm = (await chatty.createDm(inboxId)) as FakeDm;
    await chatDm.sendText('hi, who are you?');
    // A valid request on another DM proves the creator has processed its queue meanwhile.
    const { person } = await personJoins(net, created.inviteUrl ?? '');
    expect(group?.members.has(person.inboxId)).toBe(true);
    expect(net.conversations.get(chatDm.id)?.consent.get(inboxId)).toBeUndefined();
    expect(group?.members.has(chatty.inboxId)).toBe(false);
  });

  it('answers waiting_for_acceptance when the creator is away, and joins once it is back', async () => {
    const { net, dir: creatorDir, created, svc: creator } = await creatorSetup();
    await creator.stop();
    const joinerDir = await tempStateDir('joiner-wait');
    const bob = new RecordingAgent('Bob');
    const joiner = track(makeService(net, joinerDir, bob));
    const t0 = Date.now();
    const first = await joiner.provision({
      requestId: 'w',
      agentName: 'Bob',
      instructions: '',
      joinUrl: created.inviteUrl ?? '',
    });
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(first).toEqual({
      conversationId: null,
      inviteUrl: created.inviteUrl,
      joined: false,
      status: 'waiting_for_acceptance',
    });

    // The creator restarts (a new process on the same state dir) and catches up on the DM.
    const back = track(makeService(net, creatorDir, new RecordingAgent('Ada')));
    await back.start();
    await eventually(async () => (await identities(joinerDir))[0]?.status === 'joined', 5000);
    const again = await joiner.provision({
      requestId: 'w',
      agentName: 'Bob',
      instructions: '',
      joinUrl: created.inviteUrl ?? '',
    });
    expect(again).toMatchObject({ conversationId: created.conversationId, joined: true, status: 'joined' });
  });

  it('reconnects its stream after a dropped connection and after a restart', async () => {
    const { net, dir, agent, svc, created } = await creatorSetup();
    const [record] = await identities(dir);
    const { group } = await personJoins(net, created.inviteUrl ?? '');
    await eventually(() => net.openStreamCount(record?.inboxId ?? '') === 1);
    net.breakStreams();
    await eventually(() => net.openStreamCount(record?.inboxId ?? '') === 1);
    await group.sendText('still there?');
    await eventually(() => agent.turns.some((t) => t.text === 'still there?'));

    await svc.stop();
    const agent2 = new RecordingAgent('Ada');
    const restarted = track(makeService(net, dir, agent2));
    await restarted.start();
    expect(restarted.status()).toEqual({ state: 'ready' });
    await eventually(() => net.openStreamCount(record?.inboxId ?? '') >= 1);
    await group.sendText('after restart');
    await eventually(() => agent2.turns.some((t) => t.text === 'after restart'));
  });

  it('ignores groups it was not invited to, and its own messages', async () => {
    const { net, dir, agent, svc, created } = await creatorSetup();
    const [record] = await identities(dir);
    const stranger = net.personClient();
    const spam = await stranger.createGroup([record?.inboxId ?? ''], { groupName: 'spam' });
    await spam.sendText('buy now');
    await svc.sendText(created.conversationId ?? '', 'hello from the agent');
    const { group } = await personJoins(net, created.inviteUrl ?? '');
    await group.sendText('real message');
    await eventually(() => agent.turns.length === 1);
    expect(agent.turns.map((t) => t.text)).toEqual(['real message']);
  });

  it('reports the last activity: a member message or a reply in its conversation, never strangers or itself', async () => {
    const { net, dir, svc, created } = await creatorSetup();
    const [record] = await identities(dir);
    expect(svc.lastActivityAt()).toBeNull();
    // Neither a group it was not invited to nor its own send-back on the stream counts.
    const stranger = net.personClient();
    const spam = await stranger.createGroup([record?.inboxId ?? ''], { groupName: 'spam' });
    await spam.sendText('buy now');
    const { group } = await personJoins(net, created.inviteUrl ?? '');
    await eventually(() => net.openStreamCount(record?.inboxId ?? '') === 1);
    await new Promise((r) => setTimeout(r, 50));
    expect(svc.lastActivityAt()).toBeNull();

    const before = Date.now();
    await group.sendText('hello');
    const first = (await eventually(() => svc.lastActivityAt())) as string;
    expect(Date.parse(first)).toBeGreaterThanOrEqual(before);
    expect(new Date(first).toISOString()).toBe(first);
    // The agent's reply moves it on (the recorder answers "Ada heard: hello").
    await eventually(async () => (await group.messages()).some((m) => m.text === 'Ada heard: hello'));
    await eventually(() => (svc.lastActivityAt() ?? '') >= first);
    // An outbound delivery (OpenClaw's sendText) counts too.
    await new Promise((r) => setTimeout(r, 5));
    const beforeSend = new Date().toISOString();
    await svc.sendText(created.conversationId ?? '', 'a message the agent sends on its own');
    expect((svc.lastActivityAt() ?? '') >= beforeSend).toBe(true);
  });
});
