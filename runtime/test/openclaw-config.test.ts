// The generated openclaw.json: what each environment turns on, the tool policy, no secrets on disk,
// and that OpenClaw itself accepts it (`openclaw config validate`, the real CLI).
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { loadEnv } from '../src/env.ts';
import { buildOpenClawConfig, writeOpenClawConfig } from '../src/openclaw-config.ts';
import { instanceToolsExtensionDir, openclawEntry, statePaths } from '../src/paths.ts';

const run = promisify(execFile);
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

// biome-ignore lint/suspicious/noExplicitAny: the generated config is untyped JSON, read by key path only to hand each value to expect
type ConfigTree = Record<string, any>;

const base = { INSTANCE_ID: 'i', INSTANCE_TOKEN: '0123456789abcdef0123', PORT: '18000' };

function configFor(extra: Record<string, string>) {
  const stateDir = mkdtempSync(path.join(tmpdir(), 'oc-config-'));
  dirs.push(stateDir);
  const env = loadEnv({ ...base, STATE_DIR: stateDir, ...extra });
  const paths = statePaths(stateDir);
  return { env, paths, config: buildOpenClawConfig({ env, paths, gatewayPort: 18001 }) as ConfigTree };
}

async function validate(extra: Record<string, string>): Promise<string> {
  const { env, paths } = configFor(extra);
  writeOpenClawConfig({ env, paths, gatewayPort: 18001 });
  const node = process.versions.node.startsWith('24.')
    ? process.execPath
    : path.resolve('node_modules/node/bin/node');
  const { stdout } = await run(node, [openclawEntry, 'config', 'validate'], {
    env: {
      PATH: process.env.PATH ?? '',
      HOME: paths.root,
      OPENCLAW_STATE_DIR: paths.openclaw,
      OPENCLAW_GATEWAY_TOKEN: 't',
    },
    timeout: 120_000,
  });
  return stdout;
}

