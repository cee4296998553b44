/**
 * The compute providers this deployment can use, built from configuration: every provider it has the settings
 * for, not only the one new instances go to (COMPUTE_PROVIDER), so that after a switch the instances still on the
 * old provider can be served and torn down. An instance asking for a provider that is not configured fails fast
 * with a clear, non-retryable reason.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Config } from '../../config/env';
import { DockerComputeProvider } from './docker';
import { LocalComputeProvider } from './local';
import { type DiscoveredModelServer, discoverModelServer } from './model-discovery';
import { RailwayComputeProvider } from './railway';
import type { ComputeProvider } from './types';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * What the local provider runs per instance: `LOCAL_RUNTIME` — the real runtime (OpenClaw, the default, with
 * or without a model) or, only when asked for, the contract stand-in (`tools/runtime-standin/`).
 */
export function localRuntime(env: Record<string, string | undefined>): {
  command: string[];
  cwd: string;
  sources: string[];
} {
  const runtime = env.LOCAL_RUNTIME || 'openclaw';
  if (runtime === 'openclaw') {
    // runtime/ is its own package (OpenClaw is 1.2 GB); `node --import tsx` saves a wrapper process per instance.
    const dir = path.join(root, 'runtime');
    return {
      command: [process.execPath, '--import', 'tsx', 'src/main.ts'],
      cwd: dir,
      sources: ['src', 'extensions', 'skills', 'workspace', 'package.json', 'package-lock.json'].map((p) =>
        path.join(dir, p),
      ),
    };
  }
  if (runtime === 'standin') {
    // The contract stand-in (a development tool) runs on plain Node 24 (type stripping): fast and light,
    // for tests and load benchmarks; it answers the control-server contract but runs no agent.
    return {
      command: [process.execPath, path.join(root, 'tools', 'runtime-standin', 'server.ts')],
      cwd: root,
      sources: [path.join(root, 'tools', 'runtime-standin'), path.join(root, 'contracts')],
    };
  }
  throw new Error(`LOCAL_RUNTIME must be openclaw or standin, got "${runtime}"`);
}

export function buildComputeProviders(config: Config, env = process.env): Record<string, ComputeProvider> {
  const providers: Record<string, ComputeProvider> = {};
  {
    // Always available: it needs nothing but this machine.
    const local = new LocalComputeProvider({
      instancesDir: path.resolve(config.dataDir, 'instances'),
      ...localRuntime(env),
    });
    providers[local.name] = local;
  }
  if (config.docker) {
    // One container per instance on this machine's Docker daemon (docs/providers.md#docker).
    const docker = new DockerComputeProvider(config.docker);
    providers[docker.name] = docker;
  }
  const railway = config.providers.railway;
  if (railway) {
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

/**
 * What every runtime gets besides its own id and token: no pool key, no org-wide provider keys. `discovered`:
 * the local model server `localModelServer` found, handed to every instance as its MODEL_BASE_URL.
 */
export function runtimeEnvironment(
  config: Config,
  env = process.env,
  discovered: DiscoveredModelServer | null = null,
): Record<string, string> {
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
  // The pool pays on the instances' behalf (its Bankr key stays here): the runtime offers the payment tools.
  if (config.providers.bankr) out.POOL_PAYMENTS = 'on';
  if (discovered && !out.MODEL_BASE_URL && !out.OPENROUTER_API_KEY) {
    out.MODEL_BASE_URL = discovered.baseUrl;
    // MODEL when the developer set it, else the server's first model (MODEL's default is an OpenRouter id).
    out.MODEL = env.MODEL?.trim() || (discovered.models[0] as string);
  }
  return out;
}

/**
 * The local model server to use when no model is configured: probed (once, by the pool) only for local
 * compute — a Railway instance cannot reach this machine's loopback — and only without OPENROUTER_API_KEY,
 * MODEL_BASE_URL or OpenRouter provisioning (which gives every instance its own key).
 */
export async function localModelServer(
  config: Config,
  env = process.env,
  discover: () => Promise<DiscoveredModelServer | null> = () => discoverModelServer(),
): Promise<DiscoveredModelServer | null> {
  if (config.computeProvider !== 'local' || config.providers.openrouter) return null;
  if (env.OPENROUTER_API_KEY?.trim() || env.MODEL_BASE_URL?.trim()) return null;
  return discover();
}
