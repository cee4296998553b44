/**
 * The Railway compute adapter against the Railway stand-in: what create leaves at the provider, adoption on
 * retry, every step faulted (5xx, 429 with Retry-After, timeout, lost answer) under a retry loop like the
 * activity's, auth and GraphQL errors, destroy, list across pages, restart.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RailwayComputeProvider, type RailwayProviderOptions } from '../../activities/compute/railway';
import type { ComputeSpec } from '../../activities/compute/types';
import {
  ProviderNotFoundError,
  ProviderRateLimitedError,
  ProviderRejectedError,
  ProviderUnavailableError,
} from '../../contracts/provider-errors';
import type { FaultKind } from '../standins/provider-http';
import { type RailwayStandin, startRailwayStandin } from '../standins/railway-standin';

const IMAGE = 'ghcr.io/convos/convos-runtime:test';
const SECRET = 'instance-token-5f1c2e9a7b';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Like the activity retry policy: rejections are final, 429 waits Retry-After, the rest back off briefly. */
async function retrying<T>(fn: () => Promise<T>, attempts = 40): Promise<{ value: T; tries: number }> {
  for (let tries = 1; ; tries++) {
    try {
      return { value: await fn(), tries };
    } catch (err) {
      if (err instanceof ProviderRejectedError || tries >= attempts) throw err;
      await sleep(err instanceof ProviderRateLimitedError ? err.retryAfterMs : 20);
    }
  }
}

const spec = (instanceId: string, poolName = 'p1', env: Record<string, string> = {}): ComputeSpec => ({
  instanceId,
  poolName,
  env: { INSTANCE_ID: instanceId, INSTANCE_TOKEN: SECRET, POOL_API_URL: 'https://pool.example', ...env },
});

let standin: RailwayStandin;
beforeEach(async () => {
  standin = await startRailwayStandin();
});
afterEach(async () => {
  await standin.close();
});

const provider = (extra: Partial<RailwayProviderOptions> = {}) =>
  new RailwayComputeProvider({
    token: standin.token,
    workspaceId: 'ws-1',
    image: IMAGE,
    startCommand: 'node dist/main.js',
    limits: { cpu: 1, memoryGb: 2 },
    endpoint: `${standin.url}/graphql/v2`,
    timeoutMs: 1000,
    ...extra,
  });

/** Exactly one of everything for the instance, set up as create promises. */
function expectOneOfEverything(name: string) {
  expect(standin.inventory.list().filter((p) => p.name === name)).toHaveLength(1);
  expect(standin.inventory.duplicates()).toEqual([]);
  const p = standin.inventory.byName(name)!;
  expect(p.workspaceId).toBe('ws-1');
  expect(p.services).toHaveLength(1);
  const [s] = p.services;
  expect(s).toMatchObject({ name: 'runtime', image: IMAGE, startCommand: 'node dist/main.js' });
  expect(s!.limits).toEqual({ vCPUs: 1, memoryGB: 2 });
  expect(p.variables[s!.id]).toMatchObject({
    INSTANCE_TOKEN: SECRET,
    POOL_API_URL: 'https://pool.example',
    PORT: '8080',
    HOST: '0.0.0.0',
    STATE_DIR: '/data',
    // Its own public domain: the links it hands out reach it from outside.
    PUBLIC_URL: `https://${p.domains[0]?.domain}`,
  });
  expect(p.volumes.map((v) => v.instance)).toEqual([
    expect.objectContaining({ serviceId: s!.id, mountPath: '/data' }),
  ]);
  expect(p.domains).toEqual([expect.objectContaining({ serviceId: s!.id, targetPort: 8080 })]);
  expect(p.deployments).toHaveLength(1);
  return p;
}

