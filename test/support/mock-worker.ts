/**
 * A worker of the run's workflow bundle on a task queue of its own, with mocked activities, against the run's dev
 * server (workflow tests that need no database, runtime or provider).
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { inject } from 'vitest';
import type { Activities } from '../../activities';

export interface MockWorker {
  client: Client;
  taskQueue: string;
  stop(): Promise<void>;
}

export async function startMockWorker(prefix: string, activities: Partial<Activities>): Promise<MockWorker> {
  const address = inject('temporalAddress');
  const connection = await Connection.connect({ address });
  const taskQueue = `${prefix}-${randomUUID().slice(0, 8)}`;
  const worker = await Worker.create({
    connection: await NativeConnection.connect({ address }),
    taskQueue,
    workflowBundle: { code: fs.readFileSync(inject('workflowBundlePath'), 'utf8') },
    activities,
  });
  const running = worker.run();
  return {
    client: new Client({ connection }),
    taskQueue,
    async stop() {
      worker.shutdown();
      await running;
      await connection.close();
    },
  };
}
