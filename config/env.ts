/**
 * Configuration from the environment, with the embedded defaults that let `npm start` run with nothing set.
 * Every variable is listed in the README's configuration table; keep the two in step.
 */
import type { InstanceTimings } from '../workflows/types';

type Env = Record<string, string | undefined>;

function int(env: Env, name: string, fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`${name} must be an integer between ${min} and ${max}, got "${raw}"`);
  }
  return value;
}

function oneOf<T extends string>(env: Env, name: string, allowed: readonly T[], fallback: T): T {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!(allowed as readonly string[]).includes(raw)) {
    throw new Error(`${name} must be one of ${allowed.join(', ')}, got "${raw}"`);
  }
  return raw as T;
}

export const XMTP_ENVS = ['dev', 'production', 'local', 'off'] as const;
export type XmtpEnv = (typeof XMTP_ENVS)[number];

export interface Config {
  environment: string;
  version: string;
  dataDir: string;
  databaseUrl: string | null;
  temporal: { address: string; namespace: string; taskQueue: string };
  pool: {
    name: string;
    targetIdle: number;
    maxTotal: number;
    breakerThreshold: number;
    breakerCooldownMs: number;
  };
  instanceTimings: InstanceTimings;
  computeProvider: string;
  xmtpEnv: XmtpEnv;
  model: string;
  api: {
    host: string;
    port: number;
    publicUrl: string;
    claimRateLimitPerMinute: number;
    claimMaxWaitMs: number;
    /** Claims for anonymous visitors (`X-Client-Anonymous`): a global budget, and a conversation lifetime. */
    anonymousClaimsPerMinute: number;
    anonymousIdleTtlMs: number;
    /** Per instance: emails / SMS it may send through the pool's proxy in any rolling hour. */
    selfEmailPerHour: number;
    selfSmsPerHour: number;
    /** Across all instances of the pool: emails / SMS the proxy sends in any rolling hour. */
    selfEmailPoolPerHour: number;
    selfSmsPoolPerHour: number;
  };
  reconcileIntervalMs: number;
  logLevel: string;
  /** Third-party providers; each is enabled only when its key is set (docs/providers.md). */
  providers: ProvidersConfig;
}

export interface ProvidersConfig {
  railway: {
    token: string;
    workspaceId: string | null;
    image: string;
    endpoint: string;
    cpu: number;
    memoryGb: number;
  } | null;
  openrouter: { managementKey: string; monthlyLimitUsd: number; baseUrl: string } | null;
  agentmail: { apiKey: string; domain: string | null; baseUrl: string } | null;
  telnyx: { apiKey: string; messagingProfileId: string; maxPooledNumbers: number; baseUrl: string } | null;
  /** Per-instance wallet keys are generated locally: on unless switched off. */
  wallet: boolean;
}

/** Why a provider is off, for the instance records and `/api/pool/info`. */
export function disabledReason(name: keyof ProvidersConfig): string {
  const keys: Record<keyof ProvidersConfig, string> = {
    railway: 'RAILWAY_API_TOKEN',
    openrouter: 'OPENROUTER_PROVISIONING_KEY',
    agentmail: 'AGENTMAIL_API_KEY',
    telnyx: 'TELNYX_API_KEY and TELNYX_MESSAGING_PROFILE_ID',
    wallet: 'WALLET_KEYS=on',
  };
  return `${name} is not configured (${keys[name]} not set)`;
}

function number(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min || value > max) {
    throw new Error(`${name} must be a number between ${min} and ${max}, got "${raw}"`);
  }
  return value;
}

function loadProviders(env: Env): ProvidersConfig {
  const railwayToken = env.RAILWAY_API_TOKEN;
  const openrouterKey = env.OPENROUTER_PROVISIONING_KEY;
  const agentmailKey = env.AGENTMAIL_API_KEY;
  const telnyxKey = env.TELNYX_API_KEY;
  const telnyxProfile = env.TELNYX_MESSAGING_PROFILE_ID;
  if (env.COMPUTE_PROVIDER === 'railway' && !railwayToken) {
    throw new Error('COMPUTE_PROVIDER=railway needs RAILWAY_API_TOKEN');
  }
  if (telnyxKey && !telnyxProfile) throw new Error('TELNYX_API_KEY needs TELNYX_MESSAGING_PROFILE_ID');
  return {
    railway: railwayToken
      ? {
          token: railwayToken,
          workspaceId: env.RAILWAY_WORKSPACE_ID || null,
          image: env.RAILWAY_RUNTIME_IMAGE || 'ghcr.io/convos-agents/runtime:latest',
          endpoint: env.RAILWAY_GRAPHQL_URL || 'https://backboard.railway.com/graphql/v2',
          cpu: number(env, 'RAILWAY_CPU', 2, 0.1, 32),
          memoryGb: number(env, 'RAILWAY_MEMORY_GB', 2, 0.5, 64),
        }
      : null,
    openrouter: openrouterKey
      ? {
          managementKey: openrouterKey,
          monthlyLimitUsd: number(env, 'OPENROUTER_KEY_LIMIT_USD', 10, 0.01, 100_000),
          baseUrl: env.OPENROUTER_BASE_URL || 'https://openrouter.ai/api/v1',
        }
      : null,
    agentmail: agentmailKey
      ? {
          apiKey: agentmailKey,
          domain: env.AGENTMAIL_DOMAIN || null,
          baseUrl: env.AGENTMAIL_BASE_URL || 'https://api.agentmail.to/v0',
        }
      : null,
    telnyx:
      telnyxKey && telnyxProfile
        ? {
            apiKey: telnyxKey,
            messagingProfileId: telnyxProfile,
            maxPooledNumbers: int(env, 'TELNYX_MAX_POOLED_NUMBERS', 5, 0, 10_000),
            baseUrl: env.TELNYX_BASE_URL || 'https://api.telnyx.com/v2',
          }
        : null,
    wallet: oneOf(env, 'WALLET_KEYS', ['on', 'off'] as const, 'on') === 'on',
  };
}

