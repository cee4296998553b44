/**
 * `npm start`: the whole local stack on embedded defaults — Temporal dev server (with Web UI), then what
 * `system/` builds (database: DATABASE_URL or embedded PGlite, migrations and catalog; worker; API), the pool
 * and its sweeper schedule, and the site. Ctrl-C stops everything, runtimes included; the next start resumes
 * and heals.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describeModel } from '../activities/compute/model-discovery';
import { describeTemporal, localTemporal } from '../config/temporal';
import { NamespaceSetupError } from '../config/temporal-namespace';
import { loadSettings, openSystem, type System } from '../system';
import { payloadCodecOf } from '../system/payload-codec';
import { cachedWorkflowBundle } from '../workers/workflow-bundle';
import { type DevServer, projectRoot, readDevServerSettings, startDevServer } from './temporal-dev';

const startedAt = Date.now();
const log = (msg: string) => console.log(`[start +${((Date.now() - startedAt) / 1000).toFixed(1)}s] ${msg}`);

process.chdir(projectRoot);
// Before starting anything: a bad variable, or outside local development a missing SECRETS_KEY, refuses.
const loaded = loadSettings();
const { vars, env } = loaded;
// An external Temporal when the environment names one (an address, a profile or a config file of
// profiles); else a dev server of our own, reached in plain text whatever the user's temporal.toml says.
const external = Boolean(env.TEMPORAL_ADDRESS || env.TEMPORAL_PROFILE || env.TEMPORAL_CONFIG_FILE);
const devFile = readDevServerSettings();
const dev = {
  ...devFile,
  port: vars.TEMPORAL_DEV_PORT ?? devFile.port,
  uiPort: vars.TEMPORAL_DEV_UI_PORT ?? devFile.uiPort,
};
const devAddress = `${dev.ip}:${dev.port}`;
const settings = external
  ? loaded
  : {
      ...loaded,
      config: {
        ...loaded.config,
        temporal: {
          ...loaded.config.temporal,
          address: devAddress,
          namespace: vars.TEMPORAL_NAMESPACE,
          connection: localTemporal(devAddress, vars.TEMPORAL_NAMESPACE),
        },
      },
    };
const { config } = settings;
fs.mkdirSync(config.dataDir, { recursive: true });

/** The local API key: POOL_API_KEY, or one generated once under the data dir. */
function localApiKey(): string {
  if (vars.POOL_API_KEY) return vars.POOL_API_KEY;
  const file = path.join(config.dataDir, 'pool-api-key');
  if (!fs.existsSync(file)) fs.writeFileSync(file, randomBytes(24).toString('base64url'), { mode: 0o600 });
  return fs.readFileSync(file, 'utf8').trim();
}

let devServer: DevServer | null = null;
let system: System | null = null;
let site: ChildProcess | null = null;
let stopping = false;
async function shutdown(code = 0) {
  if (stopping) return;
  stopping = true;
  log('stopping…');
  if (site?.pid && site.exitCode === null) {
    try {
      process.kill(-site.pid, 'SIGTERM');
    } catch {}
  }
  await system?.close().catch((err) => console.error(err));
  await devServer?.stop().catch((err) => console.error(err));
  log('stopped');
  process.exit(code);
}
process.on('SIGINT', () => void shutdown());
process.on('SIGTERM', () => void shutdown());

// Payload encryption: the Web UI (the browser) decodes through this API's codec endpoint.
const codec = payloadCodecOf(config);
const browserApiHost =
  config.api.host === '0.0.0.0' || config.api.host === '::' ? '127.0.0.1' : config.api.host;
const codecEndpoint = codec ? `http://${browserApiHost}:${config.api.port}/api/codec` : null;

