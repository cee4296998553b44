/** One way to reach Temporal, for the worker, the API and the scripts. */
import { Client, Connection } from '@temporalio/client';
import type { Config } from './env';

export async function connectClient(config: Pick<Config, 'temporal'>): Promise<Client> {
  const connection = await Connection.connect({ address: config.temporal.address });
  return new Client({ connection, namespace: config.temporal.namespace });
}
