// Issue 12.3's test against the real thing: the runtime process with a real OpenClaw gateway (XMTP_ENV=off,
// so the conversation is the local chat page) and a stand-in model that, asked for a reminder, calls
// schedule_message for one minute out (the default limits: a real minute). The runtime is then restarted on
// the same STATE_DIR, the page's event stream reconnects, and the reminder arrives on it at its time
// (within 2 s), once. Then, on the same runtime, an inbound email (POST /pool/inbound, as the pool delivers
// it): the agent's turn sees it, and its reply reaches the conversation (every open page's stream), once.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadOrCreateSecret } from '../src/secrets.ts';
import { readEvents } from './support/event-stream.ts';
import { type ModelServer, startModelServer } from './support/model-server.ts';
import {
  freePort,
  type RuntimeProcess,
  startRuntimeProcess,
  waitForHealth,
} from './support/runtime-process.ts';

const TOKEN = 'reminders-e2e-token-0123456789';
const SESSION = 'reminder-tab-0001';
const TRIGGER = 'REMIND-ME-IN-A-MINUTE';
const REMINDER = 'Reminder: take the bread out of the oven.';
const BOOT_TIMEOUT = 420_000;
const INBOUND_SUBJECT = 'Dinner on Friday?';
const INBOUND_REPLY = 'Jane emailed to ask about dinner on Friday at 8.';

let model: ModelServer;
let runtime: RuntimeProcess;
let stateDir: string;
let env: Record<string, string>;

async function boot(): Promise<void> {
  runtime = startRuntimeProcess(env);
  await waitForHealth(runtime.url, TOKEN, (b) => b.ready === true, BOOT_TIMEOUT).catch((err: Error) => {
    throw new Error(`${err.message}\n--- runtime output ---\n${runtime.output()}`);
  });
}

interface Received {
  text: string;
  id: string;
  at: number;
}

