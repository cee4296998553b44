/**
 * The compute providers this deployment can use, built from configuration. Only configured providers exist;
 * an instance asking for another one fails fast with a clear, non-retryable reason.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Config } from '../../config/env';
import { LocalComputeProvider } from './local';
import { RailwayComputeProvider } from './railway';
import type { ComputeProvider } from './types';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * The real runtime needs a model to boot: without one configured, the local stack runs the stand-in
 * (claims still work end to end; there is just no agent to talk to).
 */
export function defaultLocalRuntime(env: Record<string, string | undefined>): 'openclaw' | 'standin' {
  return env.OPENROUTER_API_KEY || env.OPENROUTER_PROVISIONING_KEY || env.MODEL_BASE_URL
    ? 'openclaw'
    : 'standin';
}

/**
 * What the local provider runs per instance: `LOCAL_RUNTIME`, else `defaultLocalRuntime` — the real runtime
 * (OpenClaw) or the contract stand-in (`tools/runtime-standin/`).
 */
export function localRuntime(env: Record<string, string | undefined>): { command: string[]; cwd: string } {
  const runtime = env.LOCAL_RUNTIME || defaultLocalRuntime(env);
  if (runtime === 'openclaw') {
    // runtime/ is its own package (OpenClaw is 1.2 GB); `node --import tsx` saves a wrapper process per instance.
    return { command: [process.execPath, '--import', 'tsx', 'src/main.ts'], cwd: path.join(root, 'runtime') };
  }
  if (runtime === 'standin') {
    // The contract stand-in (a development tool) runs on plain Node 24 (type stripping): fast and light,
    // for tests and quick demos; it answers the control-server contract but runs no agent.
    return {
      command: [process.execPath, path.join(root, 'tools', 'runtime-standin', 'server.ts')],
      cwd: root,
    };
  }
  throw new Error(`LOCAL_RUNTIME must be openclaw or standin, got "${runtime}"`);
}

export function buildComputeProviders(config: Config, env = process.env): Record<string, ComputeProvider> {
  const providers: Record<string, ComputeProvider> = {};
  if (config.computeProvider === 'local') {
    const local = new LocalComputeProvider({
      instancesDir: path.resolve(config.dataDir, 'instances'),
      ...localRuntime(env),
    });
    providers[local.name] = local;
  }
  const railway = config.providers.railway;
  if (config.computeProvider === 'railway' && railway) {
    const provider = new RailwayComputeProvider({
      token: railway.token,
      image: railway.image,
      endpoint: railway.endpoint,
      limits: { cpu: railway.cpu, memoryGb: railway.memoryGb },
      ...(railway.workspaceId ? { workspaceId: railway.workspaceId } : {}),
    });
    providers[provider.name] = provider;
  }
  return providers;
}

/** What every runtime gets besides its own id and token: no pool key, no org-wide provider keys. */
export function runtimeEnvironment(config: Config, env = process.env): Record<string, string> {
  const out: Record<string, string> = {
    POOL_API_URL: config.api.publicUrl,
    XMTP_ENV: config.xmtpEnv,
    MODEL: config.model,
  };
  // Local development only: the developer's own model endpoint/key. With OpenRouter provisioning configured,
  // every instance gets its own capped key instead (a resource), never a shared one.
  const shared = config.providers.openrouter ? [] : ['OPENROUTER_API_KEY'];
  for (const name of ['MODEL_BASE_URL', 'MODEL_API_KEY', ...shared]) {
    const value = env[name];
    if (value) out[name] = value;
  }
  return out;
}
