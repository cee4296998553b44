import { describe, expect, it } from 'vitest';
import type { InboundGroupMessage } from '../src/agent.js';
import { openclawBridge } from '../src/openclaw-bridge.js';
import { testLog } from './helpers.js';

/**
 * The OpenClaw dispatch boundary with a recording stand-in for the plugin runtime: checks that each
 * group maps to its own session, that ingress and context carry the right facts, and that the
 * agent's reply is delivered back through the `reply` callback.
 */

type Rec = Record<string, unknown>;

function fakeRuntime(admission: 'dispatch' | 'drop' = 'dispatch', replies: string[] = ['the reply']) {
  const calls: { route: Rec[]; ingress: Rec[]; context: Rec[]; dispatch: Rec[] } = {
    route: [],
    ingress: [],
    context: [],
    dispatch: [],
  };
  const runtime = {
    channel: {
      routing: {
        resolveAgentRoute: (input: Rec) => {
          calls.route.push(input);
          const peer = input.peer as { id: string };
          return {
            agentId: 'main',
            channel: 'convos',
            accountId: 'default',
            sessionKey: `agent:main:convos:group:${peer.id}`,
            mainSessionKey: 'agent:main:main',
            lastRoutePolicy: 'session',
            matchedBy: 'default',
          };
        },
      },
      inbound: {
        ingress: {
          resolveStable: async (p: Rec) => {
            calls.ingress.push(p);
            return { ingress: { admission } };
          },
        },
        buildContext: (p: Rec) => {
          calls.context.push(p);
          return { built: true, SessionKey: (p.route as Rec).routeSessionKey };
        },
        dispatch: async (plan: Rec) => {
          calls.dispatch.push(plan);
          const delivery = plan.delivery as { deliver: (payload: Rec, info: Rec) => Promise<void> };
          for (const text of replies) await delivery.deliver({ text }, { kind: 'final' });
          return { dispatched: true, admission: { kind: 'dispatch' } };
        },
      },
    },
  };
  return { runtime, calls };
}

const message = (conversationId: string, text = 'hello'): InboundGroupMessage => ({
  conversationId,
  groupName: 'Trip',
  messageId: `m-${conversationId}`,
  senderInboxId: 'ab'.repeat(32),
  text,
  sentAt: new Date('2026-11-25T12:00:00Z'),
});

describe('openclawBridge', () => {
  it('routes each group to its own session and delivers the reply into the group', async () => {
    const { runtime, calls } = fakeRuntime('dispatch', ['the reply', '   ']);
    const bridge = openclawBridge({
      runtime: () => runtime as never,
      config: () => ({}) as never,
      log: testLog(),
    });
    const sent: Array<[string, string]> = [];
    for (const id of ['aa11', 'bb22'])
      await bridge.dispatch(message(id), async (t) => void sent.push([id, t]));

    expect(calls.route.map((r) => r.peer)).toEqual([
      { kind: 'group', id: 'aa11' },
      { kind: 'group', id: 'bb22' },
    ]);
    expect(calls.route[0]).toMatchObject({ channel: 'convos', accountId: 'default' });
    expect(calls.dispatch.map((d) => (d.route as Rec).sessionKey)).toEqual([
      'agent:main:convos:group:aa11',
      'agent:main:convos:group:bb22',
    ]);
    expect(calls.ingress[0]).toMatchObject({
      channelId: 'convos',
      subject: { stableId: 'ab'.repeat(32) },
      conversation: { kind: 'group', id: 'aa11' },
      groupPolicy: 'open',
      contextBinding: { sessionKey: 'agent:main:convos:group:aa11', messageId: 'm-aa11' },
    });
    expect(calls.context[0]).toMatchObject({
      channel: 'convos',
      conversation: { kind: 'group', id: 'aa11', label: 'Trip' },
      reply: { to: 'convos:aa11' },
      message: { rawBody: 'hello', bodyForAgent: 'hello' },
      extra: { CommandInterpretationSuppressed: true },
    });
    expect((calls.context[0]!.message as Rec).body).toContain('hello');
    expect(calls.dispatch[0]?.ctxPayload).toMatchObject({ built: true });
    // Whitespace-only payloads are not sent.
    expect(sent).toEqual([
      ['aa11', 'the reply'],
      ['bb22', 'the reply'],
    ]);
  });

  it('does not dispatch what ingress declines', async () => {
    const { runtime, calls } = fakeRuntime('drop');
    const log = testLog();
    const bridge = openclawBridge({ runtime: () => runtime as never, config: () => ({}) as never, log });
    const sent: string[] = [];
    await bridge.dispatch(message('cc33'), async (t) => void sent.push(t));
    expect(calls.dispatch).toHaveLength(0);
    expect(sent).toEqual([]);
    expect(log.lines.join('\n')).toMatch(/ingress declined/);
  });

  it('retries a turn while OpenClaw state is busy, and gives up on other errors', async () => {
    const { runtime, calls } = fakeRuntime();
    const realDispatch = runtime.channel.inbound.dispatch;
    let failures = 2;
    runtime.channel.inbound.dispatch = async (plan: Rec) => {
      if (failures-- > 0) {
        const err = new Error('another OpenClaw process owns state-lifecycle');
        err.name = 'StateDatabaseCoordinatorContentionError';
        throw err;
      }
      return realDispatch(plan);
    };
    const log = testLog();
    const bridge = openclawBridge({
      runtime: () => runtime as never,
      config: () => ({}) as never,
      log,
      retryDelaysMs: [1, 1, 1],
    });
    const sent: string[] = [];
    await bridge.dispatch(message('dd44'), async (t) => void sent.push(t));
    expect(sent).toEqual(['the reply']);
    expect(log.lines.filter((l) => l.includes('retrying')).length).toBe(2);

    runtime.channel.inbound.dispatch = async () => {
      throw new Error('model exploded');
    };
    await expect(bridge.dispatch(message('ee55'), async () => {})).rejects.toThrow('model exploded');
    expect(calls.dispatch).toHaveLength(1);
  });
});
