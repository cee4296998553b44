/**
 * The worker process: `npm run worker`. Runs the workflows and activities of the configured task queue
 * (everything it runs on is built by `system/`) until SIGINT/SIGTERM, then drains and closes.
 */
import { openSystem } from '../system';

const system = await openSystem();
const worker = await system.startWorker();
system.logger.info(`worker polling ${system.config.temporal.taskQueue} on ${system.config.temporal.address}`);
await worker.finished; // resolves after SIGINT/SIGTERM (the SDK installs the handlers) and a graceful drain
await system.close();
