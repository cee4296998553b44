// An inbound event's turn and where its reply goes: posted once into the conversation; a failed post is tried
// again and then given up without running the turn a second time; a turn the agent could not take throws (the
// inbound queue retries it); an empty reply posts nothing. And the chat pages' broadcast: every open page of
// every session gets it, none open refuses.
import type { ServerResponse } from 'node:http';
import { describe, expect, it } from 'vitest';
import type { InboundRequest } from '../../contracts/runtime.ts';
import { ChatEvents } from '../src/chat-events.ts';
import { inboundDispatch } from '../src/inbound-delivery.ts';
import { NotDeliveredError } from '../src/scheduler.ts';

const email: InboundRequest = {
  eventId: 'agentmail:evt_7',
  channel: 'email',
  from: 'jane@example.com',
  subject: 'Dinner',
  text: 'Friday at 8?',
  receivedAt: '2026-03-01T10:00:00.000Z',
};

describe('inboundDispatch', () => {
  it('posts the reply of the turn into the conversation once', async () => {
    const turns: string[] = [];
    const posted: Array<[string, string]> = [];
    const dispatch = inboundDispatch({
      turn: async (text) => {
        turns.push(text);
        return '  Jane asks about dinner on Friday at 8.  ';
      },
      post: async (reply, request) => {
        posted.push([reply, request.eventId]);
      },
    });
    await dispatch('[inbound email] …', email);
    expect(turns).toEqual(['[inbound email] …']);
    expect(posted).toEqual([['Jane asks about dinner on Friday at 8.', 'agentmail:evt_7']]);
  });

  it('tries a failed post again, then gives up without a second turn', async () => {
    let turns = 0;
    let posts = 0;
    const logs: string[] = [];
    const dispatch = inboundDispatch({
      turn: async () => {
        turns += 1;
        return 'reply';
      },
      post: async () => {
        posts += 1;
        throw new Error('channel not ready');
      },
      log: (line) => logs.push(line),
      postRetryDelaysMs: [1, 1],
    });
    await dispatch('text', email);
    expect(turns).toBe(1);
    expect(posts).toBe(3);
    expect(logs.join('\n')).toMatch(
      /agentmail:evt_7: the reply could not be posted \(channel not ready\); given up/,
    );

    let flaky = 0;
    const recovered: string[] = [];
    await inboundDispatch({
      turn: async () => 'second',
      post: async (reply) => {
        flaky += 1;
        if (flaky < 2) throw new Error('once');
        recovered.push(reply);
      },
      postRetryDelaysMs: [1, 1],
    })('text', email);
    expect(recovered).toEqual(['second']);
  });

  it('leaves a turn the agent could not take to the queue, and posts nothing for an empty reply', async () => {
    const posted: string[] = [];
    const post = async (reply: string) => {
      posted.push(reply);
    };
    await expect(
      inboundDispatch({
        turn: async () => {
          throw new Error('the gateway is not ready');
        },
        post,
      })('text', email),
    ).rejects.toThrow('the gateway is not ready');
    await inboundDispatch({ turn: async () => '   ', post })('text', email);
    expect(posted).toEqual([]);
  });
});

describe('ChatEvents.publishAll', () => {
  const page = () => {
    const frames: string[] = [];
    const res = {
      writeHead() {},
      write(frame: string) {
        frames.push(frame);
        return true;
      },
      once() {},
      end() {},
    } as unknown as ServerResponse;
    return { res, frames };
  };

  it('reaches every open page of every session, and refuses with none open', () => {
    const events = new ChatEvents(() => {}, 60_000);
    expect(() => events.publishAll({ id: 'e1', text: 'hi', sentAt: 't' })).toThrow(NotDeliveredError);
    const a = page();
    const b = page();
    events.subscribe('session-aaaa', a.res);
    events.subscribe('session-bbbb', b.res);
    events.publishAll({ id: 'e1', text: 'an email arrived', sentAt: 't' });
    for (const p of [a, b]) {
      expect(p.frames.at(-1)).toBe(
        'id: e1\nevent: agent-message\ndata: {"id":"e1","text":"an email arrived","sentAt":"t"}\n\n',
      );
    }
    events.closeAll();
  });
});
