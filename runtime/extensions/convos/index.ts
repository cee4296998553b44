import { defineChannelPluginEntry } from 'openclaw/plugin-sdk/channel-core';
import { convosChannelPlugin } from './src/channel.js';
import { currentSettings, ensureService, existingService, setConvosRuntime } from './src/instance.js';
import { isConvosTurn, LEAVE_TOOL_NAME, leaveTool } from './src/leave-tool.js';
import { CHANNEL_ID } from './src/openclaw-bridge.js';
import {
  PROVISION_PATH,
  provisionHandler,
  type RouteDeps,
  SEND_PATH,
  STATUS_PATH,
  sendHandler,
  statusHandler,
} from './src/routes.js';
import { ProvisionError } from './src/service.js';

/**
 * The `convos` OpenClaw plugin: the Convos (XMTP) chat channel plus the gateway routes the runtime uses to
 * provision a conversation, read the channel's state and send the agent's scheduled messages
 * (runtime/CONTRACT.md), and the agent's leave_conversation tool.
 */
export default defineChannelPluginEntry({
  id: 'convos',
  name: 'Convos',
  description: 'Convos group chats over XMTP: one identity per conversation, invites, join requests.',
  plugin: convosChannelPlugin,
  setRuntime: setConvosRuntime,
  registerFull(api) {
    const deps: RouteDeps = {
      // The control server passes the gateway token in the environment; the config holds only a
      // `${OPENCLAW_GATEWAY_TOKEN}` reference to it.
      token: () => process.env.OPENCLAW_GATEWAY_TOKEN || undefined,
      current: () => existingService(currentSettings(api.config)),
      ensure: async () => {
        const s = currentSettings(api.config);
        if (!s.enabled) throw new ProvisionError(503, 'channel_disabled', `channel disabled: ${s.reason}`);
        return ensureService(s);
      },
      disabledReason: () => {
        const s = currentSettings(api.config);
        return s.enabled ? undefined : s.reason;
      },
      log: (m) => api.logger.warn(m),
    };
    api.registerHttpRoute({
      path: PROVISION_PATH,
      auth: 'plugin',
      match: 'exact',
      handler: provisionHandler(deps),
    });
    const tool = leaveTool(async () => existingService(currentSettings(api.config)));
    api.registerTool(
      ((ctx: { messageChannel?: string; sessionKey?: string }) =>
        isConvosTurn(ctx, CHANNEL_ID) ? tool : null) as never,
      { names: [LEAVE_TOOL_NAME] },
    );
    api.registerHttpRoute({
      path: STATUS_PATH,
      auth: 'plugin',
      match: 'exact',
      handler: statusHandler(deps),
    });
    api.registerHttpRoute({
      path: SEND_PATH,
      auth: 'plugin',
      match: 'exact',
      handler: sendHandler(deps),
    });
  },
});
