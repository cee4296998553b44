// The runtime tells the pool when a join was accepted and when the conversation ended for the agent: the
// convos channel's engine on the
// in-memory XMTP network, its real /convos/status route, the control server's ChannelClient and PoolReports,
// against a stand-in of the pool's self-destruct route (which fails on demand). The self-destruct is sent
// with the reason, once, retried while the pool fails, and never again after the pool took it (also after
// a restart of the runtime).
import { mkdtempSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

import { STATUS_PATH, statusHandler } from '../extensions/convos/src/routes.ts';
import type { ConvosService } from '../extensions/convos/src/service.ts';
import { type FakeDm, type FakeGroup, FakeNetwork } from '../extensions/convos/test/fake-xmtp.ts';
import {
  eventually,
  identities,
  makeService,
  RecordingAgent,
  tempStateDir,
} from '../extensions/convos/test/helpers.ts';
import { ChannelClient } from '../src/channel-client.ts';
import { parseInviteUrl } from '../src/invite/index.ts';
import { PoolReports } from '../src/pool-reports.ts';

const GATEWAY_TOKEN = 'gateway-token-for-tests';
const INSTANCE_TOKEN = 'instance-token-0123456789';
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function listen(server: Server): Promise<string> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** The pool's self routes: answer `failures` 503s first, then 202; record every call. */
async function standInPool(failures = 0) {
  const calls: Array<{ path: string; auth: string | undefined; body: unknown }> = [];
  let left = failures;
  const url = await listen(
    createServer(async (req, res) => {
      let body = '';
      for await (const c of req) body += c;
      calls.push({ path: req.url ?? '', auth: req.headers.authorization, body: JSON.parse(body || 'null') });
      const code = left-- > 0 ? 503 : 202;
      res.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: code === 202 }));
    }),
  );
  return { url, calls };
}

/** The agent (a joiner) in a group with a person, its channel served on a real status route. */
async function agentInAGroup() {
  const net = new FakeNetwork();
  const host = makeService(net, await tempStateDir('pr-host'), new RecordingAgent('Host', () => false));
  cleanups.push(() => host.stop());
  const created = await host.provision({ requestId: 'host', agentName: 'Host', instructions: '' });
  const dir = await tempStateDir('pr-agent');
  let svc: ConvosService = makeService(net, dir, new RecordingAgent('Bob'));
  cleanups.push(() => svc.stop());
  await svc.provision({
    requestId: 'claim-1',
    agentName: 'Bob',
    instructions: '',
    joinUrl: created.inviteUrl ?? '',
  });
  const person = net.personClient();
  const invite = parseInviteUrl(created.inviteUrl ?? '');
  await ((await person.createDm(invite.creatorInboxId)) as FakeDm).sendJoinRequest({
    inviteSlug: invite.slug,
  });
  const group = (await eventually(async () =>
    (await person.listConversations()).find((c) => c.kind === 'group'),
  )) as FakeGroup;
  const status = statusHandler({
    token: () => GATEWAY_TOKEN,
    current: () => svc,
    ensure: async () => svc,
    disabledReason: () => undefined,
    log: () => {},
  });
  const gatewayUrl = await listen(
    createServer((req, res) => {
      if (req.url === STATUS_PATH) void status(req, res);
      else res.writeHead(404).end();
    }),
  );
  const restartChannel = async () => {
    await svc.stop();
    svc = makeService(net, dir, new RecordingAgent('Bob'));
    await svc.start();
  };
  const agentInbox = (await identities(dir))[0]?.inboxId ?? '';
  return { group, gatewayUrl, agentInbox, restartChannel, service: () => svc };
}

/** The control server's side: reads the channel's status every 20 ms and hands it to PoolReports. */
function runtimeSide(gatewayUrl: string, poolUrl: string, file: string) {
  const lines: string[] = [];
  const reports = new PoolReports({
    poolApiUrl: poolUrl,
    instanceId: 'inst-1',
    instanceToken: INSTANCE_TOKEN,
    file,
    log: (l) => lines.push(l),
    retryDelayMs: () => 30,
  });
  const client = new ChannelClient(gatewayUrl, GATEWAY_TOKEN);
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const poll = async () => {
    reports.observe((await client.status()).conversation);
    if (!stopped) timer = setTimeout(() => void poll(), 20);
  };
  void poll();
  const stop = () => {
    stopped = true;
    clearTimeout(timer);
    reports.stop();
  };
  cleanups.push(stop);
  return { reports, lines, stop };
}

