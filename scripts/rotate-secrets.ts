/**
 * `npm run secrets:rotate`: the one-shot end of a key rotation (docs/runbook.md §10). Re-encrypts every stored
 * secret under SECRETS_KEY, reading with SECRETS_KEY_OLD (this deployment's DATABASE_URL and keys, through
 * `system/`); exits 1 when a row no configured key opens.
 */
import { openSystem } from '../system';

const system = await openSystem({ temporal: false, databasePoolSize: 2 });
try {
  const report = await system.secrets.reencryptAll();
  console.log(
    `secrets under key ${system.secretKeys.current.id}: ${report.current} already current, ${report.reencrypted} re-encrypted, ${report.failed.length} not decryptable`,
  );
  for (const f of report.failed) console.log(`  ${f.instanceId} ${f.name}: ${f.error}`);
  if (report.failed.length) process.exitCode = 1;
} finally {
  await system.close();
}
