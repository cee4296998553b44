/**
 * `npm start`: the whole local stack on embedded defaults — Temporal dev server (with Web UI), database
 * (DATABASE_URL or embedded PGlite), migrations and catalog, worker, API, the pool and its sweeper
 * schedule, and the site. Ctrl-C stops everything, runtimes included; the next start resumes and heals.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { buildComputeProviders, defaultLocalRuntime, runtimeEnvironment } from '../activities/compute';
import { LocalComputeProvider } from '../activities/compute/local';
import { buildProviders } from '../activities/providers';
import { poolWorkflowId } from '../activities/reconcile';
import { loadSecretKeys, SecretStore } from '../activities/secret-store';
import { buildApp } from '../api/app';
import { seedCatalog } from '../catalog/seed';
import { loadConfig } from '../config/env';
import { connectClient } from '../config/temporal';
import { openDatabase } from '../drizzle/client';
import { createWorker } from '../workers/create-worker';
import { ensurePool } from '../workers/ensure-pool';
import { cachedWorkflowBundle } from '../workers/workflow-bundle';
import { setTargetUpdate } from '../workflows/messages';
import { type DevServer, projectRoot, readDevServerSettings, startDevServer } from './temporal-dev';

const startedAt = Date.now();
const log = (msg: string) => console.log(`[start +${((Date.now() - startedAt) / 1000).toFixed(1)}s] ${msg}`);
Runtime.install({ logger: new DefaultLogger('WARN') });

process.chdir(projectRoot);
const config = loadConfig();
fs.mkdirSync(config.dataDir, { recursive: true });
// Before starting anything: outside local development a missing SECRETS_KEY refuses to start.
const secretKeys = loadSecretKeys(process.env, config.dataDir);

/** The local API key: POOL_API_KEY, or one generated once under the data dir. */
function localApiKey(): string {
  if (process.env.POOL_API_KEY) return process.env.POOL_API_KEY;
  const file = path.join(config.dataDir, 'pool-api-key');
  if (!fs.existsSync(file)) fs.writeFileSync(file, randomBytes(24).toString('base64url'), { mode: 0o600 });
  return fs.readFileSync(file, 'utf8').trim();
}

const stops: Array<() => Promise<void>> = [];
let stopping = false;
async function shutdown(code = 0) {
  if (stopping) return;
  stopping = true;
  log('stopping…');
  for (const stop of stops.reverse()) await stop().catch((err) => console.error(err));
  log('stopped');
  process.exit(code);
}
process.on('SIGINT', () => void shutdown());
process.on('SIGTERM', () => void shutdown());

try {
  let devServer: DevServer | null = null;
  if (!process.env.TEMPORAL_ADDRESS) {
    const settings = readDevServerSettings();
    devServer = await startDevServer(
      { ...settings, port: Number(config.temporal.address.split(':')[1] ?? settings.port) || settings.port },
      { logFile: path.join(config.dataDir, 'temporal.log'), log },
    );
    stops.push(() => devServer!.stop());
    log(`Temporal dev server on ${devServer.address}`);
  }

  const database = await openDatabase({ url: config.databaseUrl, dataDir: config.dataDir });
  stops.push(() => database.close());
  await seedCatalog(database.db);
  log(
    `database ready (${database.kind}${database.kind === 'pglite' ? ` under ${config.dataDir}/pglite` : ''}), migrations applied`,
  );

  const temporal = await connectClient(config);
  const secrets = new SecretStore(database.db, secretKeys.current, secretKeys.old);
  const compute = buildComputeProviders(config);
  const providers = buildProviders(config, database.db);
  const { worker, connection } = await createWorker({
    address: config.temporal.address,
    namespace: config.temporal.namespace,
    taskQueue: config.temporal.taskQueue,
    deps: {
      db: database.db,
      temporal,
      secrets,
      compute,
      resources: providers.resources,
      runtimeEnv: runtimeEnvironment(config),
    },
    workflowBundle: await cachedWorkflowBundle(config.dataDir),
  });
  const workerRun = worker.run();
  stops.push(async () => {
    if (worker.getState() === 'RUNNING') worker.shutdown(); // the SDK may already have stopped it on SIGINT
    await workerRun.catch(() => {});
    await connection.close();
  });
  // Runtimes outlive worker restarts, but Ctrl-C on the whole stack stops them; their state stays.
  stops.push(async () => {
    for (const provider of Object.values(compute))
      if (provider instanceof LocalComputeProvider) await provider.stopAll();
  });
  log(`worker polling ${config.temporal.taskQueue}`);

  const apiKey = localApiKey();
  const app = await buildApp(
    {
      db: database.db,
      temporal,
      secrets,
      config,
      apiKey,
      senders: providers.senders,
      ...(providers.llmKeys ? { llmKeys: providers.llmKeys } : {}),
    },
    { logger: { level: config.logLevel === 'debug' ? 'debug' : 'warn' } },
  );
  await app.listen({ port: config.api.port, host: config.api.host });
  stops.unshift(() => app.close());

  await ensurePool(temporal, config);
  if (process.env.POOL_TARGET_IDLE || process.env.POOL_MAX_TOTAL) {
    await temporal.workflow.getHandle(poolWorkflowId(config.pool.name)).executeUpdate(setTargetUpdate, {
      args: [{ targetIdle: config.pool.targetIdle, maxTotal: config.pool.maxTotal }],
    });
  }
  const runtime = process.env.LOCAL_RUNTIME || defaultLocalRuntime(process.env);
  const hint =
    runtime === 'standin' && !process.env.LOCAL_RUNTIME
      ? '; set OPENROUTER_API_KEY or MODEL_BASE_URL for OpenClaw agents'
      : '';
  log(
    `pool "${config.pool.name}" warming to ${config.pool.targetIdle} idle (${config.computeProvider} compute, ${runtime} runtime${hint})`,
  );

  let site: ChildProcess | null = null;
  const sitePort = Number(process.env.SITE_PORT ?? 4321);
  if (fs.existsSync('site/node_modules') && process.env.SITE !== 'off') {
    site = spawn('npm', ['run', 'start'], {
      cwd: 'site',
      stdio: ['ignore', 'inherit', 'inherit'],
      detached: true,
      env: {
        ...process.env,
        HOST: '127.0.0.1',
        PORT: String(sitePort),
        POOL_API_URL: config.api.publicUrl,
        POOL_API_KEY: apiKey,
        TEMPORAL_UI_URL: devServer?.uiUrl ?? process.env.TEMPORAL_UI_URL ?? 'http://localhost:8233',
        TEMPORAL_NAMESPACE: config.temporal.namespace,
      },
    });
    stops.unshift(async () => {
      if (site?.pid && site.exitCode === null) {
        try {
          process.kill(-site.pid, 'SIGTERM');
        } catch {}
      }
    });
  }

  console.log(`
  convos-agents is running
    API          ${config.api.publicUrl}   (docs: ${config.api.publicUrl}/api/docs)
    API key      ${apiKey}   (POOL_API_KEY; stored in ${config.dataDir}/pool-api-key)
    Temporal UI  ${devServer?.uiUrl ?? '(external Temporal)'}${devServer?.uiUrl ? `/namespaces/${config.temporal.namespace}/workflows` : ''}
    Site         ${site ? `http://127.0.0.1:${sitePort} (building…)` : '(site not installed)'}
  Try:  curl ${config.api.publicUrl}/api/pool/counts
  Ctrl-C stops everything.
`);
} catch (err) {
  console.error(err);
  await shutdown(1);
}
