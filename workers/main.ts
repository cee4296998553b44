/**
 * The worker process: `npm run worker`. Ensures its pool (the pool workflow and the sweeper Schedule), then runs
 * the workflows and activities of the configured task queue (everything it runs on is built by `system/`) until
 * SIGINT/SIGTERM, then drains and closes.
 */
import { describeTemporal } from '../config/temporal';
import { NamespaceSetupError } from '../config/temporal-namespace';
import { openSystem } from '../system';

const system = await openSystem();
const worker = await system.startWorker().catch(async (err) => {
  // A namespace without the search attributes: say what to run, not a stack trace.
  if (!(err instanceof NamespaceSetupError)) throw err;
  system.logger.fatal(err.message);
  await system.close();
  process.exit(1);
});
// Every worker brings up its pool and applies the settings its environment declares (update-with-start:
// replicas starting together race harmlessly): a split deployment needs nothing but `npm run worker` and
// `npm run api`, and a changed setting takes effect with the next worker start.
const pool = await system.ensurePool();
system.logger.info(
  { pool: pool?.settings, changed: pool?.changed, overridden: pool?.overridden, retiring: pool?.retiring },
  `worker polling ${system.config.temporal.taskQueue} on ${describeTemporal(system.config.temporal.connection)}`,
);
await worker.finished; // resolves after SIGINT/SIGTERM (the SDK installs the handlers) and a graceful drain
await system.close();
