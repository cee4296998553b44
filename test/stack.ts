/**
 * The whole stack in one process for tests (and the benchmarks): Postgres (a given database, or a fresh
 * one), Temporal (a given dev server, or its own), and, built by the production wiring (`system/`), the
 * worker, the API on a free port and the pool, with the shared runtime stand-in (`tools/runtime-standin/`)
 * as compute. Every test gets its own pool name and task queue, so stacks never mix.
 */

import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import type { ComputeProvider } from '../activities/compute/types';
import type { ResourceProviders } from '../activities/resources';
import type { ApiContext } from '../api/context';
import type { Config } from '../config/env';
import type { LiveStatus } from '../contracts/instance-status';
import type { Database, Db } from '../drizzle/client';
import { type DevServer, readDevServerSettings, startDevServer } from '../scripts/temporal-dev';
import { loadSettings, openSystem, type RunningWorker } from '../system';
import { installTemporalLogging } from '../system/logging';
import { StandinComputeProvider } from '../tools/runtime-standin/compute-provider';
import { createStandinServer, type StandinFaults } from '../tools/runtime-standin/server';
import type { InstanceTimings, PoolSettings, PoolSettingsReport } from '../workflows/types';
import { createDatabase } from './support/databases';
import { freePort } from './support/ports';
import { stopPool } from './support/stop-pool';

export const artifactsDir = path.resolve(
  path.dirname(new URL(import.meta.url).pathname),
  '..',
  'test-artifacts',
);

export const TEST_TIMINGS: InstanceTimings = {
  startDeadlineMs: 20_000,
  healthIntervalMs: 2_000,
  healthFailuresAllowed: 2,
  idleTtlMs: 0,
  claimedTtlMs: 0,
  maxRestarts: 2,
  stepMaxAttempts: 3,
  maxHistoryEvents: 10_000,
};

export type Counts = Record<LiveStatus, number>;

export interface StackOptions {
  temporalAddress?: string;
  /** The stack's own dev server (no `temporalAddress`) serves its metrics on this port (`action`: billing). */
  temporalMetricsPort?: number;
  databaseUrl?: string;
  /** Where a fresh database is created (no `databaseUrl`): a test's own cluster instead of the machine's. */
  postgresAdminUrl?: string;
  workflowBundlePath?: string;
  targetIdle?: number;
  maxTotal?: number;
  timings?: Partial<InstanceTimings>;
  pool?: Partial<PoolSettings>;
  /** Faults every new stand-in instance starts with. */
  faults?: StandinFaults;
  xmtpEnv?: Config['xmtpEnv'];
  claimRateLimitPerMinute?: number;
  /** What every runtime gets besides the stack's defaults (e.g. the model of a real OpenClaw runtime). */
  runtimeEnv?: Record<string, string>;
  /** More configuration (variables of config/env.ts), e.g. the anonymous claim limits. */
  env?: Record<string, string>;
  /** Run no worker in this process (a test runs it in a child process instead). */
  noWorker?: boolean;
  /**
   * Per-instance resource providers (adapters pointed at provider stand-ins), built once the stack's
   * database is open; none by default.
   */
  resourcesFor?: (db: Db) => ResourceProviders;
  /** Email/SMS senders behind the instance self-service proxy (`/api/pool/self/*`); none by default. */
  senders?: ApiContext['senders'];
  /**
   * The compute provider the worker and the pool use instead of the stand-in one (e.g. a real adapter
   * pointed at a provider stand-in), given the runtime stand-in's URL; `stack.compute` stays the stand-in.
   */
  computeFor?: (runtimeStandinUrl: string) => ComputeProvider;
  /** More compute providers the worker has besides the pool's (e.g. a second stand-in to switch to). */
  extraCompute?: (runtimeStandinUrl: string) => ComputeProvider[];
}

export interface Stack {
  apiUrl: string;
  apiKey: string;
  poolName: string;
  taskQueue: string;
  temporal: Client;
  database: Database;
  compute: StandinComputeProvider;
  /** The resource providers the worker uses (null: none). */
  resources: ResourceProviders | null;
  standinUrl: string;
  secretsKey: string;
  config: Config;
  /** Stand-in faults for instances created from now on. */
  setDefaultFaults(faults: StandinFaults | undefined): void;
  /** Waits until `check` returns true, polling; throws with `what` after the timeout. */
  waitFor(what: string, check: () => Promise<boolean>, timeoutMs?: number): Promise<void>;
  counts(): Promise<Counts>;
  /** Authenticated JSON request to the API. */
  api(method: string, url: string, body?: unknown, headers?: Record<string, string>): Promise<Response>;
  /**
   * Applies the stack's settings with `overrides` to the pool, as a worker start with a changed environment
   * does; answers what is in force.
   */
  declare(overrides?: Partial<PoolSettings>): Promise<PoolSettingsReport | null>;
  stopWorker(): Promise<void>;
  /** A new worker in this process (after `stopWorker`: a worker restart). */
  startWorker(): Promise<void>;
  stop(): Promise<void>;
}