/** Connects the page's event stream (retrying until the control server answers) and collects messages. */
async function listen(eventsUrl: string, received: Received[], timeoutMs: number): Promise<() => void> {
  const controller = new AbortController();
  const deadline = Date.now() + timeoutMs;
  let res: Response | null = null;
  while (!res) {
    try {
      const r = await fetch(eventsUrl, { signal: controller.signal });
      if (r.status !== 200 || !r.body) throw new Error(`events answered ${r.status}`);
      res = r;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const body = res.body;
  if (!body) throw new Error('no event stream');
  readEvents(body, (e) => {
    if (e.event !== 'agent-message') return;
    const { text, id } = e.data as { text: string; id: string };
    received.push({ text, id, at: e.at });
  });
  return () => controller.abort();
}

beforeAll(async () => {
  model = await startModelServer((user, toolResult) => {
    if (toolResult !== null) return `Done. ${toolResult}`;
    if (user.includes('[inbound email]') && user.includes(INBOUND_SUBJECT)) return INBOUND_REPLY;
    // OpenClaw defers plugin tools behind Tool Search: a model calls them through `tool_call`.
    if (user.includes(TRIGGER))
      return {
        toolCall: {
          name: 'tool_call',
          arguments: { id: 'schedule_message', args: { text: REMINDER, in_minutes: 1 } },
        },
      };
    return 'Hello.';
  });
  stateDir = mkdtempSync(path.join(tmpdir(), 'runtime-reminders-'));
  env = {
    INSTANCE_ID: 'inst-reminders',
    INSTANCE_TOKEN: TOKEN,
    PORT: String(await freePort()),
    STATE_DIR: stateDir,
    XMTP_ENV: 'off',
    MODEL_BASE_URL: model.url,
    MODEL: 'stand-in',
  };
  await boot();
}, BOOT_TIMEOUT + 30_000);

afterAll(async () => {
  await runtime?.stop().catch(() => undefined);
  await model?.close();
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
});

describe('a reminder one minute out', () => {
  it(
    'arrives in the conversation on time, once, with a runtime restart in between',
    async () => {
      const provisioned = await fetch(`${runtime.url}/pool/provision`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ requestId: 'claim-reminders', agentName: 'Rosemary', instructions: '' }),
      });
      expect(provisioned.status).toBe(200);
      const { chatUrl } = (await provisioned.json()) as { chatUrl: string };

      const asked = await fetch(`${chatUrl}/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ message: `${TRIGGER} please`, session: SESSION }),
      });
      expect(asked.status).toBe(200);
      const { reply } = (await asked.json()) as { reply: string };
      // The stand-in echoes the tool's answer: the runtime scheduled it, for this tab, a minute out.
      const scheduled = /Scheduled (sch_[0-9a-f]{16}): it will be posted here at (\S+) \(UTC\)/.exec(reply);
      expect(scheduled, `${reply}\n--- runtime output ---\n${runtime.output()}`).not.toBeNull();
      const [, id, dueIso] = scheduled as unknown as [string, string, string];
      const due = Date.parse(dueIso);
      expect(due - Date.now()).toBeGreaterThan(30_000);
      expect(due - Date.now()).toBeLessThanOrEqual(60_000);
      const stored = JSON.parse(readFileSync(path.join(stateDir, 'scheduled.json'), 'utf8'));
      expect(stored).toMatchObject([
        { id, conversation: `chat:${SESSION}`, text: REMINDER, state: 'pending' },
      ]);

      // Restart the runtime (gateway and all) on the same state.
      const stopped = await runtime.stop();
      expect(stopped.leftovers).toEqual([]);
      const restartedAt = Date.now();
      runtime = startRuntimeProcess(env);
      const received: Received[] = [];
      const close = await listen(`${chatUrl}/events?session=${SESSION}`, received, 30_000);
      expect(Date.now()).toBeLessThan(due);
      try {
        const deadline = due + 10_000;
        while (!received.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
        expect(received, runtime.output()).toHaveLength(1);
        const [got] = received as [Received];
        expect(got).toMatchObject({ text: REMINDER, id });
        console.log(
          `restart at due-${due - restartedAt} ms; reminder arrived ${got.at - due} ms after its time`,
        );
        expect(Math.abs(got.at - due)).toBeLessThanOrEqual(2_000);
        // Once: nothing more comes, and the record says sent.
        await new Promise((r) => setTimeout(r, 3_000));
        expect(received).toHaveLength(1);
        const after = JSON.parse(readFileSync(path.join(stateDir, 'scheduled.json'), 'utf8'));
        expect(after).toMatchObject([{ id, state: 'sent', attempts: 1 }]);
      } finally {
        close();
      }
      // The restarted instance comes up normally.
      await waitForHealth(runtime.url, TOKEN, (b) => b.ready === true, BOOT_TIMEOUT);
    },
    2 * BOOT_TIMEOUT,
  );
});

describe('an inbound email', () => {
  it('reaches the agent as a turn, and its reply reaches the conversation once', async () => {
    await waitForHealth(runtime.url, TOKEN, (b) => b.ready === true, BOOT_TIMEOUT);
    const received: Received[] = [];
    const close = await listen(
      `${runtime.url}/chat/${loadOrCreateSecret(stateDir, 'chat-secret')}/events?session=inbound-tab-01`,
      received,
      30_000,
    );
    try {
      const send = () =>
        fetch(`${runtime.url}/pool/inbound`, {
          method: 'POST',
          headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
          body: JSON.stringify({
            eventId: 'agentmail:evt_e2e_1',
            channel: 'email',
            from: 'jane@example.com',
            subject: INBOUND_SUBJECT,
            text: 'Are you free at 8?',
            receivedAt: new Date().toISOString(),
          }),
        });
      expect((await send()).status).toBe(200);
      // The pool retries until it gets a 2xx: a repeat is taken as a duplicate and answered once only.
      expect(await (await send()).json()).toMatchObject({ accepted: true, duplicate: true });
      const deadline = Date.now() + 60_000;
      while (!received.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      expect(
        received.map((r) => r.text),
        runtime.output(),
      ).toEqual([INBOUND_REPLY]);
      expect(received[0]?.id).toBe('agentmail:evt_e2e_1');
      await new Promise((r) => setTimeout(r, 3_000));
      expect(received).toHaveLength(1);
    } finally {
      close();
    }
  }, 120_000);
});
