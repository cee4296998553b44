// The schedule tools end to end without a gateway: the real instance-tools plugin's tools (bound to a turn's
// session) → the runtime's loopback outbound server → the scheduler → at the due time, the chat page's
// server-sent event stream of that session (the control server's GET /chat/<secret>/events). Also: the
// conversation scoping of list and cancel, the sentences a refusal becomes, and the stream's edges.
import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import instanceTools from '../extensions/instance-tools/index.ts';
import { ActivityClock } from '../src/activity.ts';
import { ChatEvents, MAX_STREAMS_PER_SESSION } from '../src/chat-events.ts';
import { chatPageHtml } from '../src/chat-page.ts';
import { createControlServer } from '../src/control-server.ts';
import { createOutboundServer } from '../src/outbound.ts';
import { NotDeliveredError, Scheduler } from '../src/scheduler.ts';
import { readEvents } from './support/event-stream.ts';

const GATEWAY_TOKEN = 'gateway-token-abcdefghijklmnopqrstuvwxyz';
const CHAT_SECRET = 'chat-secret-abcdefghijklmnopqrstuvwxyz012345';
const SESSION = 'tab-session-0001';
const GROUP_KEY = 'agent:main:convos:group:00112233445566778899aabbccddeeff';

let dir: string;
let scheduler: Scheduler;
let events: ChatEvents;
let outbound: Server;
let control: Server;
let outboundUrl: string;
let chatBase: string;
const delivered: Array<{ conversation: string; text: string }> = [];

async function listen(server: Server): Promise<string> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'schedule-tools-'));
  scheduler = new Scheduler({
    file: path.join(dir, 'scheduled.json'),
    limits: { maxPending: 5, minGapMs: 200, maxAheadMs: 24 * 3600_000 },
    retryDelaysMs: [60_000],
    deliver: async (conversation, text, message) => {
      if (!conversation.startsWith('chat:')) throw new NotDeliveredError('no channel here', true);
      events.publish(conversation.slice(5), { id: message.id, text, sentAt: new Date().toISOString() });
      delivered.push({ conversation, text });
    },
  });
  events = new ChatEvents((session) => scheduler.retryNow(`chat:${session}`));
  outbound = createOutboundServer({
    gatewayToken: GATEWAY_TOKEN,
    instanceId: 'inst-1',
    instanceToken: 'instance-token-0123456789abcdef',
    poolApiUrl: null,
    channels: { email: false, sms: false },
    scheduler,
  });
  outboundUrl = await listen(outbound);
  control = createControlServer({
    instanceToken: 'instance-token-0123456789abcdef',
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
    selfDestruct: async () => ({ status: 500, body: {} }),
    chatSecret: CHAT_SECRET,
    chat: { gatewayUrl: 'http://127.0.0.1:1', gatewayToken: 'unused', agentName: () => 'Ada' },
    chatEvents: events,
    recordActivity: () => new ActivityClock(null).record(),
  });
  chatBase = `${await listen(control)}/chat/${CHAT_SECRET}`;
  scheduler.start();
});

afterAll(async () => {
  scheduler.stop();
  events.closeAll();
  for (const s of [outbound, control]) {
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }
  rmSync(dir, { recursive: true, force: true });
});

type Tool = { name: string; execute(id: string, params: unknown): Promise<{ details: { result: string } }> };

/** The plugin's tools as OpenClaw would get them for a turn of this session. */
function toolsFor(sessionKey: string): Map<string, Tool> {
  const found = new Map<string, Tool>();
  const saved = { ...process.env };
  Object.assign(process.env, { CONVOS_OUTBOUND_URL: outboundUrl, OPENCLAW_GATEWAY_TOKEN: GATEWAY_TOKEN });
  try {
    instanceTools.register({
      registerTool: (tool: unknown, opts?: { names?: string[] }) => {
        if (typeof tool !== 'function') return;
        const made = (tool as (ctx: unknown) => Tool | null)({ sessionKey });
        if (made) found.set(made.name, made);
        else for (const n of opts?.names ?? []) found.delete(n);
      },
    } as never);
  } finally {
    process.env.CONVOS_OUTBOUND_URL = saved.CONVOS_OUTBOUND_URL;
    process.env.OPENCLAW_GATEWAY_TOKEN = saved.OPENCLAW_GATEWAY_TOKEN;
    if (saved.CONVOS_OUTBOUND_URL === undefined) delete process.env.CONVOS_OUTBOUND_URL;
    if (saved.OPENCLAW_GATEWAY_TOKEN === undefined) delete process.env.OPENCLAW_GATEWAY_TOKEN;
  }
  return found;
}

