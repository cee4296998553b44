import { AsyncResource } from 'node:async_hooks';
import type { OpenClawConfig, PluginRuntime } from 'openclaw/plugin-sdk/channel-core';
import type { Log } from './agent.js';
import { openclawBridge } from './openclaw-bridge.js';
import { acquireService, findService, getOrCreateService, releaseService } from './registry.js';
import { ConvosService } from './service.js';
import { type ConvosSettings, convosSection, resolveSettings } from './settings.js';
import { FileNetwork } from './xmtp/file-network.js';
import { nodeSdkFactory } from './xmtp/node-sdk.js';
import type { XmtpClientFactory } from './xmtp/types.js';

/**
 * Glue between the OpenClaw plugin surface (entry, channel, routes) and the channel service: the
 * current runtime and config, the resolved settings, and get/acquire/release of the shared service.
 */

const RUNTIME_KEY = Symbol.for('convos-agents.convos-channel.runtime');
type Holder = { runtime?: PluginRuntime };

function holder(): Holder {
  const g = globalThis as { [RUNTIME_KEY]?: Holder };
  g[RUNTIME_KEY] ??= {};
  return g[RUNTIME_KEY];
}

/** Called by OpenClaw with each plugin generation's runtime; the newest one wins. */
export function setConvosRuntime(runtime: PluginRuntime): void {
  holder().runtime = runtime;
}

export function convosRuntime(): PluginRuntime {
  const r = holder().runtime;
  if (!r) throw new Error('convos channel runtime not initialized');
  return r;
}

export function currentConfig(): OpenClawConfig {
  const runtime = holder().runtime as
    | (PluginRuntime & { config?: { current?: () => OpenClawConfig } })
    | undefined;
  return (runtime?.config?.current?.() ?? {}) as OpenClawConfig;
}

export function currentSettings(cfg: OpenClawConfig = currentConfig()): ConvosSettings {
  return resolveSettings(convosSection(cfg));
}

export function pluginLog(): Log {
  const logger = (
    holder().runtime as { logging?: { getChildLogger?: (b: Record<string, unknown>) => Log } } | undefined
  )?.logging?.getChildLogger?.({ plugin: 'convos' });
  if (logger) return logger;
  return {
    info: (m) => console.log(m),
    warn: (m) => console.warn(m),
    error: (m) => console.error(m),
  };
}

/**
 * The real XMTP network, unless CONVOS_TEST_NETWORK_DIR selects the file-backed stand-in (end-to-end
 * tests of a real gateway; the control server never passes this variable to the gateway).
 */
function clientFactory(log: Log): XmtpClientFactory {
  const dir = process.env.CONVOS_TEST_NETWORK_DIR;
  if (dir) {
    log.warn(`convos: using the file-backed TEST network at ${dir}, not XMTP`);
    return new FileNetwork(dir).factory();
  }
  return nodeSdkFactory();
}

function create(settings: Extract<ConvosSettings, { enabled: true }>, log: Log): () => ConvosService {
  return () =>
    new ConvosService({
      stateDir: settings.stateDir,
      env: settings.env,
      factory: clientFactory(log),
      agent: openclawBridge({ runtime: convosRuntime, config: currentConfig, log }),
      log,
      joinWaitMs: settings.joinWaitMs,
    });
}

export function existingService(settings: ConvosSettings): ConvosService | undefined {
  return settings.enabled ? findService(settings.stateDir) : undefined;
}

/** For the provision route: the shared service, started if startAccount has not run yet. */
export async function ensureService(
  settings: Extract<ConvosSettings, { enabled: true }>,
): Promise<ConvosService> {
  const log = pluginLog();
  const service = getOrCreateService(settings.stateDir, create(settings, log));
  await service.start();
  return service;
}

/** Called from startAccount: the service's loops run in this (account-lifetime) async context. */
export async function acquire(settings: Extract<ConvosSettings, { enabled: true }>): Promise<ConvosService> {
  const log = pluginLog();
  const service = getOrCreateService(settings.stateDir, create(settings, log));
  const context = new AsyncResource('convos-channel');
  service.setTaskContext((fn) => context.runInAsyncScope(fn));
  await acquireService(settings.stateDir, create(settings, log));
  // A reloaded plugin generation brings a fresh runtime: route new turns through it.
  service.setAgent(openclawBridge({ runtime: convosRuntime, config: currentConfig, log }));
  return service;
}

export function release(settings: Extract<ConvosSettings, { enabled: true }>): Promise<void> {
  return releaseService(settings.stateDir);
}
