// Composes one instance: state dir, workspace, OpenClaw config, the supervised gateway, the channel
// status and the control server. `startRuntime` is what main.ts runs; tests run main.ts as a process.
import { mkdirSync, readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { type AddressInfo, createServer as createNetServer } from 'node:net';
import path from 'node:path';
import type { SelfDestructReason } from '../../contracts/runtime.ts';
import { ActivityClock } from './activity.ts';
import {
  ChannelClient,
  type ChannelConversation,
  ChannelError,
  type ChannelState,
} from './channel-client.ts';
import { ChatEvents } from './chat-events.ts';
import { sendChatMessage } from './chat-page.ts';
import { createControlServer, type Health } from './control-server.ts';
import type { ModelConfig, RuntimeEnv } from './env.ts';
import { GatewaySupervisor } from './gateway-supervisor.ts';
import { KeepWarmSession, runWarmupTurn } from './gateway-warmup.ts';
import { HttpError } from './http-errors.ts';
import { InboundQueue } from './inbound.ts';
import { inboundDispatch } from './inbound-delivery.ts';
import { isInviteError, parseInviteUrl } from './invite/index.ts';
import { NO_MODEL_ID, type NoModelServer, startNoModelServer } from './no-model.ts';
import {
  GATEWAY_TOKEN_ENV,
  MODEL_KEY_ENV,
  OUTBOUND_URL_ENV,
  writeOpenClawConfig,
} from './openclaw-config.ts';
import { createOutboundServer } from './outbound.ts';
import { openclawEntry, runtimeRoot, statePaths } from './paths.ts';
import { PoolReports } from './pool-reports.ts';
import { type ProvisionRequest, type ProvisionResult, ProvisionStore } from './provision-store.ts';
import { NotDeliveredError, Scheduler } from './scheduler.ts';
import { loadOrCreateSecret } from './secrets.ts';
import { type AgentProfile, UNCLAIMED_PROFILE, writeWorkspace } from './workspace.ts';

export interface RunningRuntime {
  url: string;
  stop(): Promise<void>;
}

function readVersion(): string {
  const own = JSON.parse(readFileSync(path.join(runtimeRoot, 'package.json'), 'utf8')) as { version: string };
  const oc = JSON.parse(
    readFileSync(path.join(runtimeRoot, 'node_modules', 'openclaw', 'package.json'), 'utf8'),
  ) as { version: string };
  return `${own.version}+openclaw.${oc.version}`;
}

async function freeLoopbackPort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * Only what the gateway needs: no instance token, no pool URL, no provider key, nothing inherited by
 * accident. Email/SMS and payments go through `outboundUrl` (loopback, gateway token), never straight to a provider.
 */
export function gatewayEnvironment(
  env: RuntimeEnv,
  stateDir: string,
  gatewayToken: string,
  outboundUrl: string | null,
): Record<string, string> {
  const paths = statePaths(stateDir);
  const out: Record<string, string> = {
    // Node first on PATH, so anything the gateway starts with `node` gets the same (≥ 24) binary.
    PATH: [path.dirname(process.execPath), process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin'].join(
      path.delimiter,
    ),
    HOME: path.join(stateDir, 'home'),
    OPENCLAW_STATE_DIR: paths.openclaw,
    OPENCLAW_NO_AUTO_UPDATE: '1',
    [GATEWAY_TOKEN_ENV]: gatewayToken,
    XMTP_ENV: env.xmtpEnv,
    CONVOS_STATE_DIR: paths.convos,
  };
  for (const name of [
    'LANG',
    'TZ',
    'TMPDIR',
    'NODE_EXTRA_CA_CERTS',
    'HTTPS_PROXY',
    'HTTP_PROXY',
    'NO_PROXY',
    // End-to-end tests only: the Convos channel's file-backed stand-in network (extensions/convos/src/instance.ts).
    'CONVOS_TEST_NETWORK_DIR',
    // Operators' view into a slow turn: OpenClaw's diagnostics timeline (spans per turn stage) to a file.
    'OPENCLAW_DIAGNOSTICS',
    'OPENCLAW_DIAGNOSTICS_TIMELINE_PATH',
  ]) {
    const value = process.env[name];
    if (value) out[name] = value;
  }
  if (env.model.kind === 'openrouter') out.OPENROUTER_API_KEY = env.model.apiKey;
  else if (env.model.kind === 'openai-compatible' && env.model.apiKey) out[MODEL_KEY_ENV] = env.model.apiKey;
  if (outboundUrl) out[OUTBOUND_URL_ENV] = outboundUrl;
  // Not secrets: the tools name them in their descriptions, the skills require them.
  if (env.email) out.AGENTMAIL_INBOX_ID = env.email.inboxId;
  if (env.sms) out.TELNYX_PHONE_NUMBER = env.sms.phoneNumber;
  if (env.payments && outboundUrl) out.POOL_PAYMENTS = 'on';
  return out;
}

export async function startRuntime(env: RuntimeEnv, log: (line: string) => void): Promise<RunningRuntime> {
  const paths = statePaths(env.stateDir);
  for (const dir of [paths.root, paths.openclaw, paths.logs, paths.convos, path.join(paths.root, 'home')]) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }
  const version = readVersion();
  const gatewayToken = loadOrCreateSecret(env.stateDir, 'gateway-token');
  const chatSecret = loadOrCreateSecret(env.stateDir, 'chat-secret');
  const store = new ProvisionStore(paths.provisionRecord);
  const activity = new ActivityClock(paths.activity);

  const profile = (): AgentProfile => {
    const record = store.current();
    return record
      ? { agentName: record.request.agentName, instructions: record.request.instructions }
      : UNCLAIMED_PROFILE;
  };
  // Re-render at boot: new templates apply, the claim's name and instructions come back from the record.
  writeWorkspace(paths.workspace, profile());

  // Without a model the gateway talks to our own loopback stand-in whose only answer says how to set one:
  // a real agent (chat page, channel, health all normal), never a made-up reply.
  // The same endpoint is the model of the warm-up turn (gateway-warmup.ts), so it always runs.
  const noModel: NoModelServer = await startNoModelServer();
  let gatewayModel: ModelConfig = env.model;
  if (env.model.kind === 'none') {
    gatewayModel = { kind: 'openai-compatible', baseUrl: noModel.url, apiKey: null, model: NO_MODEL_ID };
    log('[runtime] no model configured: every reply says how to set OPENROUTER_API_KEY or MODEL_BASE_URL');
  }
  const gatewayEnv: RuntimeEnv = { ...env, model: gatewayModel };

  const gatewayPort = env.gatewayPort ?? (await freeLoopbackPort());
  writeOpenClawConfig({ env: gatewayEnv, paths, gatewayPort, warmupBaseUrl: noModel.url });

  const secrets = [gatewayToken, chatSecret, env.instanceToken];
  if (env.model.kind === 'openrouter') secrets.push(env.model.apiKey);
  else if (env.model.kind === 'openai-compatible' && env.model.apiKey) secrets.push(env.model.apiKey);

  // Email/SMS, payments and scheduled messages: the gateway's tools ask this loopback server; it has the pool
  // send with the instance's credentials, which therefore never enter the gateway process, and keeps the
  // agent's scheduled messages (sent by `scheduler` below, through the channel or the chat page's stream).
  // Created before the scheduler's delivery needs the channel, which needs the gateway: late-bound.
  let deliverScheduled: (conversation: string, text: string, id: string) => Promise<void> = async () => {
    throw new NotDeliveredError('the runtime is starting');
  };
  const scheduler = new Scheduler({
    file: paths.scheduled,
    limits: env.schedule,
    deliver: (conversation, text, message) => deliverScheduled(conversation, text, message.id),
    log,
  });
  const chatEvents = new ChatEvents((session) => scheduler.retryNow(`chat:${session}`));
  const outbound: Server = createOutboundServer({
    gatewayToken,
    instanceId: env.instanceId,
    instanceToken: env.instanceToken,
    poolApiUrl: env.poolApiUrl,
    channels: { email: env.email !== null, sms: env.sms !== null },
    payments: env.payments,
    scheduler,
    log,
  });
  await new Promise<void>((resolve, reject) => {
    outbound.once('error', reject);
    outbound.listen(0, '127.0.0.1', resolve);
  });
  const outboundUrl = `http://127.0.0.1:${(outbound.address() as AddressInfo).port}`;

  const keepWarmSession = new KeepWarmSession();
  const supervisor = new GatewaySupervisor({
    command: process.execPath,
    // The token is passed by environment, not argv, so it does not show up in `ps`.
    args: [
      openclawEntry,
      'gateway',
      'run',
      '--port',
      String(gatewayPort),
      '--bind',
      'loopback',
      '--allow-unconfigured',
    ],
    env: gatewayEnvironment(gatewayEnv, env.stateDir, gatewayToken, outboundUrl),
    cwd: paths.workspace,
    port: gatewayPort,
    logDir: paths.logs,
    marker: { name: 'OPENCLAW_STATE_DIR', value: paths.openclaw },
    redact: secrets,
    warmUp: async () => {
      await runWarmupTurn(`http://127.0.0.1:${gatewayPort}`, gatewayToken);
    },
    keepWarm: {
      everyMs: env.keepWarmMs,
      while: () => store.current() === null,
      turn: async () => {
        await runWarmupTurn(`http://127.0.0.1:${gatewayPort}`, gatewayToken, {
          sessionKey: keepWarmSession.current(),
        });
      },
    },
    log,
  });

  const channelEnabled = env.xmtpEnv !== 'off';
  const channel = new ChannelClient(supervisor.baseUrl, gatewayToken);
  // The channel's news for the pool (the conversation ended for the agent), each told once.
  const reports = new PoolReports({
    poolApiUrl: env.poolApiUrl,
    instanceId: env.instanceId,
    instanceToken: env.instanceToken,
    file: paths.poolReports,
    log,
  });
  let channelState: ChannelState = channelEnabled ? 'starting' : 'disabled';
  /** The conversation the channel last reported (where an inbound event's reply goes). */
  let latestConversation: ChannelConversation | null = null;
  let channelTimer: NodeJS.Timeout | null = null;
  const pollChannel = async () => {
    if (supervisor.state === 'ready') {
      const status = await channel.status();
      channelState = status.state;
      activity.merge(status.lastActivityAt);
      reports.observe(status.conversation);
      latestConversation = status.conversation;
    } else {
      channelState = 'starting';
    }
    channelTimer = setTimeout(() => void pollChannel(), channelState === 'ready' ? 5_000 : 1_000);
  };

  const health = (): Health => {
    const gateway = supervisor.state;
    const channelNow: ChannelState = !channelEnabled
      ? 'disabled'
      : gateway === 'ready'
        ? channelState
        : 'starting';
    return {
      ready: gateway === 'ready' && (channelNow === 'ready' || channelNow === 'disabled'),
      gateway,
      channel: channelNow,
      version,
      lastActivityAt: activity.lastActivityAt(),
    };
  };

  const chatUrl = `${env.publicUrl}/chat/${chatSecret}`;

  // A scheduled message goes where it was scheduled: a chat page session's open pages, or the Convos group
  // through the channel's own send path (refused, so retried, while the gateway or channel is starting).
  deliverScheduled = async (conversation, text, id) => {
    if (conversation.startsWith('chat:')) {
      chatEvents.publish(conversation.slice('chat:'.length), { id, text, sentAt: new Date().toISOString() });
    } else {
      if (!channelEnabled) throw new NotDeliveredError('the convos channel is off', true);
      if (supervisor.state !== 'ready') throw new NotDeliveredError('the gateway is starting');
      await channel.send(conversation.slice('convos:'.length), text);
    }
    activity.record();
  };

  const doProvision = async (request: ProvisionRequest): Promise<ProvisionResult> => {
    const started = Date.now();
    writeWorkspace(paths.workspace, { agentName: request.agentName, instructions: request.instructions });
    let result: ProvisionResult;
    if (!channelEnabled) {
      result = { conversationId: null, inviteUrl: null, joined: false, status: 'created', chatUrl };
    } else {
      try {
        result = await channel.provision(request);
      } catch (err) {
        // The plugin's 4xx (a bad or expired invite) stays a 4xx for the pool: retrying cannot fix it.
        if (err instanceof ChannelError) {
          throw new HttpError(
            err.status >= 400 && err.status < 500 ? err.status : 502,
            err.code,
            `channel: ${err.message}`,
          );
        }
        throw new HttpError(502, 'channel_unreachable', `channel: ${(err as Error).message}`);
      }
    }
    log(
      `[runtime] provisioned request ${request.requestId} (${result.status}) in ${Date.now() - started} ms`,
    );
    return result;
  };

  const provision = async (request: ProvisionRequest): Promise<ProvisionResult> => {
    const record = store.current();
    const isRepeat = record?.request.requestId === request.requestId;
    if (!isRepeat) {
      if (request.joinUrl && !channelEnabled) {
        throw new HttpError(
          400,
          'channel_disabled',
          'joinUrl needs the convos channel, which is off on this instance',
        );
      }
      // A malformed invite is the caller's mistake: refuse it before anything is recorded, so the
      // instance stays claimable.
      if (request.joinUrl) {
        try {
          parseInviteUrl(request.joinUrl);
        } catch (err) {
          if (isInviteError(err))
            throw new HttpError(400, 'invalid_join_url', `joinUrl: ${(err as Error).message}`);
          throw err;
        }
      }
      // Refuse before recording anything, so a not-yet-ready instance stays claimable.
      if (!record && !health().ready) throw new HttpError(503, 'not_ready', 'the instance is not ready yet');
    }
    return store.provision(request, doProvision);
  };

  const selfDestruct = async (): Promise<{ status: number; body: unknown }> => {
    if (!env.poolApiUrl)
      return { status: 503, body: { error: 'POOL_API_URL is not set', code: 'no_pool_api' } };
    try {
      const res = await fetch(`${env.poolApiUrl}/api/pool/self-destruct`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${env.instanceId}:${env.instanceToken}`,
          'content-type': 'application/json',
        },
        body: JSON.stringify({ reason: 'requested' satisfies SelfDestructReason }),
        signal: AbortSignal.timeout(10_000),
      });
      if (!res.ok)
        return { status: 502, body: { error: `pool answered ${res.status}`, code: 'pool_refused' } };
      log('[runtime] self-destruct requested');
      return { status: 202, body: { accepted: true } };
    } catch (err) {
      return {
        status: 502,
        body: { error: `pool unreachable: ${(err as Error).message}`, code: 'pool_unreachable' },
      };
    }
  };

  // Inbound email and SMS: a turn of the agent in its own `inbound-events` session, where it can act with its
  // tools (send_email, send_sms); its reply is posted into its conversation (src/inbound-delivery.ts).
  const chatDeps = { gatewayUrl: supervisor.baseUrl, gatewayToken, agentName: () => profile().agentName };
  const inbound = new InboundQueue(
    paths.inbound,
    inboundDispatch({
      turn: async (text) => {
        if (supervisor.state !== 'ready') throw new Error('the gateway is not ready');
        const reply = await sendChatMessage(chatDeps, 'inbound-events', text);
        activity.record();
        return reply;
      },
      post: async (reply, request) => {
        const conversation = latestConversation;
        if (channelEnabled) {
          if (!conversation?.conversationId || conversation.exit)
            throw new Error('the agent is in no conversation');
          await channel.send(conversation.conversationId, reply);
        } else {
          chatEvents.publishAll({ id: request.eventId, text: reply, sentAt: new Date().toISOString() });
        }
        activity.record();
      },
      log,
    }),
    log,
  );

  const server = createControlServer({
    instanceToken: env.instanceToken,
    health,
    provision,
    selfDestruct,
    inbound: (request) => inbound.accept(request),
    chatSecret,
    chat: chatDeps,
    chatEvents,
    recordActivity: () => activity.record(),
    log,
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(env.port, env.host, resolve);
  });
  log(
    `[runtime] control server on ${env.host}:${env.port} (instance ${env.instanceId}, xmtp ${env.xmtpEnv}, version ${version})`,
  );

  // Before the gateway: a chat page's message needs only the control server (due-while-down ones go now).
  scheduler.start();
  await supervisor.start();
  if (channelEnabled) void pollChannel();
  inbound.start();

  return {
    url: `http://${env.host === '0.0.0.0' ? '127.0.0.1' : env.host}:${env.port}`,
    async stop() {
      if (channelTimer) clearTimeout(channelTimer);
      reports.stop();
      inbound.stop();
      scheduler.stop();
      chatEvents.closeAll();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      outbound.closeAllConnections();
      await new Promise<void>((resolve) => outbound.close(() => resolve()));
      await supervisor.stop();
      await noModel.close();
      activity.flush();
    },
  };
}