describe('RailwayComputeProvider', () => {
  it('creates a project with service, variables, volume at /data, domain and one deployment', async () => {
    const handle = await provider().create(spec('i1'));
    const p = expectOneOfEverything('convos-p1-i1');
    expect(handle).toEqual({ ref: p.id, url: `https://${p.domains[0]!.domain}` });
    expect(p.id).toMatch(/^[0-9a-f-]{36}$/);
    // Nothing deployed before the variables and the volume were in place.
    const ops = standin.operations;
    expect(ops.indexOf('ServiceInstanceDeployV2')).toBeGreaterThan(ops.indexOf('VariableCollectionUpsert'));
    expect(ops.indexOf('ServiceInstanceDeployV2')).toBeGreaterThan(ops.indexOf('VolumeCreate'));
    expect(p.deployments[0]!.status).toBe('SUCCESS');
  });

  it('adopts on a second create: same project, nothing created twice', async () => {
    const first = await provider().create(spec('i1'));
    standin.operations.length = 0;
    const second = await provider().create(spec('i1'));
    expect(second).toEqual(first);
    expectOneOfEverything('convos-p1-i1');
    for (const op of [
      'ProjectCreate',
      'ServiceCreate',
      'VolumeCreate',
      'ServiceDomainCreate',
      'ServiceInstanceDeployV2',
    ])
      expect(standin.operations).not.toContain(op);
  });

  const createSteps = [
    'Projects',
    'ProjectCreate',
    'Project',
    'ServiceCreate',
    'ServiceInstanceUpdate',
    'ServiceInstanceLimitsUpdate',
    'VariableCollectionUpsert',
    'VolumeCreate',
    'Domains',
    'ServiceDomainCreate',
    'ServiceInstance',
    'ServiceInstanceDeployV2',
  ];
  it.each<FaultKind>(['5xx', '429', 'timeout', 'lost'])(
    'every create step failing once with %s ends with exactly one of everything',
    async (kind) => {
      for (const op of createSteps) standin.failOperation(op, kind);
      const { value, tries } = await retrying(() => provider().create(spec('i1')));
      expect(standin.injected.map((f) => f.op).sort()).toEqual([...createSteps].sort());
      expect(tries).toBe(createSteps.length + 1);
      const p = expectOneOfEverything('convos-p1-i1');
      expect(value.ref).toBe(p.id);
    },
    60_000,
  );

  it('survives random faults on the wire: 6 instances created and destroyed, nothing duplicated or left', async () => {
    standin.faults.set({ rate: 0.2, seed: 7, kinds: ['5xx', '429', 'timeout', 'lost'] });
    const ids = ['r1', 'r2', 'r3', 'r4', 'r5', 'r6'];
    for (const id of ids) await retrying(() => provider().create(spec(id)));
    for (const id of ids) expectOneOfEverything(`convos-p1-${id}`);
    for (const id of ids) await retrying(() => provider().destroy(id, 'p1'));
    expect(standin.faults.injected.length).toBeGreaterThan(5);
    expect(standin.inventory.list()).toEqual([]);
    expect(standin.inventory.duplicates()).toEqual([]);
  }, 90_000);

  it('rejects a wrong token without retrying and without leaking it', async () => {
    const bad = provider({ token: 'wrong-token-3b9d1f' });
    let attempts = 0;
    const err = await retrying(() => {
      attempts++;
      return bad.create(spec('i1'));
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderRejectedError);
    expect(attempts).toBe(1);
    expect(String((err as Error).message)).toContain('Not Authorized');
    expect(String((err as Error).message)).not.toContain('wrong-token-3b9d1f');
    expect(standin.inventory.list()).toEqual([]);
  });

  it('maps GraphQL errors (HTTP 200) onto the provider error classes and redacts secrets in them', async () => {
    const answering = (message: string, status = 200) =>
      provider({
        endpoint: 'https://backboard.example/graphql/v2',
        fetch: (async () =>
          new Response(JSON.stringify({ data: null, errors: [{ message }] }), { status })) as typeof fetch,
      });
    const failure = (p: Promise<unknown>) =>
      p.then(
        () => null,
        (e: unknown) => e as Error,
      );
    expect(await failure(answering('Not Authorized').list('p1'))).toBeInstanceOf(ProviderRejectedError);
    expect(await failure(answering('Project not found').list('p1'))).toBeInstanceOf(ProviderNotFoundError);
    expect(await failure(answering('Rate limit exceeded').list('p1'))).toBeInstanceOf(
      ProviderRateLimitedError,
    );
    expect(await failure(answering('Rate limit exceeded', 429).list('p1'))).toBeInstanceOf(
      ProviderRateLimitedError,
    );
    expect(await failure(answering('Problem processing request').list('p1'))).toBeInstanceOf(
      ProviderUnavailableError,
    );
    expect(await failure(answering('Unknown operation named "X".', 400).list('p1'))).toBeInstanceOf(
      ProviderRejectedError,
    );
    // A validation error may echo the variables sent: neither they nor the token reach the message.
    const echoed = `Variable "$input" got invalid value { INSTANCE_TOKEN: "${SECRET}" }; token ${standin.token}`;
    const err = await failure(answering(echoed).create(spec('i1')));
    expect(err).toBeInstanceOf(ProviderRejectedError);
    expect(err!.message).not.toContain(SECRET);
    expect(err!.message).not.toContain(standin.token);
    expect(err!.message).toContain('[redacted]');
    // Transport errors name the operation that failed.
    standin.failOperation('VariableCollectionUpsert', '5xx');
    const unavailable = await failure(provider().create(spec('i2')));
    expect(unavailable).toBeInstanceOf(ProviderUnavailableError);
    expect(unavailable!.message).toMatch(/503.*VariableCollectionUpsert/);
  });

  it('answers an unknown operation with a GraphQL validation error', async () => {
    const res = await fetch(`${standin.url}/graphql/v2`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${standin.token}` },
      body: JSON.stringify({ query: 'query Me { me { id } }', operationName: 'Me', variables: {} }),
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ errors: [{ message: 'Unknown operation named "Me".' }] });
  });

  it('destroys the project; destroying again, or an unknown instance, succeeds', async () => {
    await provider().create(spec('i1'));
    await provider().create(spec('i2'));
    await provider().destroy('i1', 'p1');
    expect(standin.inventory.list().map((p) => p.name)).toEqual(['convos-p1-i2']);
    await provider().destroy('i1', 'p1');
    await provider().destroy('never-created', 'p1');
    // A lost delete answer: the retry finds nothing left and succeeds.
    standin.failOperation('ProjectDelete', 'lost');
    await retrying(() => provider().destroy('i2', 'p1'));
    expect(standin.inventory.list()).toEqual([]);
  });

  it('finds an instance it created by id, without paging through the workspace', async () => {
    const railway = provider();
    await railway.create(spec('i1'));
    const before = standin.operations.length;
    expect(await railway.isRunning('i1', 'p1')).toBe(true);
    await railway.destroy('i1', 'p1');
    expect(standin.operations.slice(before)).not.toContain('Projects');
    expect(standin.inventory.list()).toEqual([]);
  });

  it('isRunning follows the latest deployment: running, failed or crashed, gone, in progress', async () => {
    const railway = provider();
    await railway.create(spec('i1'));
    const p = standin.inventory.byName('convos-p1-i1')!;
    const status = (s: string) => {
      p.deployments.at(-1)!.status = s;
    };
    for (const [s, expected] of [
      ['SUCCESS', true],
      ['SLEEPING', true],
      ['CRASHED', false],
      ['FAILED', false],
      ['REMOVED', false],
      ['DEPLOYING', null],
      ['QUEUED', null],
    ] as const) {
      status(s);
      expect(await railway.isRunning('i1', 'p1'), s).toBe(expected);
    }
    // Another process (no cached placement) finds it by name; a deleted project is not running.
    status('SUCCESS');
    expect(await provider().isRunning('i1', 'p1')).toBe(true);
    await railway.destroy('i1', 'p1');
    expect(await provider().isRunning('i1', 'p1')).toBe(false);
  });

  it('lists the pool instances by name prefix across pages', async () => {
    const railway = provider({ pageSize: 2 });
    const ids = Array.from({ length: 5 }, () => randomUUID());
    for (const id of ids) await railway.create(spec(id));
    const other = randomUUID();
    await railway.create(spec(other, 'other'));
    // Pool `p1-x`'s names start with `convos-p1-`: instance ids are UUIDs, so p1 never takes them as its own.
    await railway.create(spec(randomUUID(), 'p1-x'));
    standin.operations.length = 0;
    expect((await railway.list('p1')).sort()).toEqual([...ids].sort());
    expect(standin.operations.filter((op) => op === 'Projects').length).toBe(4);
    expect(await railway.list('other')).toEqual([other]);
    expect(await railway.list('empty')).toEqual([]);
  });

  it('restart re-upserts variables and redeploys the latest deployment', async () => {
    const railway = provider();
    const handle = await railway.create(spec('i1'));
    const p = standin.inventory.byName('convos-p1-i1')!;
    const crashed = p.deployments[0]!;
    crashed.status = 'CRASHED';
    // A crashed latest deployment is redeployed, with the new variables.
    expect(await railway.restart(spec('i1', 'p1', { MODEL: 'new-model' }))).toEqual(handle);
    expect(p.variables[p.services[0]!.id]).toMatchObject({ MODEL: 'new-model', INSTANCE_TOKEN: SECRET });
    expect(p.deployments).toHaveLength(2);
    expect(p.deployments[1]).toMatchObject({ redeployOf: crashed.id, status: 'SUCCESS' });
    // A healthy latest deployment is redeployed as well (to pick up variables).
    await railway.restart(spec('i1'));
    expect(p.deployments).toHaveLength(3);
    // One already in progress is left to finish.
    p.deployments[2]!.status = 'DEPLOYING';
    await railway.restart(spec('i1'));
    expect(p.deployments).toHaveLength(3);
    // create never redeploys a running instance, but does redeploy a failed one.
    p.deployments[2]!.status = 'SUCCESS';
    await railway.create(spec('i1'));
    expect(p.deployments).toHaveLength(3);
    p.deployments[2]!.status = 'FAILED';
    await railway.create(spec('i1'));
    expect(p.deployments).toHaveLength(4);
    expect(p.services).toHaveLength(1);
    expect(p.volumes).toHaveLength(1);
    expect(p.domains).toHaveLength(1);
  });
});
