/**
 * The composition root: everything the pool's processes run on, built from configuration in this one place —
 * the configuration and secret keys (`loadSettings`), the redacting logger, the database, the secret store,
 * the Temporal client and the worker's connection, the compute and resource providers, the activities'
 * dependencies and the API's context (`openSystem`). The worker (`workers/main.ts`), the API (`api/main.ts`),
 * `npm start` (`scripts/start.ts`), the test stack (`test/stack.ts`), the benchmarks and the maintenance
 * scripts build through it; tests override parts (stand-in providers, where the log goes).
 */
import type { Client } from '@temporalio/client';
import type { Worker, WorkerOptions } from '@temporalio/worker';
import type { FastifyInstance } from 'fastify';
import type { DestinationStream } from 'pino';
import type { ActivityDeps } from '../activities';
import { buildComputeProviders, localModelServer, runtimeEnvironment } from '../activities/compute';
import { LocalComputeProvider } from '../activities/compute/local';
import type { DiscoveredModelServer } from '../activities/compute/model-discovery';
import type { ComputeProvider } from '../activities/compute/types';
import { activityMetrics } from '../activities/metrics';
import { buildPayments, buildProviders } from '../activities/providers';
import type { ResourceProviders } from '../activities/resources';
import { loadSecretKeys, type SecretKeys, SecretStore } from '../activities/secret-store';
import { buildApp } from '../api/app';
import type { ApiContext } from '../api/context';
import { type ApiLifecycle, checksSettled, temporalReachable } from '../api/routes/health';
import { seedCatalog } from '../catalog/seed';
import { type Config, configOf, type Env, type EnvVars, type LogLevel, parseEnv } from '../config/env';
import { connectClient } from '../config/temporal';
import type { InboxReader } from '../contracts/mail';
import type { EmailSender, LlmKeyAdmin, SmsSender } from '../contracts/resources';
import { type Database, type Db, openDatabase } from '../drizzle/client';
import { createWorker } from '../workers/create-worker';
import { ensurePool, poolSettings } from '../workers/ensure-pool';
import type { PoolSettings, PoolSettingsReport } from '../workflows/types';
import { createLogger, installTemporalLogging, type Logger, temporalLevel, toLogger } from './logging';
import { createRegistry, type Registry } from './metrics';

/** What a process knows before it connects anywhere. */
export interface Settings {
  /** The environment it was read from (a test's own, or `process.env`). */
  env: Env;
  /** Every variable of `config/env.ts`, validated, defaults filled in. */
  vars: EnvVars;
  config: Config;
  secretKeys: SecretKeys;
}

/**
 * Configuration and secret keys. Throws before anything starts on a variable out of its bounds, and,
 * outside local development, on a missing SECRETS_KEY.
 */
export function loadSettings(env: Env = process.env): Settings {
  const vars = parseEnv(env);
  const config = configOf(vars, env);
  return { env, vars, config, secretKeys: loadSecretKeys(env, config.dataDir) };
}

export interface SystemOptions {
  /** Loaded already (`loadSettings`); else loaded from `env`. */
  settings?: Settings;
  /** The environment to load from (default `process.env`). */
  env?: Env;
  /** The process's log: its level (default LOG_LEVEL) and where it goes (default stdout). */
  log?: { level?: LogLevel; destination?: DestinationStream };
  /** Connections of the database pool (Postgres only; default 10). */
  databasePoolSize?: number;
  /** Seed the template catalog once the database is open (processes that serve the API). */
  seedCatalog?: boolean;
  /** false: no Temporal client (a script that needs only the database and the secrets). */
  temporal?: boolean;
  /** Compute providers instead of the configured ones (tests: the stand-in). */
  compute?: Record<string, ComputeProvider>;
  /** Per-instance resource providers instead of the configured ones; the API's senders follow them. */
  resources?: (db: Db) => ResourceProviders;
  /** The API's email/SMS senders instead of those of the resource providers. */
  senders?: ApiContext['senders'];
  /** The API's payments provider instead of the configured one (BANKR_API_KEY). */
  payments?: ApiContext['payments'];
  /** What every runtime gets instead of `runtimeEnvironment(config)`. */
  runtimeEnv?: Record<string, string>;
  /**
   * Serve the Temporal SDK's Prometheus series on WORKER_METRICS_HOST:WORKER_METRICS_PORT (processes that run a
   * worker: `npm run worker`, `npm start`; default off: an API process has no worker to measure, and a test
   * process installs its runtime once for many stacks).
   */
  temporalMetrics?: boolean;
}

export interface RunningWorker {
  worker: Worker;
  /** Settles when the worker has stopped (after SIGINT/SIGTERM, which the SDK handles, or `stop()`). */
  finished: Promise<void>;
  /** Drains and stops the worker and closes its connection; safe to call twice. */
  stop(): Promise<void>;
  /**
   * Readiness: what keeps the worker from doing its work — `starting`, `draining`, `stopped`, `failed` (it is
   * not polling: its state is not RUNNING), `temporal` (its connection does not answer within 2 s); empty
   * when ready.
   */
  unready(): Promise<string[]>;
}

