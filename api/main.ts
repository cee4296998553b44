/**
 * The API process on its own: `npm run api` (`npm start` runs it in-process). Needs POOL_API_KEY; everything
 * else it runs on is built by `system/`. Stops on SIGINT/SIGTERM.
 */
import { loadSettings, openSystem } from '../system';

const settings = loadSettings();
const apiKey = settings.vars.POOL_API_KEY;
if (!apiKey) throw new Error('POOL_API_KEY is required');
const system = await openSystem({ settings, seedCatalog: true });
await system.startApi({ apiKey });
const close = async () => {
  await system.close();
  process.exit(0);
};
process.on('SIGINT', close);
process.on('SIGTERM', close);
