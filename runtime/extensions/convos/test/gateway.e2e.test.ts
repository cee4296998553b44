import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseInviteUrl } from '../../../src/invite/index.js';
import { contentText, type ModelServer, startModelServer } from '../../../test/support/model-server.js';
import { FileNetwork } from '../src/xmtp/file-network.js';
import { eventually, tempStateDir } from './helpers.js';

/**
 * The plugin inside a real OpenClaw gateway: loads from its manifest, serves /convos/status,
 * /convos/provision and /convos/send behind the gateway token, and carries a conversation end to end — a
 * person joins through the invite, the agent's (stand-in model's) reply comes back into the group, and so
 * does a scheduled message the runtime sends. XMTP itself is
 * replaced by the file-backed stand-in network (CONVOS_TEST_NETWORK_DIR): no XMTP network runs here.
 */

const runtimeRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const TOKEN = 'e2e-gateway-token-0123456789';
const BOOT_MS = 300_000;

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

let gateway: ChildProcess | undefined;
let output = '';
let model: ModelServer;
let base = '';
let net: FileNetwork;
let root = '';

async function call(path: string, init: RequestInit = {}) {
  const res = await fetch(`${base}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    signal: AbortSignal.timeout(120_000),
  });
  return { status: res.status, body: (await res.json().catch(() => null)) as Record<string, unknown> | null };
}

beforeAll(async () => {
  model = await startModelServer(() => 'HELLO-ACK from the model');
  root = await tempStateDir('gateway-e2e');
  net = new FileNetwork(join(root, 'network'));
  const stateDir = join(root, 'openclaw');
  mkdirSync(stateDir, { recursive: true });
  mkdirSync(join(root, 'home'), { recursive: true });
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  const config = {
    gateway: {
      mode: 'local',
      bind: 'loopback',
      port,
      auth: { mode: 'token', token: '${OPENCLAW_GATEWAY_TOKEN}' },
    },
    update: { checkOnStart: false },
    cron: { enabled: false },
    models: {
      mode: 'merge',
      providers: {
        model: {
          baseUrl: model.url,
          apiKey: 'none',
          api: 'openai-completions',
          models: [
            {
              id: 'stand-in',
              name: 'stand-in',
              reasoning: false,
              input: ['text'],
              cost: { input: 0, output: 0, cacheRead: 0, cacheWrite: 0 },
              contextWindow: 128000,
              maxTokens: 8192,
            },
          ],
        },
      },
    },
    agents: {
      defaults: {
        model: { primary: 'model/stand-in' },
        workspace: join(root, 'workspace'),
        skipBootstrap: true,
        heartbeat: { every: '0m' },
      },
    },
    plugins: {
      allow: ['convos'],
      load: { paths: [join(runtimeRoot, 'extensions', 'convos')] },
      entries: { convos: { enabled: true, hooks: { allowConversationAccess: true } } },
    },
    channels: { convos: { enabled: true } },
  };
  writeFileSync(join(stateDir, 'openclaw.json'), JSON.stringify(config, null, 2));
  const node = join(runtimeRoot, 'node_modules', 'node', 'bin', 'node');
  gateway = spawn(
    node,
    [
      join(runtimeRoot, 'node_modules', 'openclaw', 'openclaw.mjs'),
      'gateway',
      'run',
      '--port',
      String(port),
      '--bind',
      'loopback',
      '--token',
      TOKEN,
      '--allow-unconfigured',
    ],
    {
      cwd: root,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        PATH: `${dirname(node)}:${process.env.PATH ?? '/usr/bin:/bin'}`,
        HOME: join(root, 'home'),
        OPENCLAW_STATE_DIR: stateDir,
        OPENCLAW_NO_AUTO_UPDATE: '1',
        OPENCLAW_GATEWAY_TOKEN: TOKEN,
        XMTP_ENV: 'dev',
        CONVOS_STATE_DIR: join(root, 'convos'),
        CONVOS_TEST_NETWORK_DIR: net.dir,
      },
    },
  );
  gateway.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  gateway.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  await eventually(async () => (await call('/convos/status')).body?.state === 'ready', BOOT_MS).catch(
    (err) => {
      throw new Error(`${(err as Error).message}\n--- gateway output ---\n${output.slice(-4000)}`);
    },
  );
}, BOOT_MS + 30_000);

afterAll(async () => {
  const pid = gateway?.pid;
  if (pid && gateway?.exitCode === null) {
    const exited = new Promise<void>((r) => gateway?.once('exit', () => r()));
    process.kill(-pid, 'SIGTERM');
    const t = setTimeout(() => process.kill(-pid, 'SIGKILL'), 20_000);
    await exited;
    clearTimeout(t);
    try {
      process.kill(-pid, 'SIGKILL'); // anything of its group still around
    } catch {
      // already gone
    }
  }
  await model?.close();
  // ~60 MB of gateway state per run.
  if (root) rmSync(root, { recursive: true, force: true });
}, 60_000);

describe('convos plugin in a real OpenClaw gateway', () => {
  it('guards its routes with the gateway token', async () => {
    const res = await fetch(`${base}/convos/status`, { headers: { authorization: 'Bearer wrong' } });
    expect(res.status).toBe(401);
    const send = await fetch(`${base}/convos/send`, {
      method: 'POST',
      headers: { authorization: 'Bearer wrong', 'content-type': 'application/json' },
      body: '{}',
    });
    expect(send.status).toBe(401);
  });

  it('provisions a conversation; a person joins by invite and gets the agent reply in the group', async () => {
    const first = await call('/convos/provision', {
      method: 'POST',
      body: JSON.stringify({ requestId: 'e2e-1', agentName: 'Ada', instructions: 'Be brief.' }),
    });
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ status: 'created', joined: false });
    const again = await call('/convos/provision', {
      method: 'POST',
      body: JSON.stringify({ requestId: 'e2e-1', agentName: 'Ada', instructions: 'Be brief.' }),
    });
    expect(again.body).toEqual(first.body);
    // No message in the conversation yet.
    expect((await call('/convos/status', { method: 'GET' })).body).toMatchObject({
      state: 'ready',
      lastActivityAt: null,
    });

    const invite = parseInviteUrl(String(first.body?.inviteUrl));
    const person = net.client();
    const dm = await person.createDm(invite.creatorInboxId);
    await dm.sendJoinRequest({ inviteSlug: invite.slug, profile: { name: 'Pat' } });
    const group = await eventually(
      async () => (await person.listConversations()).find((c) => c.kind === 'group'),
      60_000,
    );
    expect(group?.id).toBe(first.body?.conversationId);

    await group?.sendText('hello agent, are you there?');
    const reply = await eventually(
      async () =>
        (await group?.messages())?.find(
          (m) => m.senderInboxId === invite.creatorInboxId && m.text?.includes('HELLO-ACK'),
        ),
      // The first turn loads the reply pipeline (seconds normally, minutes on a loaded 2-core machine).
      360_000,
    ).catch((err) => {
      throw new Error(`${(err as Error).message}\n--- gateway output ---\n${output.slice(-6000)}`);
    });
    expect(reply?.text).toContain('HELLO-ACK from the model');
    // The member's message and the reply are activity: /convos/status reports when (the control server's lastActivityAt).
    const status = (await call('/convos/status', { method: 'GET' })).body as {
      lastActivityAt?: string | null;
    };
    expect(Date.parse(status.lastActivityAt ?? '')).toBeGreaterThanOrEqual(
      (reply?.sentAt.getTime() ?? 0) - 1000,
    );
    // The person's words reached the model (inside OpenClaw's prompt, one request per turn).
    const sent = model.requests.map((r) => r.messages.map((m) => contentText(m.content)).join('\n'));
    expect(
      sent.some((t) => t.includes('hello agent, are you there?')),
      sent.at(-1)?.slice(-2000),
    ).toBe(true);
    // A scheduled message (the runtime's POST /convos/send) is posted by the agent into its group.
    expect(
      (
        await call('/convos/send', {
          method: 'POST',
          body: JSON.stringify({ conversationId: group?.id, text: 'SCHEDULED-REMINDER at its time' }),
        })
      ).status,
    ).toBe(200);
    const scheduled = await eventually(
      async () =>
        (await group?.messages())?.find(
          (m) => m.senderInboxId === invite.creatorInboxId && m.text === 'SCHEDULED-REMINDER at its time',
        ),
      30_000,
    );
    expect(scheduled).toBeDefined();
    const foreign = await call('/convos/send', {
      method: 'POST',
      body: JSON.stringify({ conversationId: 'ab'.repeat(16), text: 'not ours' }),
    });
    expect(foreign).toMatchObject({ status: 404, body: { code: 'unknown_conversation' } });
    // No key material in what the gateway printed.
    expect(output).not.toMatch(/walletKey|dbEncryptionKey/);
  }, 480_000);
});
