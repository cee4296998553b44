import { describe, expect, it } from 'vitest';
import { parseInviteUrl } from '../../../src/invite/index.js';
import { ConvosService } from '../src/service.js';
import { type FileGroup, FileNetwork } from '../src/xmtp/file-network.js';
import type { XmtpMessage } from '../src/xmtp/types.js';
import { eventually, RecordingAgent, tempStateDir, testLog } from './helpers.js';

describe('file-backed test network (the stand-in used to drive a real gateway)', () => {
  it('carries a join and a conversation between a runtime and a person', async () => {
    const net = new FileNetwork(await tempStateDir('filenet'));
    const agent = new RecordingAgent('Ada');
    const svc = new ConvosService({
      stateDir: await tempStateDir('filenet-state'),
      env: 'dev',
      factory: net.factory(),
      agent,
      log: testLog(),
      backoff: { initialMs: 10, maxMs: 50 },
    });
    try {
      const created = await svc.provision({ requestId: 'r', agentName: 'Ada', instructions: '' });
      const invite = parseInviteUrl(created.inviteUrl ?? '');
      const person = net.client();
      const dm = await person.createDm(invite.creatorInboxId);
      await dm.sendJoinRequest({ inviteSlug: invite.slug, profile: { name: 'Pat' } });
      const group = await eventually(
        async () => (await person.listConversations()).find((c) => c.kind === 'group'),
        5000,
      );
      expect(group?.id).toBe(created.conversationId);
      await group?.sendText('hello');
      await eventually(
        async () => (await group?.messages())?.some((m) => m.text === 'Ada heard: hello'),
        5000,
      );
      expect(agent.turns.map((t) => t.text)).toEqual(['hello']);
    } finally {
      await svc.stop();
    }
  });

  it('a removed member gets the message that removed it, then nothing more; the group stays, inactive', async () => {
    const net = new FileNetwork(await tempStateDir('filenet-remove'));
    const host = net.client();
    const member = net.client();
    const group = (await host.createGroup([member.inboxId], { groupName: 'G', appData: '' })) as FileGroup;
    const stream = await member.streamAllMessages();
    const seen: XmtpMessage[] = [];
    const reading = (async () => {
      for await (const m of stream) seen.push(m);
    })();
    await group.sendText('before');
    await group.removeMembers([member.inboxId]);
    await group.sendText('after');
    await eventually(() => seen.some((m) => m.groupUpdated), 5000);
    await new Promise((r) => setTimeout(r, 300)); // a few polls: nothing after the removal arrives
    await stream.end();
    await reading;
    expect(seen.map((m) => m.text ?? m.groupUpdated)).toEqual([
      'before',
      { removedInboxIds: [member.inboxId], leftInboxIds: [] },
    ]);
    const view = (await member.getConversationById(group.id)) as FileGroup;
    expect(view.isActive()).toBe(false);
    await expect(view.sendText('still here?')).rejects.toThrow(/not a member/);
    expect(await group.memberInboxIds()).toEqual([host.inboxId]);
  });
});