export interface RunningApi {
  app: FastifyInstance;
  /** Where it listens, e.g. `http://127.0.0.1:3001`. */
  url: string;
  /**
   * The graceful stop: `/readyz` answers 503 at once, requests are still served for `delayMs` (a load
   * balancer takes the replica out meanwhile), then the server stops accepting and waits for the requests in
   * flight (claims finish and get their answer). Safe to call twice.
   */
  drain(opts?: { delayMs?: number }): Promise<void>;
}

export interface System extends Settings {
  logger: Logger;
  /** The process's Prometheus registry: the API serves it at `/metrics`, the worker's health server too. */
  metrics: Registry;
  /** Where the Temporal SDK serves its Prometheus series (`host:port`), null when it does not. */
  readonly temporalMetrics: string | null;
  database: Database;
  db: Db;
  secrets: SecretStore;
  /** The Temporal client (throws when the system was opened with `temporal: false`). */
  temporal: Client;
  compute: Record<string, ComputeProvider>;
  resources: ResourceProviders;
  /** The local model server the instances use when no model is configured (known once the worker started). */
  readonly modelServer: DiscoveredModelServer | null;
  /** What the activities are built from. */
  activityDeps: ActivityDeps;
  /** What the API's routes are built from. */
  apiContext(apiKey: string): ApiContext;
  /** The worker of the configured task queue, running. */
  startWorker(opts?: { workflowBundle?: WorkerOptions['workflowBundle'] }): Promise<RunningWorker>;
  /** The API, listening on the configured host and port unless told otherwise. */
  startApi(opts: { apiKey: string; host?: string; port?: number }): Promise<RunningApi>;
  /**
   * The pool's controller workflow and sweeper Schedule, created when missing, and the configured settings
   * applied to them (`apply: false`: create only, for a process without a worker). Answers what is in force.
   */
  ensurePool(
    overrides?: Partial<PoolSettings>,
    opts?: { apply?: boolean },
  ): Promise<PoolSettingsReport | null>;
  /** Stops every runtime process of the local compute provider (their state stays). */
  stopLocalRuntimes(): Promise<void>;
  /** Something to stop when the system closes (before what was opened earlier). */
  onClose(stop: () => Promise<void>): void;
  /** Stops everything it started, the last opened first: API, worker, Temporal client, database. */
  close(): Promise<void>;
}

/** The API's view of the resource adapters: the ones that can send, read an inbox or raise a cap. */
function apiAdapters(resources: ResourceProviders) {
  const { inbox, phone, llmKey } = resources.enabled;
  return {
    mail: inbox && 'listMessages' in inbox ? (inbox as unknown as InboxReader) : undefined,
    senders: {
      ...(inbox && 'sendEmail' in inbox ? { email: inbox as unknown as EmailSender } : {}),
      ...(phone && 'sendSms' in phone ? { sms: phone as unknown as SmsSender } : {}),
    },
    llmKeys: llmKey && 'raiseLimit' in llmKey ? (llmKey as unknown as LlmKeyAdmin) : undefined,
  };
}

