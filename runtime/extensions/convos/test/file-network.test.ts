import { describe, expect, it } from 'vitest';
import { parseInviteUrl } from '../../../src/invite/index.js';
import { ConvosService } from '../src/service.js';
import { FileNetwork } from '../src/xmtp/file-network.js';
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
});
