/** One way to reach Temporal, for the worker, the API and the scripts. */
import { Client, Connection } from '@temporalio/client';
import { dataConverterOf } from '../system/payload-codec';
import type { Config } from './env';

export async function connectClient(config: Pick<Config, 'temporal' | 'payloadEncryption'>): Promise<Client> {
  const connection = await Connection.connect({ address: config.temporal.address });
  // Payload encryption (PAYLOAD_ENCRYPTION_KEY): the one place every client gets its codec.
  const dataConverter = dataConverterOf(config);
  return new Client({
    connection,
    namespace: config.temporal.namespace,
    ...(dataConverter ? { dataConverter } : {}),
  });
}
