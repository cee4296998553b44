// The agent's per-conversation queue on the in-memory XMTP network: a flood while a turn is in progress
// keeps at most MAX_PENDING_TURNS_PER_CONVERSATION waiting (the oldest are dropped, logged without their
// text), and one huge message reaches the agent cut to MAX_INBOUND_MESSAGE_CHARS.
import { afterEach, describe, expect, it } from 'vitest';
import { parseInviteUrl } from '../../../src/invite/index.js';
import type { AgentBridge, InboundGroupMessage } from '../src/agent.js';
import {
  capInboundText,
  MAX_INBOUND_MESSAGE_CHARS,
  MAX_PENDING_TURNS_PER_CONVERSATION,
} from '../src/identity-runner.js';
import type { ConvosService } from '../src/service.js';
import { type FakeDm, type FakeGroup, FakeNetwork } from './fake-xmtp.js';
import { eventually, identities, makeService, tempStateDir, testLog } from './helpers.js';

const services: ConvosService[] = [];
const agents: GatedAgent[] = [];
afterEach(async () => {
  // A turn still blocked (a failed test) would keep stop() waiting.
  for (const a of agents.splice(0)) a.release();
  await Promise.all(services.splice(0).map((s) => s.stop()));
});

/** An agent whose turns wait until the test lets them finish: a slow model. */
class GatedAgent implements AgentBridge {
  readonly turns: InboundGroupMessage[] = [];
  private open = false;
  private waiting: Array<() => void> = [];

  async dispatch(m: InboundGroupMessage, reply: (text: string) => Promise<void>): Promise<void> {
    this.turns.push(m);
    if (!this.open) await new Promise<void>((r) => this.waiting.push(r));
    await reply(`answer ${this.turns.length}`);
  }

  release(): void {
    this.open = true;
    for (const w of this.waiting.splice(0)) w();
  }
}

async function setup() {
  const net = new FakeNetwork();
  const dir = await tempStateDir('queue');
  const agent = new GatedAgent();
  agents.push(agent);
  const log = testLog();
  const svc = makeService(net, dir, agent, log);
  services.push(svc);
  await svc.start();
  const created = await svc.provision({ requestId: 'req-queue', agentName: 'Ada', instructions: '' });
  const person = net.personClient();
  const invite = parseInviteUrl(created.inviteUrl ?? '');
  const dm = (await person.createDm(invite.creatorInboxId)) as FakeDm;
  await dm.sendJoinRequest({ inviteSlug: invite.slug, profile: { name: 'Pat' } });
  const group = (await eventually(async () =>
    (await person.listConversations()).find((c) => c.kind === 'group'),
  )) as FakeGroup;
  const [record] = await identities(dir);
  await eventually(() => net.openStreamCount(record?.inboxId ?? '') === 1);
  return { net, agent, log, svc, group };
}

describe('per-conversation turn queue', () => {
  it(`keeps at most ${MAX_PENDING_TURNS_PER_CONVERSATION} messages waiting behind a slow turn and drops the oldest`, async () => {
    const { agent, log, svc, group } = await setup();
    await group.sendText('first');
    await eventually(() => agent.turns.length === 1); // in progress, blocked
    const flood = 30;
    for (let i = 1; i <= flood; i++) await group.sendText(`secret-flood-${i}`);
    const dropped = flood - MAX_PENDING_TURNS_PER_CONVERSATION;
    await eventually(() => {
      const s = svc.turnStats();
      return s.pending === MAX_PENDING_TURNS_PER_CONVERSATION && s.dropped === dropped;
    });
    // Still one turn at a time: nothing else reached the agent meanwhile.
    expect(agent.turns).toHaveLength(1);

    agent.release();
    await eventually(
      () => agent.turns.length === 1 + MAX_PENDING_TURNS_PER_CONVERSATION && svc.turnStats().pending === 0,
    );
    // The newest twenty, in order; the ten oldest of the flood never reached the agent.
    expect(agent.turns.map((t) => t.text)).toEqual([
      'first',
      ...Array.from(
        { length: MAX_PENDING_TURNS_PER_CONVERSATION },
        (_, i) => `secret-flood-${dropped + 1 + i}`,
      ),
    ]);
    // Every answered turn was replied to.
    await eventually(
      async () => (await group.messages()).filter((m) => m.text?.startsWith('answer ')).length === 21,
    );
    // Logged: the drop (once when it started, a summary when the queue ran empty), never a message's text.
    const drops = log.lines.filter((l) => l.includes('dropping the oldest'));
    expect(drops).toHaveLength(1);
    expect(log.lines.some((l) => l.includes(`dropped ${dropped} waiting message(s)`))).toBe(true);
    expect(log.lines.join('\n')).not.toContain('secret-flood');

    // After the flood the queue is empty again and new messages go straight through.
    await group.sendText('after');
    await eventually(() => agent.turns.at(-1)?.text === 'after');
    expect(svc.turnStats()).toEqual({ pending: 0, dropped });
  });

  it(`hands a huge message to the agent cut to ${MAX_INBOUND_MESSAGE_CHARS} characters, with a note`, async () => {
    const { agent, log, group } = await setup();
    agent.release();
    const huge = `HEAD${'x'.repeat(50_000)}TAIL`;
    await group.sendText(huge);
    const turn = (await eventually(() => agent.turns[0])) as InboundGroupMessage;
    expect(turn.text.startsWith(`HEAD${'x'.repeat(MAX_INBOUND_MESSAGE_CHARS - 4)}\n[message cut: `)).toBe(
      true,
    );
    expect(turn.text).not.toContain('TAIL');
    expect(turn.text.length).toBeLessThan(MAX_INBOUND_MESSAGE_CHARS + 60);
    expect(log.lines.some((l) => l.includes(`cut a message of ${huge.length} characters`))).toBe(true);
    expect(log.lines.join('\n')).not.toContain('HEAD');
    // A message at the limit is untouched.
    const exact = 'y'.repeat(MAX_INBOUND_MESSAGE_CHARS);
    await group.sendText(exact);
    await eventually(() => agent.turns[1]);
    expect(agent.turns[1]?.text).toBe(exact);
  });

  it('never cuts inside a surrogate pair', () => {
    const text = `${'a'.repeat(MAX_INBOUND_MESSAGE_CHARS - 1)}😀 and more`;
    const cut = capInboundText(text);
    expect(cut.startsWith(`${'a'.repeat(MAX_INBOUND_MESSAGE_CHARS - 1)}\n[message cut: `)).toBe(true);
    expect(cut).not.toMatch(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])/);
    expect(capInboundText('short')).toBe('short');
  });
});
