/**
 * Configuration. Every environment variable the pool's processes read is declared once in `EnvSchema` — its
 * type, default, bounds and meaning — with the embedded defaults that let `npm start` run with nothing set.
 * `parseEnv` validates an environment against it (every problem named in one error), `loadConfig` shapes the
 * result into `Config`. README.md's configuration table is the user-facing list of the same variables
 * (`config/env.test.ts` keeps the two in step).
 */

import { isIPv4, isIPv6 } from 'node:net';
import { type Static, type TSchema, type TUnsafe, Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { payloadKeyFromBase64, splitKeys } from '../system/payload-codec';
import { WORKFLOW_STACK_FRAMES } from '../workers/workflow-stack-traces';
import { DEFAULT_JOIN_ACCEPT_TIMEOUT_MS, type InstanceTimings } from '../workflows/types';
import { resolveTemporalConnection, type TemporalConnection } from './temporal';

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
  // The connection is Temporal's own environment configuration (config/temporal.ts, `@temporalio/envconfig`):
  // these variables over a TOML profile over our defaults. envconfig reads them itself; they are declared here
  // so that they are validated, listed for operators, and the secret ones never echoed. It also reads
  // `TEMPORAL_GRPC_META_<HEADER>` (a gRPC header per variable), a family no schema can list.
  TEMPORAL_ADDRESS: text(
    '127.0.0.1:7233',
    "Temporal frontend (over the profile's); when set, `npm start` uses it instead of starting a dev server",
  ),
  TEMPORAL_NAMESPACE: text('default', "Temporal namespace (over the profile's)"),
  TEMPORAL_API_KEY: optional('API key (Temporal Cloud); turns TLS on', { secret: true }),
  TEMPORAL_PROFILE: optional('the profile of the TOML file (unset: `default`, when the file has one)'),
  TEMPORAL_CONFIG_FILE: optional(
    'TOML file of connection profiles (unset: `~/.config/temporalio/temporal.toml`, if it exists)',
  ),
  TEMPORAL_TLS: Type.Optional(
    oneOf(['true', 'false', '1', '0'] as const, {
      description: 'TLS on or off (unset: on when an API key or any other TEMPORAL_TLS_* is set, else off)',
    }),
  ),
  TEMPORAL_TLS_CLIENT_CERT_PATH: optional('mTLS: the client certificate (PEM)'),
  TEMPORAL_TLS_CLIENT_CERT_DATA: optional('mTLS: the client certificate itself, instead of a path'),
  TEMPORAL_TLS_CLIENT_KEY_PATH: optional("mTLS: the client certificate's private key (PEM)"),
  TEMPORAL_TLS_CLIENT_KEY_DATA: optional('mTLS: the private key itself, instead of a path', { secret: true }),
  TEMPORAL_TLS_SERVER_CA_CERT_PATH: optional("the CA of the server's certificate (unset: the system's CAs)"),
  TEMPORAL_TLS_SERVER_CA_CERT_DATA: optional('that CA itself, instead of a path'),
  TEMPORAL_TLS_SERVER_NAME: optional(
    "the name in the server's certificate, when it is not the address's host",
  ),
  TEMPORAL_TLS_DISABLE_HOST_VERIFICATION: Type.Optional(
    oneOf(['true', 'false', '1', '0'] as const, {
      description: 'not supported by the TypeScript SDK: `true` is refused (use the server name and CA)',
    }),
  ),
  TEMPORAL_TASK_QUEUE: text('convos-agents', 'task queue of the worker'),
  TEMPORAL_CLI: optional('path of the `temporal` binary (else PATH, else the cached build)'),
  TEMPORAL_UI_URL: optional(
    "the Temporal Web UI the site links to when `npm start` uses an external Temporal (else the dev server's)",
  ),
  TEMPORAL_DEV_PORT: Type.Optional(
    Type.Integer({
      minimum: 1,
      maximum: 65_535,
      description: "`npm start`'s dev server port (else temporal-dev.yaml's)",
    }),
  ),
  TEMPORAL_DEV_UI_PORT: Type.Optional(
    Type.Integer({
      minimum: 1,
      maximum: 65_535,
      description: "`npm start`'s dev server Web UI port (else temporal-dev.yaml's)",
    }),
  ),

  // ── the pool ──────────────────────────────────────────────────────────────────────────────────────────
  POOL_NAME: text('local', 'the pool (`pool-<name>` workflow, `reconcile-<name>` schedule)'),
  POOL_TARGET_IDLE: int(2, 0, 1000, 'idle instances to keep warm (applied on start when set)'),
  POOL_MAX_TOTAL: int(20, 1, 10_000, 'upper bound on live instances (applied on start when set)'),
  POOL_BREAKER_THRESHOLD: int(5, 1, MAX, 'consecutive start failures that stop warming'),
  POOL_UPGRADE_BATCH: int(10, 1, 1000, 'replacements starting at once while older instances retire'),
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
  INSTANCE_JOIN_ACCEPT_TIMEOUT_MS: int(
    DEFAULT_JOIN_ACCEPT_TIMEOUT_MS,
    1,
    MAX,
    'a claim joining a conversation whose creator has not let the agent in by then is destroyed',
  ),

  // ── compute ───────────────────────────────────────────────────────────────────────────────────────────
  COMPUTE_PROVIDER: text(
    'local',
    'where instances run: `local` (one process per instance on this machine), `docker` (one container per instance on this machine) or `railway` (a project per instance)',
  ),
  LOCAL_RUNTIME: oneOf(['openclaw', 'standin'] as const, {
    default: 'openclaw',
    description:
      'what the local provider runs: `openclaw` (the real runtime, with or without a model) or `standin` (the contract stand-in, for tests and load benchmarks)',
  }),
  DOCKER_RUNTIME_IMAGE: optional(
    'the runtime image of the docker provider (unset: `convos-agents-runtime:latest`, what `npm run image:build` tags); setting it, or COMPUTE_PROVIDER=docker, enables the provider',
  ),
  DOCKER_MEMORY_MB: int(2048, 256, 1_048_576, 'memory limit of each instance container (MB, no swap)'),
  DOCKER_CPUS: num(1, 0.1, 256, 'CPU limit of each instance container (fractions allowed)'),
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
  AGENTMAIL_WEBHOOK_SECRET: optional(
    "the AgentMail webhook's signing secret (`whsec_…`, from `npm run webhooks:setup`); unset: inbound email is off",
    { secret: true },
  ),
  TELNYX_PUBLIC_KEY: optional(
    "the Telnyx account's public key (base64), which verifies its webhooks; unset: inbound SMS is off",
  ),
  BANKR_API_KEY: optional(
    "the pool's Bankr Wallet API key: instances pay in USDC on Base through the pool (unset: payments are off)",
    { secret: true },
  ),
  BANKR_BASE_URL: text('https://api.bankr.bot', 'the Bankr API endpoint'),
  PAYMENTS_DAILY_CAP_USD: num(
    20,
    0.01,
    1_000_000,
    'what one instance may pay through the pool in any rolling 24 hours (USD = USDC), held transfers included',
  ),
  PAYMENTS_CONFIRM_ABOVE_USD: num(
    5,
    0,
    1_000_000,
    'a transfer above this is held until someone in the conversation says back its one-time code (0: every one)',
  ),
  WALLET_KEYS: oneOf(['on', 'off'] as const, {
    default: 'off',
    description:
      'a wallet key per instance, generated locally and kept in the secret store; never handed to the runtime',
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
  SELF_MAIL_READS_PER_HOUR: int(
    120,
    0,
    100_000,
    'reads of its own inbox (lists, messages, threads) one instance may make through the pool per rolling hour',
  ),
  API_SHUTDOWN_DELAY_MS: int(
    0,
    0,
    MAX,
    'on SIGTERM: /readyz answers 503 this long while requests are still served, before the API stops accepting',
  ),
  API_SHUTDOWN_GRACE_MS: int(
    25_000,
    0,
    MAX,
    'on SIGTERM: the longest the API drains (delay, in-flight requests, closing) before it exits anyway',
  ),

  // ── the worker process ────────────────────────────────────────────────────────────────────────────────
  WORKER_HEALTH_HOST: text('127.0.0.1', 'where `npm run worker` serves /healthz and /readyz'),
  WORKER_HEALTH_PORT: int(
    9465,
    0,
    65_535,
    'where `npm run worker` serves /healthz and /readyz (0: not at all)',
  ),
  WORKER_METRICS_HOST: text(
    '127.0.0.1',
    "where a worker process serves the Temporal SDK's Prometheus metrics (`npm run worker`, `npm start`)",
  ),
  WORKER_METRICS_PORT: int(
    9464,
    0,
    65_535,
    "where a worker process serves the Temporal SDK's Prometheus metrics (0: not at all)",
  ),
  METRICS_BEARER: optional(
    'when set, `/metrics` of the API and the worker require `Authorization: Bearer` with it',
    {
      secret: true,
    },
  ),
  WORKER_MAX_CACHED_WORKFLOWS: int(
    2000,
    10,
    MAX,
    'workflows a worker keeps in memory (sticky); beyond it the least recent are evicted and replay on their next task',
  ),
  WORKER_WORKFLOW_STACK_FRAMES: int(
    WORKFLOW_STACK_FRAMES,
    0,
    200,
    "frames a stack trace keeps in the worker's workflow threads (workers/workflow-stack-traces.ts): the SDK captures one for every promise a workflow creates, at a cost that grows with it; raise it while debugging",
  ),
  WORKER_SHUTDOWN_GRACE_MS: int(
    5_000,
    0,
    MAX,
    'on SIGTERM: how long running activities may finish before the worker cancels them',
  ),

  // ── secrets at rest ───────────────────────────────────────────────────────────────────────────────────
  SECRETS_KEY: optional(
    'base64 32-byte AES-256-GCM key of the secret store; required unless POOL_ENVIRONMENT is local',
    { secret: true },
  ),
  SECRETS_KEY_OLD: optional('previous keys during a rotation, comma-separated base64', { secret: true }),

  // ── payload encryption (what Temporal stores) ─────────────────────────────────────────────────────────
  PAYLOAD_ENCRYPTION_KEY: optional(
    'base64 32-byte AES-256-GCM key: every Temporal payload is encrypted with it (unset: plaintext payloads)',
    { secret: true },
  ),
  PAYLOAD_ENCRYPTION_OLD_KEYS: optional(
    'previous payload keys during a rotation, comma-separated base64: they still decrypt',
    { secret: true },
  ),
  CODEC_CORS_ORIGINS: text(
    'http://127.0.0.1:8233,http://localhost:8233',
    'comma-separated origins of the Temporal Web UIs allowed to call the codec endpoint from a browser',
  ),

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
  if (out.COMPUTE_PROVIDER === 'railway') {
    if (!out.RAILWAY_API_TOKEN) problems.push('COMPUTE_PROVIDER=railway needs RAILWAY_API_TOKEN');
    problems.push(...cloudPoolProblems('railway', out, env));
  }
  if (out.TELNYX_API_KEY && !out.TELNYX_MESSAGING_PROFILE_ID)
    problems.push('TELNYX_API_KEY needs TELNYX_MESSAGING_PROFILE_ID');
  if (
    out.AGENTMAIL_WEBHOOK_SECRET &&
    !/^(whsec_)?[A-Za-z0-9+/]+={0,2}$/.test(String(out.AGENTMAIL_WEBHOOK_SECRET))
  )
    problems.push('AGENTMAIL_WEBHOOK_SECRET must be the webhook secret AgentMail gave (whsec_ and base64)');
  if (out.TELNYX_PUBLIC_KEY && Buffer.from(String(out.TELNYX_PUBLIC_KEY), 'base64').length !== 32)
    problems.push('TELNYX_PUBLIC_KEY must be the base64 of a 32-byte Ed25519 public key');
  if (out.PAYLOAD_ENCRYPTION_OLD_KEYS && !out.PAYLOAD_ENCRYPTION_KEY)
    problems.push('PAYLOAD_ENCRYPTION_OLD_KEYS needs PAYLOAD_ENCRYPTION_KEY');
  for (const origin of String(out.CODEC_CORS_ORIGINS ?? '')
    .split(',')
    .map((o) => o.trim()))
    if (origin && !/^https?:\/\/[A-Za-z0-9.-]+(:\d{1,5})?$/.test(origin))
      problems.push(
        `CODEC_CORS_ORIGINS must be comma-separated origins like http://127.0.0.1:8233 (scheme, host, port; no path), got "${origin.slice(0, 100)}"`,
      );
  // A malformed key is refused here, at startup, naming the variable (never the value).
  const keys: Array<[string, string]> = [];
  if (typeof out.PAYLOAD_ENCRYPTION_KEY === 'string')
    keys.push(['PAYLOAD_ENCRYPTION_KEY', out.PAYLOAD_ENCRYPTION_KEY]);
  for (const [i, key] of splitKeys(out.PAYLOAD_ENCRYPTION_OLD_KEYS as string | undefined).entries())
    keys.push([`PAYLOAD_ENCRYPTION_OLD_KEYS (entry ${i + 1})`, key]);
  for (const [variable, key] of keys) {
    try {
      payloadKeyFromBase64(key, variable);
    } catch (err) {
      problems.push((err as Error).message);
    }
  }
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
  temporal: {
    /** Where the connection goes and the namespace (from the variables, the profile or the defaults), for logs. */
    address: string;
    namespace: string;
    taskQueue: string;
    /** How to connect (TLS, API key, client certificate): `config/temporal.ts`. */
    connection: TemporalConnection;
  };
  pool: {
    name: string;
    targetIdle: number;
    maxTotal: number;
    breakerThreshold: number;
    /** Replacements starting at once while instances of an older runtime version or provider retire. */
    upgradeBatch: number;
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
    /** Per instance: reads of its own inbox through the pool (each list, message or thread) in any rolling hour. */
    selfMailReadsPerHour: number;
    /** SIGTERM: readiness 503 for this long while still serving (a load balancer takes the replica out). */
    shutdownDelayMs: number;
    /** SIGTERM: the whole drain's deadline, after which the process exits anyway. */
    shutdownGraceMs: number;
  };
  /** `/metrics` of the API and the worker's health server: the bearer they require (null: none). */
  metricsBearer: string | null;
  /** The worker process (`npm run worker`). */
  worker: {
    /** Its /healthz and /readyz; port 0: no health server. */
    healthHost: string;
    healthPort: number;
    /** The Temporal SDK's Prometheus exporter (core's own HTTP server); port 0: none. */
    metricsHost: string;
    metricsPort: number;
    /** SIGTERM: how long running activities may finish before they are cancelled (the SDK's grace time). */
    shutdownGraceMs: number;
    /** Workflows kept in memory; the rest replay on their next task (memory against CPU). */
    maxCachedWorkflows: number;
    /** Frames a stack trace keeps in the workflow threads (workers/workflow-stack-traces.ts). */
    workflowStackFrames: number;
  };
  reconcileIntervalMs: number;
  /** Live instances per health-sweeper shard (workers/ensure-pool.ts). */
  healthSweeperShardSize: number;
  logLevel: LogLevel;
  /** Payload encryption (`system/payload-codec.ts`): the keys as given; null when off. */
  payloadEncryption: { key: string; oldKeys: string[] } | null;
  /** The codec endpoint (`/api/codec/*`): the Web UI origins allowed to call it from a browser. */
  codec: { corsOrigins: string[] };
  /** Third-party providers; each is enabled only when its key is set (docs/providers.md). */
  providers: ProvidersConfig;
  /** The container provider on this machine's Docker daemon (COMPUTE_PROVIDER=docker or DOCKER_RUNTIME_IMAGE set). */
  docker: { image: string; memoryMb: number; cpus: number } | null;
  /**
   * Payments through the pool's Bankr account (on when `providers.bankr` is): the per-instance cap over any
   * rolling 24 hours and the amount above which a transfer waits for a confirmation, in micro-USDC.
   */
  /** Integer micro-dollars (exact as numbers up to 9 billion USD; the config stays JSON like every other value). */
  payments: { dailyCapMicros: number; confirmAboveMicros: number };
  /** Verifying the providers' webhooks (inbound email and SMS); each route answers 404 while unset. */
  webhooks: { agentmailSecret: string | null; telnyxPublicKey: string | null };
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
  /** The pool's one Bankr account, which pays on the instances' behalf (`/api/pool/self/payments/*`). */
  bankr: { apiKey: string; baseUrl: string } | null;
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
    bankr: 'BANKR_API_KEY',
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
    bankr: v.BANKR_API_KEY ? { apiKey: v.BANKR_API_KEY, baseUrl: v.BANKR_BASE_URL } : null,
    wallet: v.WALLET_KEYS === 'on',
  };
}

/** The configuration of `env` (validated by `parseEnv`). */
export function loadConfig(env: Env = process.env): Config {
  return configOf(parseEnv(env), env);
}

/**
 * Why a host cannot be reached from an instance running elsewhere (a cloud provider): loopback, private,
 * link-local or carrier-grade NAT addresses, and names that only resolve inside some network. Null: public.
 */
export function unreachableFromCloud(rawUrl: string): string | null {
  let host: string;
  try {
    host = new URL(rawUrl).hostname.replace(/^\[|\]$/g, '').toLowerCase();
  } catch {
    return 'not a URL';
  }
  const v4 = isIPv4(host) ? host.split('.').map(Number) : null;
  if (v4) {
    const [a, b] = v4 as [number, number];
    if (a === 127 || a === 0) return 'a loopback address';
    if (a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168)) return 'a private address';
    if (a === 169 && b === 254) return 'a link-local address';
    if (a === 100 && b >= 64 && b <= 127) return 'a carrier-grade NAT address';
    return null;
  }
  if (isIPv6(host)) {
    if (host === '::1' || host === '::') return 'a loopback address';
    if (/^f[cd]/.test(host)) return 'a private address';
    if (/^fe[89ab]/.test(host)) return 'a link-local address';
    return null;
  }
  if (host === 'localhost' || /\.(localhost|local|internal|lan|home\.arpa)$/.test(host))
    return 'a name that resolves only inside a private network';
  if (!host.includes('.')) return 'a bare host name';
  return null;
}