export function loadConfig(env: Env = process.env): Config {
  const dataDir = env.DATA_DIR || '.data';
  const apiPort = int(env, 'API_PORT', 3001, 1, 65535);
  const apiHost = env.API_HOST || '127.0.0.1';
  return {
    environment: env.POOL_ENVIRONMENT || 'local',
    version: env.POOL_VERSION || '0.1.0',
    dataDir,
    databaseUrl: env.DATABASE_URL || null,
    temporal: {
      address: env.TEMPORAL_ADDRESS || '127.0.0.1:7233',
      namespace: env.TEMPORAL_NAMESPACE || 'default',
      taskQueue: env.TEMPORAL_TASK_QUEUE || 'convos-agents',
    },
    pool: {
      name: env.POOL_NAME || 'local',
      targetIdle: int(env, 'POOL_TARGET_IDLE', 2, 0, 1000),
      maxTotal: int(env, 'POOL_MAX_TOTAL', 20, 1, 10000),
      breakerThreshold: int(env, 'POOL_BREAKER_THRESHOLD', 5, 1),
      breakerCooldownMs: int(env, 'POOL_BREAKER_COOLDOWN_MS', 60_000, 0),
    },
    instanceTimings: {
      startDeadlineMs: int(env, 'INSTANCE_START_DEADLINE_MS', 15 * 60_000, 1),
      healthIntervalMs: int(env, 'INSTANCE_HEALTH_INTERVAL_MS', 15_000, 10),
      healthFailuresAllowed: int(env, 'INSTANCE_HEALTH_FAILURES', 3, 1),
      idleTtlMs: int(env, 'INSTANCE_IDLE_TTL_MS', 7 * 24 * 3600_000, 0),
      claimedTtlMs: int(env, 'INSTANCE_CLAIMED_TTL_MS', 0, 0),
      maxRestarts: int(env, 'INSTANCE_MAX_RESTARTS', 3, 0),
      stepMaxAttempts: int(env, 'INSTANCE_STEP_MAX_ATTEMPTS', 5, 1),
      maxHistoryEvents: int(env, 'INSTANCE_MAX_HISTORY_EVENTS', 10_000, 100, 40_000),
    },
    // `local` or `railway` (tests register their own stand-in provider under another name).
    computeProvider: env.COMPUTE_PROVIDER || 'local',
    xmtpEnv: oneOf(env, 'XMTP_ENV', XMTP_ENVS, 'off'),
    model: env.MODEL || 'openai/gpt-4o-mini',
    api: {
      host: apiHost,
      port: apiPort,
      publicUrl: env.POOL_API_URL || `http://${apiHost}:${apiPort}`,
      claimRateLimitPerMinute: int(env, 'CLAIM_RATE_LIMIT_PER_MINUTE', 120, 1),
      claimMaxWaitMs: int(env, 'CLAIM_MAX_WAIT_MS', 20_000, 0, 60_000),
      anonymousClaimsPerMinute: int(env, 'ANON_CLAIMS_PER_MINUTE', 30, 0, 100_000),
      anonymousIdleTtlMs: int(env, 'ANON_CLAIM_IDLE_TTL_MS', 24 * 3600_000, 0),
      selfEmailPerHour: int(env, 'SELF_EMAIL_PER_HOUR', 20, 0, 10_000),
      selfSmsPerHour: int(env, 'SELF_SMS_PER_HOUR', 20, 0, 10_000),
      selfEmailPoolPerHour: int(env, 'SELF_EMAIL_POOL_PER_HOUR', 200, 0, 1_000_000),
      selfSmsPoolPerHour: int(env, 'SELF_SMS_POOL_PER_HOUR', 200, 0, 1_000_000),
    },
    reconcileIntervalMs: int(env, 'RECONCILE_INTERVAL_MS', 5 * 60_000, 1000),
    logLevel: env.LOG_LEVEL || 'info',
    providers: loadProviders(env),
  };
}