const run = async (tools: Map<string, Tool>, name: string, params: unknown = {}) => {
  const tool = tools.get(name);
  if (!tool) throw new Error(`no tool ${name}`);
  return (await tool.execute('call-1', params)).details.result;
};

interface Stream {
  status: number;
  events: Array<{ event: string; data: { id: string; text: string; sentAt: string }; at: number }>;
  close(): void;
}

/** Opens the chat page's event stream the way EventSource does, collecting its `agent-message` events. */
async function openStream(session: string, secret = CHAT_SECRET): Promise<Stream> {
  const controller = new AbortController();
  const res = await fetch(`${chatBase.replace(CHAT_SECRET, secret)}/events?session=${session}`, {
    headers: { accept: 'text/event-stream' },
    signal: controller.signal,
  });
  const stream: Stream = { status: res.status, events: [], close: () => controller.abort() };
  if (res.status !== 200 || !res.body) {
    await res.body?.cancel();
    return stream;
  }
  expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
  readEvents(res.body, (e) => stream.events.push(e as Stream['events'][number]));
  return stream;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('the schedule tools and the chat page stream', () => {
  it('a chat tab schedules a message; at its time it arrives on that tab’s stream only', async () => {
    const mine = await openStream(SESSION);
    const other = await openStream('tab-session-0002');
    expect(mine.status).toBe(200);
    const tools = toolsFor(`agent:main:openai-user:chat-${SESSION}`);
    const answer = await run(tools, 'schedule_message', { text: 'Time to stretch!', in_minutes: 0.005 });
    const match = /^Scheduled (sch_[0-9a-f]{16}): it will be posted here at (\S+) \(UTC\)\.$/.exec(answer);
    expect(match, answer).not.toBeNull();
    const due = Date.parse(match?.[2] ?? '');
    expect(await run(tools, 'list_scheduled')).toContain('Time to stretch!');
    await sleep(600);
    expect(mine.events.map((e) => [e.event, e.data.text, e.data.id])).toEqual([
      ['agent-message', 'Time to stretch!', match?.[1]],
    ]);
    expect(Math.abs((mine.events[0]?.at ?? 0) - due)).toBeLessThan(150);
    expect(other.events).toEqual([]);
    expect(await run(tools, 'list_scheduled')).toBe('Nothing is scheduled in this conversation.');
    mine.close();
    other.close();
  });

  it('list and cancel see only the conversation of the turn', async () => {
    const chat = toolsFor('agent:main:openai-user:chat-tab-session-0003');
    const group = toolsFor(GROUP_KEY);
    const answer = await run(chat, 'schedule_message', { text: 'Only here', in_minutes: 60 });
    const id = /(sch_[0-9a-f]{16})/.exec(answer)?.[1];
    expect(await run(group, 'list_scheduled')).toBe('Nothing is scheduled in this conversation.');
    expect(await run(group, 'cancel_scheduled', { id })).toBe(
      'Not cancelled: no pending scheduled message with this id here.',
    );
    expect(await run(chat, 'cancel_scheduled', { id })).toMatch(/^Cancelled sch_/);
    expect(await run(chat, 'list_scheduled')).toBe('Nothing is scheduled in this conversation.');
    // Turns that are not a conversation (the runtime's inbound email session) get no schedule tools.
    expect(toolsFor('agent:main:openai-user:inbound-events').size).toBe(0);
  });

  it('refusals are sentences the agent can relay; the model cannot pick another conversation', async () => {
    const chat = toolsFor('agent:main:openai-user:chat-tab-session-0004');
    expect(await run(chat, 'schedule_message', { text: 'soon', in_minutes: 0.001 })).toBe(
      'Not scheduled: a message must be at least 200 ms ahead.',
    );
    expect(
      await run(chat, 'schedule_message', { text: 'x', in_minutes: 60, at: '2030-01-01T00:00:00Z' }),
    ).toBe('Not scheduled: give either at (an ISO time with a zone) or in_minutes, not both.');
    // A conversation in the arguments is not the tool's to choose: the message stays in the turn's own.
    await run(chat, 'schedule_message', {
      text: 'Stays here',
      in_minutes: 30,
      conversation: 'convos:00112233445566778899aabbccddeeff',
    });
    expect(await run(chat, 'list_scheduled')).toContain('Stays here');
    expect(await run(toolsFor(GROUP_KEY), 'list_scheduled')).toBe(
      'Nothing is scheduled in this conversation.',
    );
  });

  it('a message due while no page is open waits, and arrives as soon as one connects', async () => {
    const chat = toolsFor('agent:main:openai-user:chat-tab-session-0005');
    await run(chat, 'schedule_message', { text: 'Are you back?', in_minutes: 0.004 });
    await sleep(400);
    expect(delivered.filter((d) => d.text === 'Are you back?')).toEqual([]);
    const page = await openStream('tab-session-0005');
    await sleep(100);
    expect(page.events.map((e) => e.data.text)).toEqual(['Are you back?']);
    page.close();
  });

  it('the stream needs the chat secret and a session, and is bounded per session', async () => {
    expect((await openStream(SESSION, 'chat-secret-wrong-abcdefghijklmnopqrstuvwxyz01')).status).toBe(404);
    expect((await openStream('bad')).status).toBe(400);
    const open: Stream[] = [];
    for (let i = 0; i < MAX_STREAMS_PER_SESSION; i++) open.push(await openStream('tab-session-0006'));
    expect(open.every((s) => s.status === 200)).toBe(true);
    expect((await openStream('tab-session-0006')).status).toBe(429);
    for (const s of open) s.close();
  });

  it('the chat page listens on its session’s stream and shows what arrives as the agent’s message', () => {
    // The page's own script, run against a minimal DOM and EventSource stand-in.
    const script = /<script>([\s\S]*)<\/script>/.exec(chatPageHtml('Ada'))?.[1] ?? '';
    type Node = { className: string; textContent: string };
    const shown: Node[] = [];
    const sources: Array<{ url: string; listeners: Record<string, (e: { data: string }) => void> }> = [];
    class FakeEventSource {
      listeners: Record<string, (e: { data: string }) => void> = {};
      constructor(readonly url: string) {
        sources.push(this);
      }
      addEventListener(type: string, fn: (e: { data: string }) => void) {
        this.listeners[type] = fn;
      }
    }
    const element = (id: string) => ({
      id,
      value: '',
      scrollTop: 0,
      scrollHeight: 0,
      appendChild: (n: Node) => shown.push(n),
      addEventListener: () => {},
    });
    const document = {
      getElementById: element,
      createElement: () => ({ className: '', textContent: '' }),
    };
    const storage = new Map<string, string>([['chat-session', SESSION]]);
    new Function('document', 'sessionStorage', 'crypto', 'location', 'EventSource', 'fetch', script)(
      document,
      {
        getItem: (k: string) => storage.get(k) ?? null,
        setItem: (k: string, v: string) => storage.set(k, v),
      },
      { randomUUID: () => 'unused' },
      { pathname: `/chat/${CHAT_SECRET}/` },
      FakeEventSource,
      () => Promise.reject(new Error('unused')),
    );
    expect(sources.map((x) => x.url)).toEqual([`/chat/${CHAT_SECRET}/events?session=${SESSION}`]);
    sources[0]?.listeners['agent-message']?.({
      data: JSON.stringify({ id: 'sch_1', text: 'Time to stretch!', sentAt: '' }),
    });
    expect(shown).toEqual([{ className: 'm agent', textContent: 'Time to stretch!' }]);
  });

  it('the outbound schedule routes need the gateway token', async () => {
    const res = await fetch(`${outboundUrl}/schedule`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ conversation: 'chat:tab-session-0007', text: 'x', inMinutes: 5 }),
    });
    expect(res.status).toBe(401);
  });
});
