/**
 * The compute providers this deployment can use, built from configuration. Only configured providers exist;
 * an instance asking for another one fails fast with a clear, non-retryable reason.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Config } from '../../config/env';
import { LocalComputeProvider } from './local';
import type { ComputeProvider } from './types';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The command the local provider runs per instance. */
export function localRuntimeCommand(env: Record<string, string | undefined>): string[] {
  const runtime = env.LOCAL_RUNTIME || 'standin';
  if (runtime === 'standin') {
    // Until the real runtime is wired in, instances run the contract stand-in (plain Node 24, no tsx).
    return [process.execPath, path.join(root, 'test', 'standins', 'runtime-standin.ts')];
  }
  if (runtime === 'openclaw') {
    return [
      process.execPath,
      path.join(root, 'runtime', 'node_modules', 'tsx', 'dist', 'cli.mjs'),
      path.join(root, 'runtime', 'src', 'main.ts'),
    ];
  }
  throw new Error(`LOCAL_RUNTIME must be standin or openclaw, got "${runtime}"`);
}

export function buildComputeProviders(config: Config, env = process.env): Record<string, ComputeProvider> {
  const providers: Record<string, ComputeProvider> = {};
  if (config.computeProvider === 'local') {
    const local = new LocalComputeProvider({
      instancesDir: path.resolve(config.dataDir, 'instances'),
      command: localRuntimeCommand(env),
      cwd: root,
    });
    providers[local.name] = local;
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
  // Local development only: the developer's own model endpoint/key (issue 4 gives per-instance keys).
  for (const name of ['MODEL_BASE_URL', 'MODEL_API_KEY', 'OPENROUTER_API_KEY']) {
    const value = env[name];
    if (value) out[name] = value;
  }
  return out;
}
