// How a conversation ends for the agent, on the in-memory XMTP network: removed by a member, ended by
// Convos' explode (at once or scheduled), removed while offline, or left through its own tool. Each is
// recorded once, persisted, reported by the service (what /convos/status tells the control server) and
// ends the agent's turns there.
import { afterEach, describe, expect, it } from 'vitest';
import { parseInviteUrl } from '../../../src/invite/index.js';
import { isConvosTurn } from '../src/leave-tool.js';
import type { ConvosService } from '../src/service.js';
import { FakeClient, type FakeDm, type FakeGroup, FakeNetwork } from './fake-xmtp.js';
import { eventually, identities, makeService, RecordingAgent, tempStateDir } from './helpers.js';

const services: ConvosService[] = [];
afterEach(async () => {
  await Promise.all(services.splice(0).map((s) => s.stop()));
});

/** A person's group with the agent in it: the agent (a joiner runtime) joined a creator runtime's group. */
async function agentInAGroup() {
  const net = new FakeNetwork();
  const creatorDir = await tempStateDir('exit-creator');
  const creator = makeService(net, creatorDir, new RecordingAgent('Host', () => false));
  services.push(creator);
  const created = await creator.provision({ requestId: 'host', agentName: 'Host', instructions: '' });
  const dir = await tempStateDir('exit-agent');
  const agent = new RecordingAgent('Bob');
  const svc = makeService(net, dir, agent);
  services.push(svc);
  await svc.provision({
    requestId: 'claim-1',
    agentName: 'Bob',
    instructions: '',
    joinUrl: created.inviteUrl ?? '',
  });
  const [record] = await identities(dir);
  const bobInbox = record?.inboxId ?? '';
  // A person joins too, the way the Convos app does.
  const person = net.personClient();
  const invite = parseInviteUrl(created.inviteUrl ?? '');
  await ((await person.createDm(invite.creatorInboxId)) as FakeDm).sendJoinRequest({
    inviteSlug: invite.slug,
  });
  const group = (await eventually(async () =>
    (await person.listConversations()).find((c) => c.kind === 'group'),
  )) as FakeGroup;
  // The creator's own view of the group (it may explode it).
  const hostView = (await new FakeClient(net, invite.creatorInboxId).getConversationById(
    created.conversationId ?? '',
  )) as FakeGroup;
  await group.sendText('hello');
  await eventually(() => agent.turns.length === 1);
  return { net, dir, svc, agent, bobInbox, group, hostView, conversationId: created.conversationId };
}

const exitOf = async (dir: string) => (await identities(dir))[0]?.exit?.reason;
/** The exit, once it is on disk (the service reports it as it saves it). */
const savedExit = (dir: string) => eventually(() => exitOf(dir));

describe('the conversation ends for the agent', () => {
  it('removed by a member: recorded once as removed_from_conversation, no more turns', async () => {
    const { net, svc, agent, dir, bobInbox, group, conversationId } = await agentInAGroup();
    expect(svc.conversation()).toEqual({
      requestId: 'claim-1',
      conversationId,
      status: 'joined',
      exit: null,
    });
    await group.removeMembers([bobInbox]);
    await eventually(() => svc.conversation()?.exit === 'removed_from_conversation');
    expect(await savedExit(dir)).toBe('removed_from_conversation');
    await group.sendText('are you still there?');
    await new Promise((r) => setTimeout(r, 50));
    expect(agent.turns.map((t) => t.text)).toEqual(['hello']);
    expect(await savedExit(dir)).toBe('removed_from_conversation');
    // A restarted channel stays silent and keeps the reason.
    await svc.stop();
    const again = makeService(net, dir, agent);
    services.push(again);
    await again.start();
    expect(again.conversation()?.exit).toBe('removed_from_conversation');
  });

  it("ended by Convos' explode: conversation_ended, not removed", async () => {
    const { svc, dir, hostView } = await agentInAGroup();
    await hostView.explode();
    await eventually(() => svc.conversation()?.exit === 'conversation_ended');
    expect(await savedExit(dir)).toBe('conversation_ended');
  });

  it('a scheduled explode ends it at its time, also for a channel restarted meanwhile', async () => {
    const { net, svc, dir, agent, hostView } = await agentInAGroup();
    await hostView.sendExplode(new Date(Date.now() + 400));
    await eventually(async () => (await identities(dir))[0]?.endsAt);
    expect(svc.conversation()?.exit).toBeNull();
    await svc.stop();
    const again = makeService(net, dir, agent);
    services.push(again);
    await again.start();
    expect(again.conversation()?.exit).toBeNull();
    await eventually(() => again.conversation()?.exit === 'conversation_ended', 3000);
  });

  it('removed while the channel was down: found at the next connect', async () => {
    const { net, svc, dir, agent, bobInbox, group } = await agentInAGroup();
    await svc.stop();
    await group.removeMembers([bobInbox]);
    expect(await exitOf(dir)).toBeUndefined();
    const again = makeService(net, dir, agent);
    services.push(again);
    await again.start();
    await eventually(() => again.conversation()?.exit === 'removed_from_conversation');
  });

  it('the agent leaves when asked: it is out of the group, and the exit is left_conversation', async () => {
    const { svc, dir, agent, bobInbox, group } = await agentInAGroup();
    expect(await svc.leave()).toEqual({ left: true });
    expect(await group.memberInboxIds()).not.toContain(bobInbox);
    expect(svc.conversation()?.exit).toBe('left_conversation');
    expect(await savedExit(dir)).toBe('left_conversation');
    // Its own leave coming back on the stream changes nothing.
    await new Promise((r) => setTimeout(r, 50));
    expect(svc.conversation()?.exit).toBe('left_conversation');
    await group.sendText('bye');
    await new Promise((r) => setTimeout(r, 50));
    expect(agent.turns.map((t) => t.text)).toEqual(['hello']);
  });

  it('another member leaving or being removed is not the end of the agent', async () => {
    const { svc, agent, net, group, hostView } = await agentInAGroup();
    await group.leave();
    const late = net.personClient();
    await hostView.addMembers([late.inboxId]);
    await hostView.removeMembers([late.inboxId]);
    await hostView.sendText('still here');
    await eventually(() => agent.turns.some((t) => t.text === 'still here'));
    expect(svc.conversation()?.exit).toBeNull();
  });

  it('offers leave_conversation only in Convos turns', () => {
    expect(isConvosTurn({ messageChannel: 'convos' }, 'convos')).toBe(true);
    expect(isConvosTurn({ sessionKey: 'agent:main:convos:group:abcd' }, 'convos')).toBe(true);
    expect(
      isConvosTurn({ messageChannel: 'webchat', sessionKey: 'agent:main:inbound-events' }, 'convos'),
    ).toBe(false);
    expect(isConvosTurn({}, 'convos')).toBe(false);
  });
});
