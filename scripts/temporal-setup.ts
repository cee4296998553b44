/**
 * `npm run temporal:setup`: registers the search attributes the workflows use (config/temporal-namespace.ts) on
 * the configured namespace of an existing Temporal (the same TEMPORAL_* variables and profile as the worker).
 * Idempotent: one already registered with the same type is fine; one of another type is an error. Where the
 * connection may not manage search attributes (Temporal Cloud with a namespace API key), it prints the `tcld`
 * commands that do, and exits 1. Workers refuse to start on a namespace this has not set up.
 */
import { loadConfig } from '../config/env';
import { connectTemporal, describeTemporal } from '../config/temporal';
import { NamespaceSetupError, registerSearchAttributes, typeName } from '../config/temporal-namespace';

const { connection: temporal, namespace } = loadConfig().temporal;
console.log(`Temporal ${describeTemporal(temporal)}`);
const connection = await connectTemporal(temporal);
try {
  const { added, present } = await registerSearchAttributes(connection.operatorService, namespace);
  for (const a of present) console.log(`  ✓ ${a.name} (${typeName(a.type)}) registered already`);
  for (const a of added) console.log(`  + ${a.name} (${typeName(a.type)}) registered`);
  console.log(
    added.length > 0
      ? `namespace "${namespace}" is set up`
      : `namespace "${namespace}" was set up already: nothing to do`,
  );
} catch (err) {
  if (!(err instanceof NamespaceSetupError)) throw err;
  console.error(err.message);
  process.exitCode = 1;
} finally {
  await connection.close();
}
