/**
 * One Temporal dev server and one fresh Postgres database per test run, the workflow bundle built once, and
 * the run's payload key (stacks that test payload encryption use it, so the post-run checks can decrypt every
 * history); test files get them through vitest's provide/inject.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Client } from '@temporalio/client';
import proto from '@temporalio/proto';
import { bundleWorkflowCode } from '@temporalio/worker';
import type { TestProject } from 'vitest/node';
import { connectTemporal, localTemporal } from '../config/temporal';
import { type DevServer, projectRoot, readDevServerSettings, startDevServer } from '../scripts/temporal-dev';
import { workflowsPath } from '../workers/create-worker';
import { createDatabase } from './support/databases';
import { RUN_PAYLOAD_KEY_FILE } from './support/payload-histories';
import { freePort } from './support/ports';

// @temporalio/proto is CommonJS: take the namespace from its default export.
const { temporal } = proto;

declare module 'vitest' {
  export interface ProvidedContext {
    temporalAddress: string;
    databaseUrl: string;
    workflowBundlePath: string;
    /** PAYLOAD_ENCRYPTION_KEY for stacks that encrypt payloads (the post-run checks decrypt with it). */
    payloadEncryptionKey: string;
  }
}

const adminUrl = process.env.TEST_POSTGRES_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export default async function setup(project: TestProject) {
  const artifacts = path.join(projectRoot, 'test-artifacts');
  fs.mkdirSync(artifacts, { recursive: true });
  fs.rmSync(path.join(artifacts, 'secrets'), { recursive: true, force: true });
  fs.rmSync(path.join(artifacts, 'encrypted-plaintexts'), { recursive: true, force: true });
  const payloadEncryptionKey = randomBytes(32).toString('base64');
  fs.writeFileSync(RUN_PAYLOAD_KEY_FILE, payloadEncryptionKey, { mode: 0o600 });
  // The key itself is a secret of the run: the post-run scan checks no history or log holds it.
  fs.mkdirSync(path.join(artifacts, 'secrets'), { recursive: true });
  fs.writeFileSync(
    path.join(artifacts, 'secrets', 'payload-key.json'),
    JSON.stringify([payloadEncryptionKey]),
  );

  const settings = readDevServerSettings();
  const server: DevServer = await startDevServer(
    { ...settings, port: await freePort(), headless: true, dbFilename: null },
    { logFile: path.join(artifacts, 'temporal-dev.log') },
  );

  const { url: databaseUrl, drop: dropDatabase } = await createDatabase(adminUrl, 'convos_test');

  const bundle = await bundleWorkflowCode({
    workflowsPath,
    logger: { info() {}, warn() {}, error: console.error, debug() {}, trace() {}, log() {} },
  });
  const workflowBundlePath = path.join(artifacts, 'workflow-bundle.js');
  fs.writeFileSync(workflowBundlePath, bundle.code);

  project.provide('temporalAddress', server.address);
  project.provide('databaseUrl', databaseUrl);
  project.provide('workflowBundlePath', workflowBundlePath);
  project.provide('payloadEncryptionKey', payloadEncryptionKey);

  return async () => {
    await exportHistories(server.address, path.join(artifacts, 'histories'));
    await server.stop();
    await dropDatabase();
  };
}

/**
 * Saves every workflow history of the run, for the replay test and the secret scan (test/post-run/): as
 * Temporal stores it (encrypted payloads stay encrypted; the post-run checks decrypt them with the run's key).
 */
async function exportHistories(address: string, dir: string) {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const connection = await connectTemporal(localTemporal(address));
  const client = new Client({ connection });
  for await (const wf of client.workflow.list()) {
    const history = await client.workflow.getHandle(wf.workflowId, wf.runId).fetchHistory();
    // Binary protobuf: exact, and independent of JSON converters' protobufjs versions.
    fs.writeFileSync(
      path.join(dir, `${wf.workflowId}__${wf.runId}.pb`),
      temporal.api.history.v1.History.encode(history).finish(),
    );
  }
  await connection.close();
}
