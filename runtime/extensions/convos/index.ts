import { defineChannelPluginEntry } from 'openclaw/plugin-sdk/channel-core';
import { convosChannelPlugin } from './src/channel.js';
import { currentSettings, ensureService, existingService, setConvosRuntime } from './src/instance.js';
import {
  PROVISION_PATH,
  provisionHandler,
  type RouteDeps,
  STATUS_PATH,
  statusHandler,
} from './src/routes.js';
import { ProvisionError } from './src/service.js';

/**
 * The `convos` OpenClaw plugin: the Convos (XMTP) chat channel plus the two gateway routes the
 * runtime's control server uses to provision a conversation and read the channel's state
 * (runtime/CONTRACT.md).
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
    api.registerHttpRoute({
      path: STATUS_PATH,
      auth: 'plugin',
      match: 'exact',
      handler: statusHandler(deps),
    });
  },
});
