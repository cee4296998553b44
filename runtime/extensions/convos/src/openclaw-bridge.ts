import type { OpenClawConfig, PluginRuntime } from 'openclaw/plugin-sdk/channel-core';
import { createChannelInboundEnvelopeBuilder } from 'openclaw/plugin-sdk/channel-inbound';
import type { AgentBridge, InboundGroupMessage, Log } from './agent.js';

/**
 * Hands a group message to the OpenClaw agent: resolve the route (one session per XMTP group: the
 * group id is the peer id), build the inbound context, and dispatch the turn with a `deliver`
 * callback that sends the agent's reply back into the group.
 */

export const CHANNEL_ID = 'convos';
export const DEFAULT_ACCOUNT_ID = 'default';

export function targetFor(conversationId: string): string {
  return `${CHANNEL_ID}:${conversationId}`;
}

/**
 * OpenClaw serializes access to its state database with a lifecycle lock; while the gateway's own
 * startup or maintenance holds it, a turn fails with "another OpenClaw process owns state-lifecycle".
 * That is transient: retry the turn (it failed before anything was sent).
 */
export function isTransientStateContention(err: unknown): boolean {
  const e = err as { name?: string; message?: string } | undefined;
  return (
    e?.name === 'StateDatabaseCoordinatorContentionError' ||
    /another OpenClaw process owns|cleanup is pending/.test(e?.message ?? '')
  );
}

export const CONTENTION_RETRY_DELAYS_MS = [500, 1000, 2000, 4000, 8000, 15000, 30000];

export function openclawBridge(deps: {
  runtime: () => PluginRuntime;
  config: () => OpenClawConfig;
  accountId?: string;
  log: Log;
  retryDelaysMs?: readonly number[];
}): AgentBridge {
  const once = dispatchOnce(deps);
  const delays = deps.retryDelaysMs ?? CONTENTION_RETRY_DELAYS_MS;
  return {
    async dispatch(m, reply) {
      for (let attempt = 0; ; attempt++) {
        try {
          return await once(m, reply);
        } catch (err) {
          const delay = delays[attempt];
          if (!isTransientStateContention(err) || delay === undefined) throw err;
          deps.log.warn(`convos: OpenClaw state busy; retrying the turn in ${delay} ms`);
          await new Promise((r) => setTimeout(r, delay));
        }
      }
    },
  };
}

function dispatchOnce(deps: {
  runtime: () => PluginRuntime;
  config: () => OpenClawConfig;
  accountId?: string;
  log: Log;
}) {
  return async (m: InboundGroupMessage, reply: (text: string) => Promise<void>): Promise<void> => {
    {
      const runtime = deps.runtime();
      const cfg = deps.config();
      const accountId = deps.accountId ?? DEFAULT_ACCOUNT_ID;
      const channelRuntime = runtime.channel;
      const peer = { kind: 'group' as const, id: m.conversationId };
      const route = channelRuntime.routing.resolveAgentRoute({ cfg, channel: CHANNEL_ID, accountId, peer });
      const target = targetFor(m.conversationId);

      const ingress = await channelRuntime.inbound.ingress.resolveStable({
        channelId: CHANNEL_ID,
        accountId,
        cfg,
        identity: { key: 'sender', entryIdPrefix: 'convos-entry' },
        subject: { stableId: m.senderInboxId },
        conversation: { kind: 'group', id: m.conversationId },
        contextBinding: {
          agentId: route.agentId,
          sessionKey: route.sessionKey,
          messageId: m.messageId,
          inboundEventKind: 'user_request',
        },
        // Whoever the group admitted may talk to the agent: admission is the invite (join requests are
        // verified before anyone is added), so there is no second allowlist here.
        dmPolicy: 'disabled',
        groupPolicy: 'open',
      });
      if (ingress.ingress.admission !== 'dispatch') {
        deps.log.warn(
          `convos: ingress declined a message in ${m.conversationId}: ${ingress.ingress.admission}`,
        );
        return;
      }

      const envelope = createChannelInboundEnvelopeBuilder({ cfg, route });
      const timestamp = m.sentAt.getTime();
      const ctxPayload = channelRuntime.inbound.buildContext({
        channel: CHANNEL_ID,
        accountId: route.accountId ?? accountId,
        messageId: m.messageId,
        messageIdFull: m.messageId,
        timestamp,
        from: `${CHANNEL_ID}:${m.senderInboxId}`,
        sender: { id: m.senderInboxId },
        conversation: { kind: 'group', id: m.conversationId, label: m.groupName || 'Convos group' },
        route: {
          agentId: route.agentId,
          accountId: route.accountId,
          routeSessionKey: route.sessionKey,
          dispatchSessionKey: route.sessionKey,
        },
        reply: { to: target, originatingTo: target },
        message: {
          body: envelope({ channel: 'Convos', from: m.senderInboxId.slice(0, 8), timestamp, body: m.text }),
          bodyForAgent: m.text,
          rawBody: m.text,
          commandBody: m.text,
        },
        channelIngress: ingress,
        // Group members are strangers to the operator: their text is never a control command.
        extra: { CommandInterpretationSuppressed: true },
      });

      const result = await channelRuntime.inbound.dispatch({
        cfg,
        channel: CHANNEL_ID,
        accountId,
        route: { agentId: route.agentId, sessionKey: route.sessionKey },
        ctxPayload,
        delivery: {
          deliver: async (payload) => {
            if (payload.text?.trim()) await reply(payload.text);
          },
          onError: (err) =>
            deps.log.warn(
              `convos: reply delivery failed: ${err instanceof Error ? err.message : String(err)}`,
            ),
        },
        replyPipeline: {},
      });
      if (!result.dispatched) deps.log.warn(`convos: turn not dispatched (${result.admission.kind})`);
    }
  };
}