describe('OpenClaw config', () => {
  it('XMTP off with a local model: no channel plugin, custom provider with the key by reference', () => {
    const { config, paths } = configFor({
      XMTP_ENV: 'off',
      MODEL_BASE_URL: 'http://127.0.0.1:1/v1',
      MODEL_API_KEY: 'sk-secret',
      MODEL: 'm1',
    });
    // instance-tools always: its schedule tools work on the chat page too.
    expect(config.plugins.allow).toEqual(['memory-core', 'instance-tools']);
    expect(config.plugins.load.paths).toEqual([instanceToolsExtensionDir]);
    expect(config.plugins.entries.convos).toBeUndefined();
    expect(config.channels).toBeUndefined();
    expect(config.agents.defaults.model.primary).toBe('model/m1');
    expect(config.models.providers.model.apiKey).toBe('${CONVOS_MODEL_API_KEY}');
    expect(config.agents.defaults.workspace).toBe(paths.workspace);
    expect(config.gateway.http.endpoints.chatCompletions.enabled).toBe(true);
    // Nothing fetched from OpenClaw's servers at boot: no update check, no remote model catalog.
    expect(config.update).toEqual({ checkOnStart: false });
    expect(config.models.catalogRefresh).toEqual({ enabled: false });
    expect(config.gateway.auth).toEqual({ mode: 'token', token: '${OPENCLAW_GATEWAY_TOKEN}' });
    expect(JSON.stringify(config)).not.toContain('sk-secret');
    expect(config.skills.entries).toEqual({ email: { enabled: false }, sms: { enabled: false } });
  });

  it('XMTP on with OpenRouter, an inbox, a number and a pool: channel, instance tools and skills enabled', () => {
    const { config } = configFor({
      XMTP_ENV: 'dev',
      OPENROUTER_API_KEY: 'sk-or-secret',
      MODEL: 'openrouter/anthropic/claude-sonnet-4.5',
      POOL_API_URL: 'http://127.0.0.1:3001',
      AGENTMAIL_INBOX_ID: 'a@agentmail.to',
      TELNYX_PHONE_NUMBER: '+15550001111',
    });
    expect(config.plugins.allow).toEqual(['memory-core', 'openrouter', 'convos', 'instance-tools']);
    expect(config.plugins.entries.convos).toEqual({
      enabled: true,
      hooks: { allowConversationAccess: true },
    });
    expect(config.channels).toEqual({ convos: { enabled: true } });
    expect(config.agents.defaults.model.primary).toBe('openrouter/anthropic/claude-sonnet-4.5');
    expect(config.models.providers).toEqual({});
    expect(config.skills.entries).toEqual({ email: { enabled: true }, sms: { enabled: true } });
    expect(JSON.stringify(config)).not.toMatch(/sk-or-secret/);
  });

  it('an inbox or number without a pool to send through enables no skill (the plugin loads for the schedule tools)', () => {
    const { config } = configFor({
      MODEL_BASE_URL: 'http://127.0.0.1:1/v1',
      AGENTMAIL_INBOX_ID: 'a@agentmail.to',
      TELNYX_PHONE_NUMBER: '+15550001111',
    });
    expect(config.plugins.allow).toContain('instance-tools');
    expect(config.skills.entries).toEqual({ email: { enabled: false }, sms: { enabled: false } });
    const onlyEmail = configFor({
      MODEL_BASE_URL: 'http://127.0.0.1:1/v1',
      POOL_API_URL: 'http://127.0.0.1:3001',
      AGENTMAIL_INBOX_ID: 'a@agentmail.to',
    });
    expect(onlyEmail.config.plugins.allow).toContain('instance-tools');
    expect(onlyEmail.config.skills.entries).toEqual({ email: { enabled: true }, sms: { enabled: false } });
  });

  it('denies shell, files, UI, automation and cross-session tools for strangers', () => {
    const { config } = configFor({ MODEL_BASE_URL: 'http://127.0.0.1:1/v1' });
    expect(config.tools.profile).toBe('messaging');
    for (const denied of [
      'group:runtime',
      'group:fs',
      'group:ui',
      'group:nodes',
      'group:automation',
      'sessions_spawn',
      'sessions_send',
    ]) {
      expect(config.tools.deny).toContain(denied);
    }
    expect(config.tools.elevated).toEqual({ enabled: false });
    expect(config.cron).toEqual({ enabled: false });
    expect(config.agents.defaults.heartbeat).toEqual({ every: '0m' });
  });

  it('is accepted by `openclaw config validate` in both shapes', async () => {
    const [off, on] = await Promise.all([
      validate({ XMTP_ENV: 'off', MODEL_BASE_URL: 'http://127.0.0.1:1/v1', MODEL_API_KEY: 'k' }),
      validate({
        XMTP_ENV: 'dev',
        OPENROUTER_API_KEY: 'k',
        POOL_API_URL: 'http://127.0.0.1:3001',
        AGENTMAIL_INBOX_ID: 'a@b.c',
        TELNYX_PHONE_NUMBER: '+15550001111',
      }),
    ]);
    expect(off).toMatch(/Config valid/);
    expect(on).toMatch(/Config valid/);
  });

  it('boots without a model (kind none: the no-model endpoint answers), refuses a bad port, naming the variable only', () => {
    expect(loadEnv({ ...base, STATE_DIR: '/tmp/x' }).model).toEqual({ kind: 'none' });
    expect(() =>
      buildOpenClawConfig({
        env: loadEnv({ ...base, STATE_DIR: '/tmp/x' }),
        paths: statePaths('/tmp/x'),
        gatewayPort: 1,
      }),
    ).toThrow(/no-model/);
    expect(() => loadEnv({ ...base, PORT: '99999', STATE_DIR: '/tmp/x', OPENROUTER_API_KEY: 'k' })).toThrow(
      /PORT/,
    );
    expect(() =>
      loadEnv({ ...base, INSTANCE_TOKEN: 'short', STATE_DIR: '/tmp/x', OPENROUTER_API_KEY: 'k' }),
    ).toThrow(/INSTANCE_TOKEN/);
    expect(() =>
      loadEnv({ ...base, STATE_DIR: '/tmp/x', OPENROUTER_API_KEY: 'k', XMTP_ENV: 'mainnet' }),
    ).toThrow(/XMTP_ENV/);
  });
});
