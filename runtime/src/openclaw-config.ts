// The openclaw.json every instance runs with, rebuilt from the environment at each boot (so a new
// image or new credentials apply on restart). Secrets are referenced as ${ENV} and handed to the
// gateway process through its environment, so they are never written to disk.
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { RuntimeEnv } from './env.ts';
import { NO_MODEL_ID } from './no-model.ts';
import { convosExtensionDir, instanceToolsExtensionDir, type StatePaths, skillsDir } from './paths.ts';

/** Environment variable names the config references (the gateway env provides them). */
export const GATEWAY_TOKEN_ENV = 'OPENCLAW_GATEWAY_TOKEN';
/** The runtime's loopback outbound server the instance-tools plugin sends email/SMS, payments and schedules through. */
export const OUTBOUND_URL_ENV = 'CONVOS_OUTBOUND_URL';
// Not MODEL_API_KEY: OpenClaw maps that name to its "meta" provider and tries to install it at boot.
export const MODEL_KEY_ENV = 'CONVOS_MODEL_API_KEY';

export const CUSTOM_PROVIDER_ID = 'model';
/**
 * The provider of the warm-up turn (gateway-warmup.ts): the runtime's own loopback no-model endpoint, so
 * warming the agent while the instance is `starting` never calls (or pays for) the real model.
 */
export const WARMUP_PROVIDER_ID = 'warmup';

export interface OpenClawConfigInput {
  env: RuntimeEnv;
  paths: StatePaths;
  gatewayPort: number;
  /** Base URL (with /v1) of the loopback no-model endpoint the warm-up turn uses; none: no warm-up provider. */
  warmupBaseUrl?: string;
}

function openAiCompatibleProvider(baseUrl: string, model: string, apiKey: string): Record<string, unknown> {
  return {
    baseUrl,
    apiKey,
    api: 'openai-completions',
    timeoutSeconds: 300,
    models: [
      {
        id: model,
        name: model,
        reasoning: false,
        input: ['text'],
        cost: { input: 0, output: 0, cacheRead: 0, cacheWrite: 0 },
        contextWindow: 128000,
        maxTokens: 8192,
      },
    ],
  };
}

/** The provider block and the `<provider>/<model>` reference for the agent. */
function modelConfig(env: RuntimeEnv): { providers: Record<string, unknown>; primary: string } {
  const model = env.model;
  if (model.kind === 'openrouter') {
    // The bundled openrouter provider reads OPENROUTER_API_KEY from the gateway's environment.
    return { providers: {}, primary: `openrouter/${model.model}` };
  }
  // startRuntime points the gateway at the loopback no-model endpoint (no-model.ts) before writing this.
  if (model.kind === 'none')
    throw new Error('no model: start the no-model endpoint and configure it instead');
  return {
    providers: {
      // Keyless local servers still need a non-empty key in the request.
      [CUSTOM_PROVIDER_ID]: openAiCompatibleProvider(
        model.baseUrl,
        model.model,
        model.apiKey ? `\${${MODEL_KEY_ENV}}` : 'none',
      ),
    },
    primary: `${CUSTOM_PROVIDER_ID}/${model.model}`,
  };
}

/**
 * Tool policy for an agent that strangers talk to in a group chat: the `messaging` profile (replying,
 * its own session) plus web search/fetch through its own model key, and nothing that reaches the
 * machine — no shell or processes, no file reads/writes, no UI/browser/nodes, no automation (OpenClaw's
 * cron: scheduled messages are the runtime's own tools) or gateway control, no spawning or messaging other sessions. Deny wins over any allow.
 */
export const TOOL_POLICY = {
  profile: 'messaging',
  alsoAllow: ['web_search', 'web_fetch', 'group:plugins'],
  deny: [
    'group:runtime',
    'group:fs',
    'group:ui',
    'group:nodes',
    'group:automation',
    'sessions_spawn',
    'sessions_send',
    'conversations_send',
    'subagents',
  ],
  elevated: { enabled: false },
  exec: { security: 'deny', ask: 'always' },
  fs: { workspaceOnly: true },
  agentToAgent: { enabled: false },
} as const;

