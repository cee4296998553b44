/**
 * Configuration. Every environment variable the pool's processes read is declared once in `EnvSchema` — its
 * type, default, bounds and meaning — with the embedded defaults that let `npm start` run with nothing set.
 * `parseEnv` validates an environment against it (every problem named in one error), `loadConfig` shapes the
 * result into `Config`. README.md's configuration table is the user-facing list of the same variables
 * (`config/env.test.ts` keeps the two in step).
 */
import { type Static, type TSchema, type TUnsafe, Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import type { InstanceTimings } from '../workflows/types';

export type Env = Record<string, string | undefined>;

const MAX = Number.MAX_SAFE_INTEGER;

/** An integer in `[min, max]`. */
const int = (fallback: number, min: number, max: number, description: string) =>
  Type.Integer({ default: fallback, minimum: min, maximum: max, description });
/** A number (fractions allowed) in `[min, max]`. */
const num = (fallback: number, min: number, max: number, description: string) =>
  Type.Number({ default: fallback, minimum: min, maximum: max, description });
const text = (fallback: string, description: string) => Type.String({ default: fallback, description });
/** An optional string; `secret` ones are never echoed in errors. */
const optional = (description: string, opts: { secret?: boolean } = {}) =>
  Type.Optional(Type.String({ description, ...(opts.secret ? { secret: true } : {}) }));
/** One of `values` (typed as their union). */
function oneOf<const T extends readonly string[]>(
  values: T,
  opts: { default?: T[number]; description: string },
): TUnsafe<T[number]> {
  return Type.Union(
    values.map((v) => Type.Literal(v)),
    opts,
  ) as unknown as TUnsafe<T[number]>;
}

export const XMTP_ENVS = ['dev', 'production', 'local', 'off'] as const;
export type XmtpEnv = (typeof XMTP_ENVS)[number];
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Every variable, once. Unset and empty mean the same: the default (or nothing, for optional ones). */
export const EnvSchema = Type.Object({
  // ── deployment and local state ───────────────────────────────────────────────────────────────────────
  POOL_ENVIRONMENT: text(
    'local',
    'the deployment, shown by /api/pool/info; anything but `local` requires SECRETS_KEY',
  ),
  POOL_VERSION: text('0.1.0', 'the version shown by /api/pool/info and the OpenAPI document'),
  DATA_DIR: text(
    '.data',
    'local state: PGlite, the Temporal db, instance state dirs, the local API key and secrets key',
  ),
  DATABASE_URL: optional(
    'Postgres for the read model, claims, catalog and audit trail; unset: embedded PGlite under DATA_DIR',
    { secret: true },
  ),
  DATABASE_MIGRATIONS: oneOf(['apply', 'verify'] as const, {
    default: 'apply',
    description:
      'apply: each process applies pending migrations at start (under a lock); verify: it only checks, and ' +
      'refuses to start until `npm run db:migrate` has run. Either way a schema newer than the code is refused',
  }),
  LOG_LEVEL: oneOf(LOG_LEVELS, { default: 'info', description: 'log level of the worker and the API' }),

  // ── Temporal ──────────────────────────────────────────────────────────────────────────────────────────
  TEMPORAL_ADDRESS: text(
    '127.0.0.1:7233',
    'Temporal frontend; when set, `npm start` uses it instead of starting a dev server',
  ),
  TEMPORAL_NAMESPACE: text('default', 'Temporal namespace'),
  TEMPORAL_TASK_QUEUE: text('convos-agents', 'task queue of the worker'),
  TEMPORAL_CLI: optional('path of the `temporal` binary (else PATH, else the cached build)'),
  TEMPORAL_UI_URL: optional(
    "the Temporal Web UI the site links to when `npm start` uses an external Temporal (else the dev server's)",
  ),

  // ── the pool ──────────────────────────────────────────────────────────────────────────────────────────
  POOL_NAME: text('local', 'the pool (`pool-<name>` workflow, `reconcile-<name>` schedule)'),
  POOL_TARGET_IDLE: int(2, 0, 1000, 'idle instances to keep warm (applied on start when set)'),
  POOL_MAX_TOTAL: int(20, 1, 10_000, 'upper bound on live instances (applied on start when set)'),
  POOL_BREAKER_THRESHOLD: int(5, 1, MAX, 'consecutive start failures that stop warming'),
  POOL_BREAKER_COOLDOWN_MS: int(60_000, 0, MAX, 'wait before one trial start while the breaker is open'),
  RECONCILE_INTERVAL_MS: int(5 * 60_000, 1000, MAX, 'the sweeper schedule'),
  HEALTH_SWEEPER_SHARD_SIZE: int(
    500,
    1,
    100_000,
    'instances per health-sweeper shard (one long-running activity each; shards = POOL_MAX_TOTAL / this)',
  ),

  // ── instance lifecycle ────────────────────────────────────────────────────────────────────────────────
  INSTANCE_START_DEADLINE_MS: int(
    15 * 60_000,
    1,
    MAX,
    'a start not ready by then is compensated and replaced',
  ),
  INSTANCE_HEALTH_INTERVAL_MS: int(
    15_000,
    10,
    MAX,
    "the health sweeper's checks of idle and claimed instances (detection ≤ this × INSTANCE_HEALTH_FAILURES)",
  ),
  INSTANCE_HEALTH_FAILURES: int(
    3,
    1,
    MAX,
    'failed checks in a row before idle → replaced, claimed → crashed',
  ),
  INSTANCE_IDLE_TTL_MS: int(
    7 * 24 * 3600_000,
    0,
    MAX,
    'idle instances older than this are recycled (0: never)',
  ),
  INSTANCE_CLAIMED_TTL_MS: int(0, 0, MAX, 'claimed instances are destroyed after this (0: never)'),
  INSTANCE_MAX_RESTARTS: int(3, 0, MAX, 'restarts of a crashed instance before it is `failed`'),
  INSTANCE_STEP_MAX_ATTEMPTS: int(5, 1, MAX, 'attempts of a provider step before giving up'),
  INSTANCE_MAX_HISTORY_EVENTS: int(10_000, 100, 40_000, 'history length at which instances continue as new'),

  // ── compute ───────────────────────────────────────────────────────────────────────────────────────────
  COMPUTE_PROVIDER: text(
    'local',
    'where instances run: `local` (one process per instance on this machine) or `railway` (a project per instance)',
  ),
  LOCAL_RUNTIME: oneOf(['openclaw', 'standin'] as const, {
    default: 'openclaw',
    description:
      'what the local provider runs: `openclaw` (the real runtime, with or without a model) or `standin` (the contract stand-in, for tests and load benchmarks)',
  }),
  RAILWAY_API_TOKEN: optional('Railway account/workspace token; required for COMPUTE_PROVIDER=railway', {
    secret: true,
  }),
  RAILWAY_WORKSPACE_ID: optional('workspace the instance projects are created in'),
  RAILWAY_RUNTIME_IMAGE: text(
    'ghcr.io/convos-agents/runtime:latest',
    'the runtime image (built from runtime/Dockerfile)',
  ),
  RAILWAY_CPU: num(2, 0.1, 32, "vCPUs of each instance's service"),
  RAILWAY_MEMORY_GB: num(2, 0.5, 64, "memory (GB) of each instance's service"),
  RAILWAY_GRAPHQL_URL: text('https://backboard.railway.com/graphql/v2', 'the Railway API endpoint'),

  // ── per-instance resource providers ───────────────────────────────────────────────────────────────────
  OPENROUTER_PROVISIONING_KEY: optional(
    'OpenRouter provisioning key: each instance gets its own capped key (unset: disabled)',
    { secret: true },
  ),
  OPENROUTER_KEY_LIMIT_USD: num(10, 0.01, 100_000, "monthly spending cap of each instance's key"),
  OPENROUTER_BASE_URL: text('https://openrouter.ai/api/v1', 'the OpenRouter API endpoint'),
  AGENTMAIL_API_KEY: optional('an AgentMail inbox per instance (unset: disabled)', { secret: true }),
  AGENTMAIL_DOMAIN: optional("the inboxes' verified domain (unset: AgentMail's default)"),
  AGENTMAIL_BASE_URL: text('https://api.agentmail.to/v0', 'the AgentMail API endpoint'),
  TELNYX_API_KEY: optional('a US number with SMS per instance (unset: disabled)', { secret: true }),
  TELNYX_MESSAGING_PROFILE_ID: optional(
    'the messaging profile every number joins; required with TELNYX_API_KEY',
  ),
  TELNYX_MAX_POOLED_NUMBERS: int(5, 0, 10_000, 'released numbers kept for reuse'),
  TELNYX_BASE_URL: text('https://api.telnyx.com/v2', 'the Telnyx API endpoint'),
  WALLET_KEYS: oneOf(['on', 'off'] as const, {
    default: 'on',
    description: 'a wallet key per instance, generated locally',
  }),

  // ── what every runtime gets ───────────────────────────────────────────────────────────────────────────
  XMTP_ENV: oneOf(XMTP_ENVS, {
    default: 'off',
    description: 'the XMTP network of the agents (`off`: no XMTP, claims return a chatUrl)',
  }),
  MODEL: text('openai/gpt-4o-mini', 'model id for the agents'),
  OPENROUTER_API_KEY: optional('local development: the model key given to local instances', { secret: true }),
  MODEL_BASE_URL: optional('local development: any OpenAI-compatible model server instead'),
  MODEL_API_KEY: optional("local development: that server's key", { secret: true }),

  // ── the API ───────────────────────────────────────────────────────────────────────────────────────────
  API_HOST: text('127.0.0.1', 'where the API listens'),
  API_PORT: int(3001, 1, 65_535, 'where the API listens'),
  POOL_API_URL: optional("the API's URL as instances see it (unset: http://<API_HOST>:<API_PORT>)"),
  POOL_API_KEY: optional('the API key; required for `npm run api` (`npm start` generates one)', {
    secret: true,
  }),
  CLAIM_MAX_WAIT_MS: int(20_000, 0, 60_000, 'default wait for an idle instance'),
  CLAIM_RATE_LIMIT_PER_MINUTE: int(120, 1, MAX, 'claims per minute per client'),
  ANON_CLAIMS_PER_MINUTE: int(
    30,
    0,
    100_000,
    'claims for anonymous visitors per minute, across all replicas',
  ),
  ANON_CLAIM_IDLE_TTL_MS: int(24 * 3600_000, 0, MAX, "an anonymous claim's quiet lifetime (0: never)"),
  SELF_EMAIL_PER_HOUR: int(20, 0, 10_000, 'emails one instance may send through the pool per rolling hour'),
  SELF_SMS_PER_HOUR: int(20, 0, 10_000, 'SMS one instance may send through the pool per rolling hour'),
  SELF_EMAIL_POOL_PER_HOUR: int(200, 0, 1_000_000, 'emails all instances together may send per rolling hour'),
  SELF_SMS_POOL_PER_HOUR: int(200, 0, 1_000_000, 'SMS all instances together may send per rolling hour'),

  // ── secrets at rest ───────────────────────────────────────────────────────────────────────────────────
  SECRETS_KEY: optional(
    'base64 32-byte AES-256-GCM key of the secret store; required unless POOL_ENVIRONMENT is local',
    { secret: true },
  ),
  SECRETS_KEY_OLD: optional('previous keys during a rotation, comma-separated base64', { secret: true }),

  // ── `npm start` ───────────────────────────────────────────────────────────────────────────────────────
  SITE: oneOf(['on', 'off'] as const, { default: 'on', description: '`off`: `npm start` runs no site' }),
  SITE_PORT: int(4321, 1, 65_535, "the site's port under `npm start`"),
});

export type EnvVars = Static<typeof EnvSchema>;

type VariableSchema = TSchema & {
  type?: string;
  minimum?: number;
  maximum?: number;
  anyOf?: Array<{ const: string }>;
  secret?: boolean;
};

function expectation(schema: VariableSchema): string {
  if (schema.anyOf) return `one of ${schema.anyOf.map((s) => s.const).join(', ')}`;
  const kind = schema.type === 'integer' ? 'an integer' : 'a number';
  return schema.maximum === MAX
    ? `${kind} of at least ${schema.minimum}`
    : `${kind} between ${schema.minimum} and ${schema.maximum}`;
}

/**
 * The variables of `env`, typed, with defaults filled in. Throws one error naming every variable that is
 * out of its type or bounds (a secret's value is never echoed) and every missing companion variable.
 */
export function parseEnv(env: Env = process.env): EnvVars {
  const out: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [name, schema] of Object.entries(EnvSchema.properties) as Array<[string, VariableSchema]>) {
    const raw = env[name];
    if (raw === undefined || raw.trim() === '') {
      if (schema.default !== undefined) out[name] = schema.default;
      continue;
    }
    const value = schema.type === 'integer' || schema.type === 'number' ? Number(raw) : raw;
    if (Value.Check(schema, value)) out[name] = value;
    else
      problems.push(
        `${name} must be ${expectation(schema)}, got ${schema.secret ? 'another value' : `"${raw}"`}`,
      );
  }
  if (out.COMPUTE_PROVIDER === 'railway' && !out.RAILWAY_API_TOKEN)
    problems.push('COMPUTE_PROVIDER=railway needs RAILWAY_API_TOKEN');
  if (out.TELNYX_API_KEY && !out.TELNYX_MESSAGING_PROFILE_ID)
    problems.push('TELNYX_API_KEY needs TELNYX_MESSAGING_PROFILE_ID');
  if (problems.length === 1) throw new Error(problems[0]);
  if (problems.length > 1) throw new Error(`invalid configuration:\n  ${problems.join('\n  ')}`);
  return out as EnvVars;
}