/**
 * A pool whose instances run on a cloud provider: they must reach the pool's API from outside, run on a network
 * named on purpose, and never share one model key (each gets its own capped key, or none).
 */
function cloudPoolProblems(provider: string, out: Record<string, unknown>, env: Env): string[] {
  const problems: string[] = [];
  const apiUrl = out.POOL_API_URL as string | undefined;
  if (!apiUrl)
    problems.push(
      `COMPUTE_PROVIDER=${provider} needs POOL_API_URL: the API's public URL, which the instances call ` +
        '(self-destruct, email, SMS)',
    );
  else {
    const why = unreachableFromCloud(apiUrl);
    if (why)
      problems.push(`POOL_API_URL must be reachable from ${provider} instances, got ${why} ("${apiUrl}")`);
  }
  if (!env.XMTP_ENV?.trim() || out.XMTP_ENV === 'local')
    problems.push(
      `COMPUTE_PROVIDER=${provider} needs XMTP_ENV set explicitly to dev, production or off (the local ` +
        'default and a local XMTP node mean nothing to a cloud instance)',
    );
  for (const name of ['OPENROUTER_API_KEY', 'MODEL_API_KEY'])
    if (out[name])
      problems.push(
        `${name} is a shared model key and COMPUTE_PROVIDER=${provider} would hand it to every instance: ` +
          `unset it (set OPENROUTER_PROVISIONING_KEY to give each instance its own capped key)`,
      );
  const modelUrl = out.MODEL_BASE_URL as string | undefined;
  const modelWhy = modelUrl ? unreachableFromCloud(modelUrl) : null;
  if (modelWhy)
    problems.push(
      `MODEL_BASE_URL must be reachable from ${provider} instances, got ${modelWhy} ("${modelUrl}")`,
    );
  return problems;
}