async function freshDatabase(
  adminUrl = process.env.TEST_POSTGRES_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
): Promise<{ url: string; drop: () => Promise<void> }> {
  return createDatabase(adminUrl, 'convos_stack');
}

const LOG_LEVELS = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR'] as const;
type LogLevel = (typeof LOG_LEVELS)[number];
/** Secrets handed out by provider stand-ins etc. during this process, for the post-run scan. */
const extraSecrets: string[] = [];
export function recordSecrets(...values: string[]): void {
  extraSecrets.push(...values);
}

/**
 * Workers log every failed activity attempt at WARN (tests inject failures on purpose): into a file, which
 * the post-run check scans for secrets, and on the console only from TEST_LOG_LEVEL up. Once per process.
 */
function installWorkerLog() {
  const consoleLevel = LOG_LEVELS.indexOf((process.env.TEST_LOG_LEVEL as LogLevel) ?? 'ERROR');
  fs.mkdirSync(path.join(artifactsDir, 'logs'), { recursive: true });
  let logFile: number | null = null;
  installTemporalLogging('WARN', (entry) => {
    logFile ??= fs.openSync(path.join(artifactsDir, 'logs', `worker-${process.pid}.log`), 'a');
    // Errors keep their message (JSON.stringify drops it): that is where a leaked secret would be.
    const meta = JSON.stringify(entry.meta ?? {}, (_k, v) =>
      v instanceof Error ? { ...v, name: v.name, message: v.message } : v,
    );
    const line = `${entry.level} ${entry.message} ${meta}`;
    fs.writeSync(logFile, `${line}\n`);
    if (LOG_LEVELS.indexOf(entry.level) >= consoleLevel) console.error(line);
  });
}

