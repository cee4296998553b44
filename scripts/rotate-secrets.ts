/**
 * `npm run secrets:rotate`: the one-shot end of a key rotation (docs/runbook.md §10). Re-encrypts every stored
 * secret under SECRETS_KEY, reading with SECRETS_KEY_OLD; exits 1 when a row no configured key opens.
 */
import { reencryptStoredSecrets } from '../activities/secret-store';

const report = await reencryptStoredSecrets();
if (report.failed.length) process.exitCode = 1;
