// The first reply after a claim is warm: the runtime runs a throwaway turn (gateway-warmup.ts) before
// health says ready, so the first message costs about what later ones do. Real runtime, real OpenClaw,
// instant stand-in model: every millisecond is framework time. One boot (~15–40 s), then three messages.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NO_MODEL_MESSAGE } from '../src/no-model.ts';
import { contentText, type ModelServer, startModelServer } from './support/model-server.ts';
import {
  freePort,
  type RuntimeProcess,
  startRuntimeProcess,
  waitForHealth,
} from './support/runtime-process.ts';

const TOKEN = 'first-reply-test-token-0123456789';
const BOOT_TIMEOUT = 420_000;

let model: ModelServer;
let runtime: RuntimeProcess;
let stateDir: string;

beforeAll(async () => {
  model = await startModelServer(() => 'Instant reply.');
  stateDir = mkdtempSync(path.join(tmpdir(), 'runtime-first-reply-'));
  runtime = startRuntimeProcess({
    INSTANCE_ID: 'inst-first-reply',
    INSTANCE_TOKEN: TOKEN,
    PORT: String(await freePort()),
    STATE_DIR: stateDir,
    XMTP_ENV: 'off',
    MODEL_BASE_URL: model.url,
    MODEL: 'stand-in',
  });
  await waitForHealth(runtime.url, TOKEN, (b) => b.ready === true, BOOT_TIMEOUT).catch((err: Error) => {
    throw new Error(`${err.message}\n--- runtime output ---\n${runtime.output()}`);
  });
}, BOOT_TIMEOUT + 30_000);

afterAll(async () => {
  await runtime?.stop().catch(() => undefined);
  await model?.close();
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
});

describe('the first reply after a claim', () => {
  it('costs no more than later ones (first ≤ 2 × later + 1 s), and the warm-up never reached the model or the conversation', async () => {
    // Warmed before ready, against the runtime's own loopback endpoint, not the configured model.
    expect(runtime.output()).toMatch(/gateway warm-up done in \d+ ms/);
    expect(model.requests).toEqual([]);

    const res = await fetch(`${runtime.url}/pool/provision`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ requestId: 'claim-1', agentName: 'Juniper', instructions: 'Be brief.' }),
    });
    expect(res.status).toBe(200);
    const { chatUrl } = (await res.json()) as { chatUrl: string };

    const times: number[] = [];
    for (const message of ['First message', 'Second message', 'Third message']) {
      const started = Date.now();
      const r = await fetch(`${chatUrl}/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ message, session: 'first-reply-session' }),
      });
      expect(r.status).toBe(200);
      expect(((await r.json()) as { reply: string }).reply).toContain('Instant reply.');
      times.push(Date.now() - started);
    }
    const [first, ...later] = times as [number, ...number[]];
    console.log(`first reply ${first} ms, later ${later.join(', ')} ms`);
    expect(first).toBeLessThanOrEqual(2 * Math.max(...later) + 1_000);

    // The conversation's history has only its own messages: nothing of the warm-up turn.
    const sent = JSON.stringify(model.requests.map((r) => r.messages));
    expect(sent).not.toContain('warm-up');
    expect(sent).not.toContain(NO_MODEL_MESSAGE);
    const users = model.requests[0]?.messages
      .filter((m) => m.role === 'user')
      .map((m) => contentText(m.content));
    expect(users?.join('\n')).not.toMatch(/warm-up/);
  }, 120_000);
});