export function buildOpenClawConfig({
  env,
  paths,
  gatewayPort,
  warmupBaseUrl,
}: OpenClawConfigInput): Record<string, unknown> {
  const { providers, primary } = modelConfig(env);
  if (warmupBaseUrl)
    providers[WARMUP_PROVIDER_ID] = openAiCompatibleProvider(warmupBaseUrl, NO_MODEL_ID, 'none');
  const channelEnabled = env.xmtpEnv !== 'off';
  // plugins.allow is exclusive: only these load. Fewer plugins = faster boot, less memory, and no
  // browser/file-transfer/computer-use surface on an instance strangers talk to.
  const allow = ['memory-core'];
  if (env.model.kind === 'openrouter') allow.push('openrouter');
  if (channelEnabled) allow.push('convos');
  // Always: the schedule tools (every instance can schedule messages in its conversation); send_email /
  // send_sms / the payment tools in it register only when this instance has an inbox, a number, or a pool
  // that pays (env.email / env.sms / env.payments are off without POOL_API_URL).
  allow.push('instance-tools');
  const loadPaths = [...(channelEnabled ? [convosExtensionDir] : []), instanceToolsExtensionDir];

  const pluginEntries: Record<string, unknown> = {
    // Dreaming runs scheduled model calls over memory: cost without a user asking.
    'memory-core': { config: { dreaming: { enabled: false } } },
  };
  if (channelEnabled) {
    pluginEntries.convos = { enabled: true, hooks: { allowConversationAccess: true } };
  }
  pluginEntries['instance-tools'] = { enabled: true };

  const config: Record<string, unknown> = {
    gateway: {
      mode: 'local',
      bind: 'loopback',
      port: gatewayPort,
      auth: { mode: 'token', token: `\${${GATEWAY_TOKEN_ENV}}` },
      http: { endpoints: { chatCompletions: { enabled: true } } },
      // Nobody opens the operator UI of an instance (the gateway never leaves loopback), and serving it
      // costs a background hash of its assets right after start, which competed with the first turns.
      controlUi: { enabled: false },
    },
    // Instances are replaced, not updated in place; no phoning home at boot.
    update: { checkOnStart: false },
    // Not OpenClaw's automations (agent turns, commands, webhooks, no per-conversation bounds): the agent
    // schedules plain messages in its own conversation with the runtime's tools (src/scheduler.ts).
    cron: { enabled: false },
    logging: { file: path.join(paths.logs, 'openclaw.log') },
    // The configured providers are the whole catalog: no fetch of OpenClaw's remote model catalog at every
    // boot (an outbound call per instance, and background work while the warm-up turn runs).
    models: { mode: 'merge', providers, catalogRefresh: { enabled: false } },
    agents: {
      defaults: {
        model: { primary },
        workspace: paths.workspace,
        // We write the workspace files ourselves; no first-run bootstrap ritual.
        skipBootstrap: true,
        heartbeat: { every: '0m' },
      },
    },
    tools: TOOL_POLICY,
    plugins: {
      allow,
      load: { paths: loadPaths },
      entries: pluginEntries,
    },
    skills: {
      load: { extraDirs: [skillsDir] },
      entries: {
        // Enabled only when this instance has its own inbox / number and a pool to send through.
        email: { enabled: env.email !== null },
        sms: { enabled: env.sms !== null },
      },
    },
  };
  if (channelEnabled) config.channels = { convos: { enabled: true } };
  return config;
}

export function writeOpenClawConfig(input: OpenClawConfigInput): void {
  const { configFile } = input.paths;
  mkdirSync(path.dirname(configFile), { recursive: true, mode: 0o700 });
  const tmp = `${configFile}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(buildOpenClawConfig(input), null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, configFile);
}