export async function startStack(opts: StackOptions = {}): Promise<Stack> {
  installWorkerLog();
  const cleanups: Array<() => Promise<void>> = [];
  const id = randomUUID().slice(0, 8);
  const poolName = `test-${id}`;
  const taskQueue = `tq-${id}`;
  const apiKey = `test-key-${randomUUID()}`;
  const secretsKey = Buffer.from(randomUUID().replaceAll('-', '')).toString('base64');

  let temporalAddress = opts.temporalAddress;
  let devServer: DevServer | null = null;
  if (!temporalAddress) {
    devServer = await startDevServer({
      ...readDevServerSettings(),
      port: await freePort(),
      headless: true,
      dbFilename: null,
      ...(opts.temporalMetricsPort ? { metricsPort: opts.temporalMetricsPort } : {}),
    });
    temporalAddress = devServer.address;
  }
  let databaseUrl = opts.databaseUrl;
  if (!databaseUrl) {
    const fresh = await freshDatabase(opts.postgresAdminUrl);
    databaseUrl = fresh.url;
    cleanups.push(fresh.drop);
  }

  let defaultFaults: StandinFaults | undefined = opts.faults;
  const standin = createStandinServer({ shared: true, xmtpEnv: opts.xmtpEnv ?? 'off' });
  await new Promise<void>((resolve) => standin.listen(0, '127.0.0.1', resolve));
  const standinUrl = `http://127.0.0.1:${(standin.address() as AddressInfo).port}`;
  const compute = new StandinComputeProvider(standinUrl, { faults: () => defaultFaults });
  const poolCompute = opts.computeFor?.(standinUrl) ?? compute;
  // API logs go to a file that the post-run check scans for secrets.
  fs.mkdirSync(path.join(artifactsDir, 'logs'), { recursive: true });
  const apiLog = fs.createWriteStream(path.join(artifactsDir, 'logs', `api-${poolName}.log`));
  cleanups.push(async () => {
    await new Promise((resolve) => apiLog.end(resolve));
  });

  // The production wiring (system/), on this stack's own configuration and with the stand-ins.
  const settings = loadSettings({
    DATABASE_URL: databaseUrl,
    TEMPORAL_ADDRESS: temporalAddress,
    TEMPORAL_TASK_QUEUE: taskQueue,
    POOL_NAME: poolName,
    POOL_TARGET_IDLE: String(opts.targetIdle ?? 2),
    POOL_MAX_TOTAL: String(opts.maxTotal ?? 50),
    COMPUTE_PROVIDER: 'standin',
    XMTP_ENV: opts.xmtpEnv ?? 'off',
    CLAIM_RATE_LIMIT_PER_MINUTE: String(opts.claimRateLimitPerMinute ?? 100_000),
    SECRETS_KEY: secretsKey,
    // Chosen now, so the URL runtimes report to (POOL_API_URL, from the config) is where the API listens.
    API_HOST: '127.0.0.1',
    API_PORT: String(await freePort()),
    ...opts.env,
  });
  const { config } = settings;
  let resources: ResourceProviders | null = null;
  const system = await openSystem({
    settings,
    log: { level: 'info', destination: apiLog },
    databasePoolSize: 20,
    seedCatalog: true,
    compute: Object.fromEntries(
      [poolCompute, ...(opts.extraCompute?.(standinUrl) ?? [])].map((p) => [p.name, p]),
    ),
    resources: (db) => {
      resources = opts.resourcesFor?.(db) ?? null;
      return resources ?? { enabled: {}, disabled: [] };
    },
    ...(opts.senders ? { senders: opts.senders } : {}),
    runtimeEnv: { POOL_API_URL: config.api.publicUrl, XMTP_ENV: config.xmtpEnv, ...opts.runtimeEnv },
  });
  const { temporal, database } = system;

  let worker: RunningWorker | null = null;
  const newWorker = () =>
    system.startWorker(
      opts.workflowBundlePath
        ? { workflowBundle: { code: fs.readFileSync(opts.workflowBundlePath, 'utf8') } }
        : {},
    );
  if (!opts.noWorker) worker = await newWorker();
  const api = await system.startApi({ apiKey });
  const apiUrl = api.url;

  const declared: Partial<PoolSettings> = {
    computeProvider: poolCompute.name,
    instanceTimings: { ...TEST_TIMINGS, ...opts.timings },
    pollIntervalMs: 1000,
    breakerCooldownMs: 2000,
    ...opts.pool,
  };
  await system.ensurePool(declared, { apply: !opts.noWorker });

  const stopWorker = async () => {
    await worker?.stop();
  };

  const stack: Stack = {
    apiUrl,
    apiKey,
    poolName,
    taskQueue,
    temporal,
    database,
    compute,
    resources,
    standinUrl,
    secretsKey,
    config,
    setDefaultFaults(faults) {
      defaultFaults = faults;
    },
    async waitFor(what, check, timeoutMs = 30_000) {
      const until = Date.now() + timeoutMs;
      for (;;) {
        if (await check()) return;
        if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async counts() {
      return (await (await fetch(`${apiUrl}/api/pool/counts`)).json()) as Counts;
    },
    api(method, url, body, headers = {}) {
      return fetch(`${apiUrl}${url}`, {
        method,
        headers: {
          authorization: `Bearer ${apiKey}`,
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...headers,
        },
        body: body !== undefined ? JSON.stringify(body) : undefined,
      });
    },
    declare(overrides = {}) {
      return system.ensurePool({ ...declared, ...overrides });
    },
    stopWorker,
    async startWorker() {
      worker = await newWorker();
    },
    async stop() {
      // Record every secret this stack handed out; the post-run checks scan all histories for them.
      const seen = (await (await fetch(`${standinUrl}/_standin/secrets`)).json()) as string[];
      fs.mkdirSync(path.join(artifactsDir, 'secrets'), { recursive: true });
      fs.writeFileSync(
        path.join(artifactsDir, 'secrets', `${poolName}.json`),
        JSON.stringify([
          apiKey,
          secretsKey,
          // A stack that encrypts payloads (test/support/payload-histories.ts): its keys are secrets too.
          ...(config.payloadEncryption
            ? [config.payloadEncryption.key, ...config.payloadEncryption.oldKeys]
            : []),
          ...seen,
          ...extraSecrets,
        ]),
      );
      // Stop the pool and every instance workflow of this stack so the shared dev server stays quiet.
      await stopPool(temporal, poolName);
      await system.close();
      await new Promise<void>((resolve) => standin.close(() => resolve()));
      for (const cleanup of cleanups.reverse()) await cleanup();
      await devServer?.stop();
    },
  };
  return stack;
}