/** Dollars (USDC) as integer micro-dollars, its 6 decimals; anything finer is rounded away. */
export function usdMicros(usd: number): number {
  return Math.round(usd * 1_000_000);
}

/** `Config` from parsed variables and the environment they came from (the Temporal connection reads it). */
export function configOf(v: EnvVars, env: Env): Config {
  const temporal = resolveTemporalConnection(env, {
    address: v.TEMPORAL_ADDRESS,
    namespace: v.TEMPORAL_NAMESPACE,
  });
  return {
    environment: v.POOL_ENVIRONMENT,
    version: v.POOL_VERSION,
    dataDir: v.DATA_DIR,
    databaseUrl: v.DATABASE_URL ?? null,
    databaseMigrations: v.DATABASE_MIGRATIONS,
    temporal: {
      address: temporal.address,
      namespace: temporal.namespace,
      taskQueue: v.TEMPORAL_TASK_QUEUE,
      connection: temporal,
    },
    pool: {
      name: v.POOL_NAME,
      targetIdle: v.POOL_TARGET_IDLE,
      maxTotal: v.POOL_MAX_TOTAL,
      breakerThreshold: v.POOL_BREAKER_THRESHOLD,
      upgradeBatch: v.POOL_UPGRADE_BATCH,
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
      joinAcceptTimeoutMs: v.INSTANCE_JOIN_ACCEPT_TIMEOUT_MS,
    },
    // `local`, `docker` or `railway` (tests register their own stand-in provider under another name).
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
      selfMailReadsPerHour: v.SELF_MAIL_READS_PER_HOUR,
      shutdownDelayMs: v.API_SHUTDOWN_DELAY_MS,
      shutdownGraceMs: v.API_SHUTDOWN_GRACE_MS,
    },
    metricsBearer: v.METRICS_BEARER ?? null,
    worker: {
      healthHost: v.WORKER_HEALTH_HOST,
      healthPort: v.WORKER_HEALTH_PORT,
      metricsHost: v.WORKER_METRICS_HOST,
      metricsPort: v.WORKER_METRICS_PORT,
      shutdownGraceMs: v.WORKER_SHUTDOWN_GRACE_MS,
      maxCachedWorkflows: v.WORKER_MAX_CACHED_WORKFLOWS,
      workflowStackFrames: v.WORKER_WORKFLOW_STACK_FRAMES,
    },
    reconcileIntervalMs: v.RECONCILE_INTERVAL_MS,
    healthSweeperShardSize: v.HEALTH_SWEEPER_SHARD_SIZE,
    logLevel: v.LOG_LEVEL,
    payloadEncryption: v.PAYLOAD_ENCRYPTION_KEY
      ? { key: v.PAYLOAD_ENCRYPTION_KEY, oldKeys: splitKeys(v.PAYLOAD_ENCRYPTION_OLD_KEYS) }
      : null,
    codec: {
      corsOrigins: v.CODEC_CORS_ORIGINS.split(',')
        .map((o) => o.trim())
        .filter(Boolean),
    },
    providers: providersConfig(v),
    docker:
      v.COMPUTE_PROVIDER === 'docker' || v.DOCKER_RUNTIME_IMAGE
        ? {
            image: v.DOCKER_RUNTIME_IMAGE ?? 'convos-agents-runtime:latest',
            memoryMb: v.DOCKER_MEMORY_MB,
            cpus: v.DOCKER_CPUS,
          }
        : null,
    payments: {
      dailyCapMicros: usdMicros(v.PAYMENTS_DAILY_CAP_USD),
      confirmAboveMicros: usdMicros(v.PAYMENTS_CONFIRM_ABOVE_USD),
    },
    webhooks: {
      agentmailSecret: v.AGENTMAIL_WEBHOOK_SECRET ?? null,
      telnyxPublicKey: v.TELNYX_PUBLIC_KEY ?? null,
    },
  };
}