describe('the runtime tells the pool that the conversation ended', () => {
  it('removed from the group: one self-destruct with the reason and the instance credentials, retried while the pool fails', async () => {
    const pool = await standInPool(2);
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'pool-reports-')), 'pool-reports.json');
    const { group, gatewayUrl, agentInbox } = await agentInAGroup();
    const runtime = runtimeSide(gatewayUrl, pool.url, file);

    // The join was accepted within the provision's wait: reported anyway (the pool takes it as a repeat).
    await eventually(() => runtime.reports.isDone('joined:claim-1'), 5000);
    const exits = () => pool.calls.filter((c) => c.path === '/api/pool/self-destruct');
    expect(exits()).toEqual([]);

    await group.removeMembers([agentInbox]);
    await eventually(() => runtime.reports.isDone('exit:claim-1'), 5000);
    const expected = {
      path: '/api/pool/self-destruct',
      auth: `Bearer inst-1:${INSTANCE_TOKEN}`,
      body: { reason: 'removed_from_conversation' },
    };
    // The pool failed twice (on the join's report), then took everything; each report arrived once.
    expect(exits()).toEqual([expected]);
    await new Promise((r) => setTimeout(r, 200));
    expect(pool.calls).toHaveLength(4);
    expect(runtime.lines.filter((l) => l.includes('retrying'))).toHaveLength(2);
    expect(runtime.lines.join('\n')).not.toContain(INSTANCE_TOKEN);

    // A restarted runtime (same state dir) does not ask again.
    runtime.stop();
    const again = runtimeSide(gatewayUrl, pool.url, file);
    await new Promise((r) => setTimeout(r, 200));
    expect(again.reports.isDone('exit:claim-1')).toBe(true);
    expect(pool.calls).toHaveLength(4);
  });

  it('a join accepted after the provision answered waiting_for_acceptance: reported once, with the conversation id', async () => {
    const pool = await standInPool(1);
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'pool-reports-')), 'pool-reports.json');
    const net = new FakeNetwork();
    const hostDir = await tempStateDir('pr-host-away');
    const host = makeService(net, hostDir, new RecordingAgent('Host', () => false));
    const created = await host.provision({ requestId: 'host', agentName: 'Host', instructions: '' });
    await host.stop(); // the creator is away
    const svc = makeService(net, await tempStateDir('pr-joiner'), new RecordingAgent('Bob'));
    cleanups.push(() => svc.stop());
    const first = await svc.provision({
      requestId: 'claim-9',
      agentName: 'Bob',
      instructions: '',
      joinUrl: created.inviteUrl ?? '',
    });
    expect(first.status).toBe('waiting_for_acceptance');
    const status = statusHandler({
      token: () => GATEWAY_TOKEN,
      current: () => svc,
      ensure: async () => svc,
      disabledReason: () => undefined,
      log: () => {},
    });
    const gatewayUrl = await listen(createServer((req, res) => void status(req, res)));
    const runtime = runtimeSide(gatewayUrl, pool.url, file);
    await new Promise((r) => setTimeout(r, 150));
    expect(pool.calls).toEqual([]);

    const back = makeService(net, hostDir, new RecordingAgent('Host', () => false));
    cleanups.push(() => back.stop());
    await back.start(); // the creator is back and lets the agent in
    await eventually(() => runtime.reports.isDone('joined:claim-9'), 8000);
    const report = {
      path: '/api/pool/self/conversation',
      auth: `Bearer inst-1:${INSTANCE_TOKEN}`,
      body: { requestId: 'claim-9', conversationId: created.conversationId },
    };
    expect(pool.calls).toEqual([report, report]); // one 503, then taken
    await new Promise((r) => setTimeout(r, 150));
    expect(pool.calls).toHaveLength(2);
  });

  it('the agent left when asked: left_conversation; a channel restarted meanwhile still reports it', async () => {
    const pool = await standInPool();
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'pool-reports-')), 'pool-reports.json');
    const { gatewayUrl, restartChannel, service } = await agentInAGroup();
    expect(await service().leave()).toEqual({ left: true });
    await restartChannel();
    const runtime = runtimeSide(gatewayUrl, pool.url, file);
    await eventually(() => runtime.reports.isDone('exit:claim-1'), 5000);
    expect(pool.calls.filter((c) => c.path === '/api/pool/self-destruct').map((c) => c.body)).toEqual([
      { reason: 'left_conversation' },
    ]);
  });

  it('a pool that refuses (4xx) is not hammered; without POOL_API_URL nothing is sent', async () => {
    const calls: string[] = [];
    const url = await listen(
      createServer((req, res) => {
        calls.push(req.url ?? '');
        res.writeHead(403, { 'content-type': 'application/json' }).end('{}');
      }),
    );
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'pool-reports-')), 'pool-reports.json');
    const lines: string[] = [];
    const reports = new PoolReports({
      poolApiUrl: url,
      instanceId: 'inst-1',
      instanceToken: INSTANCE_TOKEN,
      file,
      log: (l) => lines.push(l),
      retryDelayMs: () => 10,
    });
    cleanups.push(() => reports.stop());
    const conversation = { requestId: 'r', conversationId: 'c0ffee', status: 'created' as const };
    for (let i = 0; i < 5; i++) reports.observe({ ...conversation, exit: 'conversation_ended' });
    await eventually(() => reports.isDone('exit:r'));
    await new Promise((r) => setTimeout(r, 100));
    expect(calls).toEqual(['/api/pool/self-destruct']);
    expect(lines.at(-1)).toContain('refused');
    // No exit, no report.
    reports.observe({ ...conversation, requestId: 'other', exit: null });
    expect(reports.waiting).toBe(0);

    const offline = new PoolReports({
      poolApiUrl: null,
      instanceId: 'i',
      instanceToken: INSTANCE_TOKEN,
      file,
      log: (l) => lines.push(l),
    });
    offline.observe({ ...conversation, requestId: 'x', exit: 'conversation_ended' });
    expect(offline.waiting).toBe(0);
    expect(lines.at(-1)).toContain('POOL_API_URL is not set');
  });
});
