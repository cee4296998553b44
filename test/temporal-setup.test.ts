/**
 * `npm run temporal:setup` and the worker's start check against a real server (the run's dev server), on
 * namespaces of their own: a worker refuses a namespace without the search attributes, the command
 * registers them (a second run changes nothing), and an attribute of another type is a clear error.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import type { Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time';
import proto from '@temporalio/proto';
import { NativeConnection } from '@temporalio/worker';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import type { ActivityDeps } from '../activities';
import { connectTemporal, localTemporal } from '../config/temporal';
import {
  checkSearchAttributes,
  listSearchAttributes,
  NamespaceSetupError,
  registerSearchAttributes,
  SEARCH_ATTRIBUTES,
  typeName,
} from '../config/temporal-namespace';
import { projectRoot } from '../scripts/temporal-dev';
import { createWorker } from '../workers/create-worker';

const { IndexedValueType } = proto.temporal.api.enums.v1;
const id = randomUUID().slice(0, 8);
const fresh = `setup-${id}`;
const conflicting = `setup-conflict-${id}`;
let connection: Connection;

async function registerNamespace(namespace: string) {
  await connection.workflowService.registerNamespace({
    namespace,
    workflowExecutionRetentionPeriod: msToTs('1 day'),
  });
  // A new namespace is known to every service once their namespace caches refresh.
  const until = Date.now() + 30_000;
  for (;;) {
    try {
      await connection.operatorService.listSearchAttributes({ namespace });
      return;
    } catch (err) {
      if (Date.now() > until) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

function setup(namespace: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('npm', ['run', '-s', 'temporal:setup'], {
      cwd: projectRoot,
      // No HOME: no user temporal.toml; the connection is these variables alone.
      env: {
        PATH: process.env.PATH ?? '',
        TEMPORAL_ADDRESS: inject('temporalAddress'),
        TEMPORAL_NAMESPACE: namespace,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (out += d));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, out }));
  });
}

beforeAll(async () => {
  connection = await connectTemporal(localTemporal(inject('temporalAddress')));
  await registerNamespace(fresh);
  await registerNamespace(conflicting);
});

afterAll(async () => {
  await connection?.close();
});

it('a worker refuses to start on a namespace without the search attributes', async () => {
  const started = createWorker({
    temporal: localTemporal(inject('temporalAddress')),
    namespace: fresh,
    taskQueue: `tq-${id}`,
    // The check comes before anything uses them.
    deps: {} as ActivityDeps,
    payloadEncryption: null,
    workflowBundle: { code: fs.readFileSync(inject('workflowBundlePath'), 'utf8') },
  });
  const err = await started.catch((e) => e);
  expect(err).toBeInstanceOf(NamespaceSetupError);
  expect(err.message).toContain(`Temporal namespace "${fresh}" lacks the search attributes`);
  expect(err.message).toContain('run `npm run temporal:setup`');
  for (const a of SEARCH_ATTRIBUTES) expect(err.message).toContain(a.name);
});

it('npm run temporal:setup registers them, and a second run changes nothing', async () => {
  const first = await setup(fresh);
  expect(first.code, first.out).toBe(0);
  for (const a of SEARCH_ATTRIBUTES)
    expect(first.out).toContain(`+ ${a.name} (${typeName(a.type)}) registered`);
  expect(first.out).toContain(`namespace "${fresh}" is set up`);
  expect(first.out).toContain(`Temporal ${inject('temporalAddress')} (namespace ${fresh}, TLS off)`);

  const registered = await listSearchAttributes(connection.operatorService, fresh);
  for (const a of SEARCH_ATTRIBUTES) expect(registered.get(a.name), a.name).toBe(a.type);

  const second = await setup(fresh);
  expect(second.code, second.out).toBe(0);
  expect(second.out).not.toContain('+ ');
  for (const a of SEARCH_ATTRIBUTES)
    expect(second.out).toContain(`✓ ${a.name} (${typeName(a.type)}) registered already`);
  expect(second.out).toContain('nothing to do');

  // Now the worker's check passes, on the worker's own kind of connection.
  const native = await NativeConnection.connect(localTemporal(inject('temporalAddress')).options());
  try {
    await expect(checkSearchAttributes(native.operatorService, fresh, () => {})).resolves.toBeUndefined();
  } finally {
    await native.close();
  }
});

it('an attribute registered with another type is an error that names it, and nothing else is added', async () => {
  const [first, ...rest] = SEARCH_ATTRIBUTES;
  if (!first) throw new Error('no search attributes');
  const other = first.type === 'TEXT' ? 'KEYWORD' : 'TEXT';
  await connection.operatorService.addSearchAttributes({
    namespace: conflicting,
    searchAttributes: { [first.name]: IndexedValueType[`INDEXED_VALUE_TYPE_${other}`] },
  });
  const err = await registerSearchAttributes(connection.operatorService, conflicting).catch((e) => e);
  expect(err).toBeInstanceOf(NamespaceSetupError);
  expect(err.message).toContain(
    `${first.name} is ${typeName(other)}, the workflows need ${typeName(first.type)}`,
  );
  const registered = await listSearchAttributes(connection.operatorService, conflicting);
  for (const a of rest) expect(registered.has(a.name), a.name).toBe(false);

  const run = await setup(conflicting);
  expect(run.code).toBe(1);
  expect(run.out).toContain(`${first.name} is ${typeName(other)}`);
  expect(run.out).not.toMatch(/\n\s+at /); // a message, not a stack trace
});

it('a namespace that does not exist is said so', async () => {
  const run = await setup(`missing-${id}`);
  expect(run.code).toBe(1);
  expect(run.out).toContain(`Temporal namespace "missing-${id}" does not exist`);
});
