/**
 * One Temporal dev server and one fresh Postgres database per test run, and the workflow bundle built
 * once; test files get their addresses through vitest's provide/inject.
 */
import fs from 'node:fs';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import postgres from 'postgres';
import type { TestProject } from 'vitest/node';
import { type DevServer, projectRoot, readDevServerSettings, startDevServer } from '../scripts/temporal-dev';
import { workflowsPath } from '../workers/create-worker';
import { freePort } from './support/ports';

declare module 'vitest' {
  export interface ProvidedContext {
    temporalAddress: string;
    databaseUrl: string;
    workflowBundlePath: string;
  }
}

const adminUrl = process.env.TEST_POSTGRES_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export default async function setup(project: TestProject) {
  const artifacts = path.join(projectRoot, 'test-artifacts');
  fs.mkdirSync(artifacts, { recursive: true });

  const settings = readDevServerSettings();
  const server: DevServer = await startDevServer(
    { ...settings, port: await freePort(), headless: true, dbFilename: null },
    { logFile: path.join(artifacts, 'temporal-dev.log') },
  );

  const dbName = `convos_test_${process.pid}_${Date.now()}`;
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${dbName}`);
  const databaseUrl = adminUrl.replace(/\/[^/]*$/, `/${dbName}`);

  const bundle = await bundleWorkflowCode({
    workflowsPath,
    logger: { info() {}, warn() {}, error: console.error, debug() {}, trace() {}, log() {} },
  });
  const workflowBundlePath = path.join(artifacts, 'workflow-bundle.js');
  fs.writeFileSync(workflowBundlePath, bundle.code);

  project.provide('temporalAddress', server.address);
  project.provide('databaseUrl', databaseUrl);
  project.provide('workflowBundlePath', workflowBundlePath);

  return async () => {
    await server.stop();
    await admin.unsafe(`drop database if exists ${dbName} with (force)`).catch(() => {});
    await admin.end();
  };
}