export async function openSystem(opts: SystemOptions = {}): Promise<System> {
  const settings = opts.settings ?? loadSettings(opts.env);
  const { config, env, secretKeys } = settings;
  const logger = createLogger({
    level: opts.log?.level ?? config.logLevel,
    ...(opts.log?.destination ? { destination: opts.log.destination } : {}),
  });
  const stops: Array<() => Promise<void>> = [];
  const close = async () => {
    for (const stop of stops.splice(0).reverse())
      await stop().catch((err) => logger.error({ err }, 'closing failed'));
  };

  try {
    const database = await openDatabase({
      url: config.databaseUrl,
      dataDir: config.dataDir,
      migrations: config.databaseMigrations,
      ...(opts.databasePoolSize ? { poolSize: opts.databasePoolSize } : {}),
    });
    stops.push(() => database.close());
    if (opts.seedCatalog) await seedCatalog(database.db);

    let temporal: Client | null = null;
    let temporalMetrics: string | null = null;
    if (opts.temporal !== false) {
      const runtime = installTemporalLogging(
        temporalLevel(logger.level as LogLevel),
        toLogger(logger),
        opts.temporalMetrics
          ? {
              host: config.worker.metricsHost,
              port: config.worker.metricsPort,
              tags: { pool: config.pool.name },
            }
          : undefined,
      );
      temporalMetrics = runtime.metricsAddress;
      if (runtime.problem) logger.error({ err: runtime.problem }, 'no Temporal SDK metrics');
      const client = await connectClient(config);
      temporal = client;
      stops.push(() => client.connection.close());
    }
    const temporalClient = () => {
      if (!temporal) throw new Error('this system was opened without Temporal');
      return temporal;
    };

    const db = database.db;
    const metrics = createRegistry({ pool: config.pool.name });
    const secrets = new SecretStore(db, secretKeys.current, secretKeys.old);
    const built = opts.resources ? null : buildProviders(config, db);
    const resources = opts.resources?.(db) ?? built!.resources;
    const adapters = built
      ? { senders: built.senders, mail: built.mail, llmKeys: built.llmKeys }
      : apiAdapters(resources);
    const payments = opts.payments ?? buildPayments(config);
    const compute = opts.compute ?? buildComputeProviders(config, env);
    let runtimeEnv = opts.runtimeEnv ?? runtimeEnvironment(config, env);
    // The local model server, probed once when the worker (the only user of runtimeEnv) starts.
    let modelServer: DiscoveredModelServer | null = null;
    let modelProbed = opts.runtimeEnv !== undefined;

    const system: System = {
      ...settings,
      logger,
      metrics,
      get temporalMetrics() {
        return temporalMetrics;
      },
      database,
      db,
      secrets,
      get temporal() {
        return temporalClient();
      },
      compute,
      resources,
      get modelServer() {
        return modelServer;
      },
      get activityDeps(): ActivityDeps {
        return {
          db,
          temporal: temporalClient(),
          secrets,
          compute,
          resources,
          runtimeEnv,
          metrics: activityMetrics(metrics),
        };
      },
      apiContext(apiKey) {
        return {
          db,
          temporal: temporalClient(),
          secrets,
          config,
          apiKey,
          metrics,
          senders: opts.senders ?? adapters.senders,
          ...(adapters.mail ? { mail: adapters.mail } : {}),
          ...(payments ? { payments } : {}),
          ...(adapters.llmKeys ? { llmKeys: adapters.llmKeys } : {}),
        };
      },
      async startWorker(workerOpts = {}) {
        if (!modelProbed) {
          modelProbed = true;
          modelServer = await localModelServer(config, env);
          runtimeEnv = runtimeEnvironment(config, env, modelServer);
        }
        const { worker, connection } = await createWorker({
          temporal: config.temporal.connection,
          namespace: config.temporal.namespace,
          warn: (message) => logger.warn(message),
          taskQueue: config.temporal.taskQueue,
          payloadEncryption: config.payloadEncryption,
          deps: system.activityDeps,
          shutdownGraceMs: config.worker.shutdownGraceMs,
          maxCachedWorkflows: config.worker.maxCachedWorkflows,
          workflowStackFrames: config.worker.workflowStackFrames,
          ...(workerOpts.workflowBundle ? { workflowBundle: workerOpts.workflowBundle } : {}),
        });
        const finished = worker.run();
        let stopped: Promise<void> | null = null;
        const stop = () => {
          stopped ??= (async () => {
            // The SDK may already have stopped it (SIGINT/SIGTERM).
            if (worker.getState() === 'RUNNING') worker.shutdown();
            await finished.catch(() => {});
            await connection.close();
          })();
          return stopped;
        };
        stops.push(stop);
        const unready = async () => {
          const state = worker.getState();
          if (state === 'INITIALIZED') return ['starting'];
          if (state === 'FAILED' || state === 'STOPPED') return [state.toLowerCase()];
          if (state !== 'RUNNING') return ['draining']; // STOPPING, DRAINING, DRAINED: shutting down
          return temporalReachable(connection).then(
            () => [],
            () => ['temporal'],
          );
        };
        return { worker, finished, stop, unready };
      },
      async startApi({ apiKey, host = config.api.host, port = config.api.port }) {
        const lifecycle: ApiLifecycle = { draining: false };
        const app = await buildApp(system.apiContext(apiKey), { logger, lifecycle });
        await app.listen({ host, port });
        let drained: Promise<void> | null = null;
        const drain = ({ delayMs = 0 }: { delayMs?: number } = {}) => {
          drained ??= (async () => {
            lifecycle.draining = true;
            if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
            // Stops accepting and waits for the requests in flight; a connection they leave open once answered
            // (a streamed claim's, a client's keep-alive) is closed as soon as it is idle.
            const sweep = setInterval(() => app.server.closeIdleConnections(), 100);
            try {
              await app.close();
            } finally {
              clearInterval(sweep);
            }
            // The Temporal connection closes after this: no retry of a failed readiness check may be pending.
            await checksSettled(lifecycle);
          })();
          return drained;
        };
        stops.push(() => drain());
        const address = app.server.address();
        const bound = typeof address === 'object' && address ? address.port : port;
        return { app, url: `http://${host}:${bound}`, drain };
      },
      async ensurePool(overrides = {}, ensureOpts = {}) {
        // The version new instances get, as their provider tells it now: a changed one rolls the idle pool.
        const provider = compute[overrides.computeProvider ?? config.computeProvider];
        const runtimeVersion = (await provider?.runtimeVersion?.()) ?? null;
        return ensurePool(
          temporalClient(),
          config,
          poolSettings(config, { runtimeVersion, ...overrides }),
          ensureOpts,
        );
      },
      async stopLocalRuntimes() {
        for (const provider of Object.values(compute))
          if (provider instanceof LocalComputeProvider) await provider.stopAll();
      },
      onClose(stop) {
        stops.push(stop);
      },
      close,
    };
    return system;
  } catch (err) {
    await close();
    throw err;
  }
}
