/**
 * The API process on its own: `npm run api` (`npm start` runs it in-process). Needs POOL_API_KEY; everything
 * else it runs on is built by `system/`. On SIGTERM/SIGINT it drains (system/shutdown.ts): `/readyz` answers
 * 503 at once, requests are still served for API_SHUTDOWN_DELAY_MS, then it stops accepting connections, the
 * requests in flight (claims) finish and get their answers, and it exits 0 — or 1 after API_SHUTDOWN_GRACE_MS.
 */
import { loadSettings, openSystem } from '../system';
import { onShutdownSignals } from '../system/shutdown';

const settings = loadSettings();
const apiKey = settings.vars.POOL_API_KEY;
if (!apiKey) throw new Error('POOL_API_KEY is required');
const system = await openSystem({ settings, seedCatalog: true });
const api = await system.startApi({ apiKey });
const { shutdownDelayMs, shutdownGraceMs } = settings.config.api;
onShutdownSignals({
  logger: system.logger,
  deadlineMs: shutdownGraceMs,
  drain: async () => {
    await api.drain({ delayMs: shutdownDelayMs });
    await system.close();
  },
});
system.logger.info({ url: api.url }, 'api listening');