try {
  if (external) {
    log(`Temporal ${describeTemporal(config.temporal.connection)}`);
  } else {
    devServer = await startDevServer(
      {
        ...dev,
        namespace: config.temporal.namespace,
        // Local state lives under DATA_DIR, Temporal's too.
        dbFilename: dev.dbFilename ? path.resolve(config.dataDir, dev.dbFilename) : null,
        ...(codecEndpoint ? { uiCodecEndpoint: codecEndpoint } : {}),
      },
      { logFile: path.join(config.dataDir, 'temporal.log'), log },
    );
    log(`Temporal dev server on ${devServer.address}`);
    if (codecEndpoint && devServer.uiUrl && !config.codec.corsOrigins.includes(devServer.uiUrl)) {
      log(
        `warning: the Web UI (${devServer.uiUrl}) is not in CODEC_CORS_ORIGINS: it cannot decode payloads through ${codecEndpoint}`,
      );
    }
  }

  // The console stays quiet: warnings and errors only, unless LOG_LEVEL=debug.
  system = await openSystem({
    settings,
    seedCatalog: true,
    log: { level: config.logLevel === 'debug' ? 'debug' : 'warn' },
    // One process runs the worker: the Temporal SDK's series on WORKER_METRICS_PORT; ours at the API's /metrics.
    temporalMetrics: true,
  });
  log(
    `database ready (${system.database.kind}${system.database.kind === 'pglite' ? ` under ${config.dataDir}/pglite` : ''}), migrations applied`,
  );

  await system.startWorker({ workflowBundle: await cachedWorkflowBundle(config.dataDir) });
  // Runtimes outlive worker restarts, but Ctrl-C on the whole stack stops them; their state stays.
  const running = system;
  running.onClose(() => running.stopLocalRuntimes());
  log(
    `worker polling ${config.temporal.taskQueue}${system.temporalMetrics ? ` (Temporal SDK metrics on http://${system.temporalMetrics}/metrics)` : ''}`,
  );

  const apiKey = localApiKey();
  await system.startApi({ apiKey });

  // The environment's settings, applied to the pool (a declared value that changed since the last start wins;
  // an unchanged one keeps what an operator set at run time).
  const pool = await system.ensurePool();
  const changed = pool?.changed.length ? ` (changed: ${pool.changed.join(', ')})` : '';
  const runtime = vars.LOCAL_RUNTIME;
  const model = describeModel(system.activityDeps.runtimeEnv, system.modelServer);
  const modelNote =
    runtime === 'standin'
      ? ''
      : model === 'none'
        ? ', no model: agents answer how to set OPENROUTER_API_KEY or MODEL_BASE_URL'
        : `, model ${model}`;
  log(
    `pool "${config.pool.name}" warming to ${pool?.settings.targetIdle ?? config.pool.targetIdle} idle${changed} (${config.computeProvider} compute, ${runtime} runtime${modelNote})`,
  );

  if (fs.existsSync('site/node_modules') && vars.SITE === 'on') {
    site = spawn('npm', ['run', 'start'], {
      cwd: 'site',
      stdio: ['ignore', 'inherit', 'inherit'],
      detached: true,
      env: {
        ...process.env,
        HOST: '127.0.0.1',
        PORT: String(vars.SITE_PORT),
        POOL_API_URL: config.api.publicUrl,
        POOL_API_KEY: apiKey,
        TEMPORAL_UI_URL: devServer?.uiUrl ?? vars.TEMPORAL_UI_URL ?? 'http://localhost:8233',
        TEMPORAL_NAMESPACE: config.temporal.namespace,
      },
    });
  }

  console.log(`
  convos-agents is running
    API          ${config.api.publicUrl}   (docs: ${config.api.publicUrl}/api/docs)
    API key      ${vars.POOL_API_KEY ? 'POOL_API_KEY' : `in ${path.join(config.dataDir, 'pool-api-key')}`} (a secret: never printed)
    Temporal UI  ${devServer?.uiUrl ?? '(external Temporal)'}${devServer?.uiUrl ? `/namespaces/${config.temporal.namespace}/workflows` : ''}
    Site         ${site ? `http://127.0.0.1:${vars.SITE_PORT} (building…)` : vars.SITE === 'on' ? '(site not installed)' : '(off: SITE=off)'}
    Payloads     ${codec ? `encrypted (key ${codec.keyId}); the Web UI decodes through ${codecEndpoint}` : 'plaintext (PAYLOAD_ENCRYPTION_KEY not set)'}
  Try:  curl ${config.api.publicUrl}/api/pool/counts
        curl -H "Authorization: Bearer $(cat ${path.join(config.dataDir, 'pool-api-key')})" ${config.api.publicUrl}/api/pool/agents
  Ctrl-C stops everything.
`);
} catch (err) {
  console.error(err instanceof NamespaceSetupError ? err.message : err);
  await shutdown(1);
}
