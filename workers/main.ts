/**
 * The worker process: `npm run worker`. Ensures its pool (the pool workflow and the sweeper Schedule), then runs
 * the workflows and activities of the configured task queue (everything it runs on is built by `system/`).
 * It answers `/healthz` and `/readyz` on WORKER_HEALTH_HOST:WORKER_HEALTH_PORT from the start (ready once it
 * polls). On SIGTERM/SIGINT it drains through the SDK's graceful shutdown (running activities get
 * WORKER_SHUTDOWN_GRACE_MS; `/readyz` answers 503 meanwhile), closes and exits 0 (system/shutdown.ts).
 */
import { describeTemporal } from '../config/temporal';
import { NamespaceSetupError } from '../config/temporal-namespace';
import { loadSettings, openSystem, type RunningWorker, type System } from '../system';
import { onShutdownSignals } from '../system/shutdown';
import { startHealthServer } from './health-server';
import { tuningInForce } from './process-tuning';

const settings = loadSettings();
const { healthHost, healthPort, shutdownGraceMs } = settings.config.worker;
let running: RunningWorker | null = null;
let built: System | null = null;
// First, so that a probe sees the process up (and not ready) while it connects and bundles the workflows. A
// port in use (a second worker on the same host) costs this worker its probes, not its work: it says so.
let healthProblem: unknown = null;
const health =
  healthPort > 0
    ? await startHealthServer({
        host: healthHost,
        port: healthPort,
        unready: async () => (running ? running.unready() : ['starting']),
        metrics: { registry: () => built?.metrics ?? null, bearer: settings.config.metricsBearer },
      }).catch((err: unknown) => {
        healthProblem = err;
        return null;
      })
    : null;
// The Temporal SDK's own series on WORKER_METRICS_HOST:WORKER_METRICS_PORT (core's exporter).
const system = await openSystem({ settings, temporalMetrics: true });
built = system;
if (healthProblem)
  system.logger.error({ err: healthProblem }, 'no health server: /healthz and /readyz are off');
let stopping: Promise<void> | null = null;
const stop = () => {
  // The SDK has begun the worker's shutdown on the signal too; `stop` waits for it (and starts it otherwise).
  stopping ??= (async () => {
    await running?.stop();
    await system.close();
    await health?.close();
  })();
  return stopping;
};
// Past the SDK's grace time the running activities are cancelled; give them a little longer to wind up.
onShutdownSignals({ logger: system.logger, deadlineMs: shutdownGraceMs + 10_000, drain: stop });

running = await system.startWorker().catch(async (err) => {
  // A namespace without the search attributes: say what to run, not a stack trace.
  if (!(err instanceof NamespaceSetupError)) throw err;
  system.logger.fatal(err.message);
  await stop();
  process.exit(1);
});
// Every worker brings up its pool and applies the settings its environment declares (update-with-start:
// replicas starting together race harmlessly): a split deployment needs nothing but `npm run worker` and
// `npm run api`, and a changed setting takes effect with the next worker start.
const pool = await system.ensurePool();
// Set by `npm run worker` before the process starts (workers/process-tuning.ts): a worker started some other way
// holds hundreds of MB more with its workflows, so say so.
const memory = tuningInForce();
if (Object.values(memory).includes(null))
  system.logger.warn(
    { memory },
    'the worker runs without its malloc settings (MALLOC_ARENA_MAX, MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_) or --max-semi-space-size (start it with `npm run worker`): expect a larger RSS',
  );
system.logger.info(
  {
    pool: pool?.settings,
    changed: pool?.changed,
    overridden: pool?.overridden,
    retiring: pool?.retiring,
    health: health?.url,
    temporalMetrics: system.temporalMetrics,
    memory,
    workflowStackFrames: system.config.worker.workflowStackFrames,
  },
  `worker polling ${system.config.temporal.taskQueue} on ${describeTemporal(system.config.temporal.connection)}`,
);
let code = 0;
// Resolves after SIGINT/SIGTERM (the SDK shuts the worker down) and the drain; rejects if the worker failed.
await running.finished.catch((err: unknown) => {
  system.logger.error({ err }, 'the worker failed');
  code = 1;
});
await stop();
process.exit(code);