export interface Config {
  environment: string;
  version: string;
  dataDir: string;
  databaseUrl: string | null;
  databaseMigrations: 'apply' | 'verify';
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
  /** Live instances per health-sweeper shard (workers/ensure-pool.ts). */
  healthSweeperShardSize: number;
  logLevel: LogLevel;
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

function providersConfig(v: EnvVars): ProvidersConfig {
  return {
    railway: v.RAILWAY_API_TOKEN
      ? {
          token: v.RAILWAY_API_TOKEN,
          workspaceId: v.RAILWAY_WORKSPACE_ID ?? null,
          image: v.RAILWAY_RUNTIME_IMAGE,
          endpoint: v.RAILWAY_GRAPHQL_URL,
          cpu: v.RAILWAY_CPU,
          memoryGb: v.RAILWAY_MEMORY_GB,
        }
      : null,
    openrouter: v.OPENROUTER_PROVISIONING_KEY
      ? {
          managementKey: v.OPENROUTER_PROVISIONING_KEY,
          monthlyLimitUsd: v.OPENROUTER_KEY_LIMIT_USD,
          baseUrl: v.OPENROUTER_BASE_URL,
        }
      : null,
    agentmail: v.AGENTMAIL_API_KEY
      ? { apiKey: v.AGENTMAIL_API_KEY, domain: v.AGENTMAIL_DOMAIN ?? null, baseUrl: v.AGENTMAIL_BASE_URL }
      : null,
    telnyx:
      v.TELNYX_API_KEY && v.TELNYX_MESSAGING_PROFILE_ID
        ? {
            apiKey: v.TELNYX_API_KEY,
            messagingProfileId: v.TELNYX_MESSAGING_PROFILE_ID,
            maxPooledNumbers: v.TELNYX_MAX_POOLED_NUMBERS,
            baseUrl: v.TELNYX_BASE_URL,
          }
        : null,
    wallet: v.WALLET_KEYS === 'on',
  };
}

/** The configuration of `env` (validated by `parseEnv`). */
export function loadConfig(env: Env = process.env): Config {
  return configOf(parseEnv(env));
}

/** `Config` from parsed variables. */
export function configOf(v: EnvVars): Config {
  return {
    environment: v.POOL_ENVIRONMENT,
    version: v.POOL_VERSION,
    dataDir: v.DATA_DIR,
    databaseUrl: v.DATABASE_URL ?? null,
    databaseMigrations: v.DATABASE_MIGRATIONS,
    temporal: {
      address: v.TEMPORAL_ADDRESS,
      namespace: v.TEMPORAL_NAMESPACE,
      taskQueue: v.TEMPORAL_TASK_QUEUE,
    },
    pool: {
      name: v.POOL_NAME,
      targetIdle: v.POOL_TARGET_IDLE,
      maxTotal: v.POOL_MAX_TOTAL,
      breakerThreshold: v.POOL_BREAKER_THRESHOLD,
      breakerCooldownMs: v.POOL_BREAKER_COOLDOWN_MS,
    },
    instanceTimings: {
      startDeadlineMs: v.INSTANCE_START_DEADLINE_MS,
      healthIntervalMs: v.INSTANCE_HEALTH_INTERVAL_MS,
      healthFailuresAllowed: v.INSTANCE_HEALTH_FAILURES,
      idleTtlMs: v.INSTANCE_IDLE_TTL_MS,
      claimedTtlMs: v.INSTANCE_CLAIMED_TTL_MS,
      maxRestarts: v.INSTANCE_MAX_RESTARTS,
      stepMaxAttempts: v.INSTANCE_STEP_MAX_ATTEMPTS,
      maxHistoryEvents: v.INSTANCE_MAX_HISTORY_EVENTS,
    },
    // `local` or `railway` (tests register their own stand-in provider under another name).
    computeProvider: v.COMPUTE_PROVIDER,
    xmtpEnv: v.XMTP_ENV,
    model: v.MODEL,
    api: {
      host: v.API_HOST,
      port: v.API_PORT,
      publicUrl: v.POOL_API_URL ?? `http://${v.API_HOST}:${v.API_PORT}`,
      claimRateLimitPerMinute: v.CLAIM_RATE_LIMIT_PER_MINUTE,
      claimMaxWaitMs: v.CLAIM_MAX_WAIT_MS,
      anonymousClaimsPerMinute: v.ANON_CLAIMS_PER_MINUTE,
      anonymousIdleTtlMs: v.ANON_CLAIM_IDLE_TTL_MS,
      selfEmailPerHour: v.SELF_EMAIL_PER_HOUR,
      selfSmsPerHour: v.SELF_SMS_PER_HOUR,
      selfEmailPoolPerHour: v.SELF_EMAIL_POOL_PER_HOUR,
      selfSmsPoolPerHour: v.SELF_SMS_POOL_PER_HOUR,
    },
    reconcileIntervalMs: v.RECONCILE_INTERVAL_MS,
    healthSweeperShardSize: v.HEALTH_SWEEPER_SHARD_SIZE,
    logLevel: v.LOG_LEVEL,
    providers: providersConfig(v),
  };
}
