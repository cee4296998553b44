/**
 * The instance lifecycle, unchanged, on the Railway compute provider: the real `RailwayComputeProvider`
 * talks GraphQL to the Railway stand-in, whose deployments register the "machine" in the runtime stand-in
 * (the project's domain maps to `<standin>/i/<instanceId>`). Under random faults on Railway, instances
 * start, become idle, get claimed, are drained and killed; nothing is left and nothing was created twice.
 * Also: a crashed claimed runtime comes back through a Railway redeploy, and the sweeper deletes an
 * orphaned project of this pool only.
 */
import { randomUUID } from 'node:crypto';
import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RailwayComputeProvider } from '../activities/compute/railway';
import { resourceName } from '../activities/providers/types';
import { SecretStore, secretKeyFromBase64 } from '../activities/secret-store';
import { INSTANCE_TOKEN } from '../contracts/secrets';
import { instanceEvents, instanceResources, instances } from '../drizzle/schema';
import { StandinComputeProvider } from '../tools/runtime-standin/compute-provider';
import { type Counts, recordSecrets, type Stack, startStack } from './stack';
import { type RailwayStandin, startRailwayStandin } from './standins/railway-standin';
import { type ClaimBody, json, newKey, shared } from './support/helpers';

let railway: RailwayStandin;
let provider: RailwayComputeProvider;
let stack: Stack;
/** Railway domain → the instance's base URL in the runtime stand-in, filled when a deployment starts. */
const urls = new Map<string, string>();

beforeAll(async () => {
  let runtime: StandinComputeProvider | undefined;
  railway = await startRailwayStandin({
    // A deployment is a fresh runtime: register it (token from the service variables), with no faults.
    onDeploy: async (project, vars) => {
      const id = vars.INSTANCE_ID;
      if (!runtime || !id) return;
      await runtime.create({ instanceId: id, poolName: '', env: vars });
      await runtime.setFaults(id, {});
      for (const d of project.domains) urls.set(d.domain, `${runtime.baseUrl}/i/${id}`);
    },
    onDelete: async (project) => {
      const id = Object.values(project.variables)[0]?.INSTANCE_ID;
      if (runtime && id) await runtime.destroy(id);
    },
  });
  recordSecrets(railway.token);
  stack = await startStack(
    shared({
      targetIdle: 0,
      maxTotal: 30,
      timings: { healthIntervalMs: 500, startDeadlineMs: 120_000, stepMaxAttempts: 10 },
      computeFor: (runtimeUrl) => {
        runtime = new StandinComputeProvider(runtimeUrl);
        provider = new RailwayComputeProvider({
          token: railway.token,
          workspaceId: 'ws-e2e',
          image: 'ghcr.io/convos/convos-runtime:e2e',
          endpoint: `${railway.url}/graphql/v2`,
          timeoutMs: 1500,
          // An unmapped domain must not reach the internet: it gets the stand-in's 404.
          urlForDomain: (domain) => urls.get(domain) ?? `${runtimeUrl}/i/unmapped`,
        });
        return provider;
      },
    }),
  );
}, 60_000);
afterAll(async () => {
  await stack?.stop();
  await railway?.close();
});

const live = (c: Counts) =>
  c.starting + c.idle + c.claiming + c.claimed + c.crashed + c.destroying + c.failed;
const rows = (status: string) =>
  stack.database.db
    .select()
    .from(instances)
    .where(and(eq(instances.pool, stack.poolName), eq(instances.status, status)));
const projectOf = (id: string) => railway.inventory.byName(resourceName(stack.poolName, id));
const claim = async (name: string) => {
  await stack.waitFor('an idle instance', async () => (await stack.counts()).idle > 0, 60_000);
  const res = await stack.api(
    'POST',
    '/api/pool/claim',
    { agentName: name },
    { 'idempotency-key': newKey() },
  );
  expect(res.status).toBe(200);
  return json<ClaimBody>(res);
};
/** Drains every idle/starting instance, kills the given ones and waits until nothing is live (or failed). */
async function teardown(kill: string[]) {
  expect((await stack.api('PUT', '/api/pool/target', { targetIdle: 0 })).status).toBe(200);
  for (;;) {
    const res = await json<{ draining: string[] }>(await stack.api('POST', '/api/pool/drain', { count: 20 }));
    if (res.draining.length === 0) break;
  }
  for (const id of kill) expect((await stack.api('DELETE', `/api/pool/instances/${id}`)).status).toBe(202);
  let counts = await stack.counts();
  await stack.waitFor(
    'every instance destroyed',
    async () => {
      counts = await stack.counts();
      return counts.failed > 0 || live(counts) === 0;
    },
    180_000,
  );
  expect(counts.failed).toBe(0);
}
/** Nothing left at Railway or in the runtime stand-in, nothing created twice, nobody failed. */
async function expectNothingLeft() {
  expect(railway.inventory.list().map((p) => p.name)).toEqual([]);
  expect(railway.inventory.duplicates()).toEqual([]);
  expect(await stack.compute.inventory()).toEqual([]);
  expect(await rows('failed')).toEqual([]);
}

describe('the lifecycle on Railway', () => {
  it('starts, claims, drains and kills under 20 % Railway faults: nothing left, nothing twice', async () => {
    const secrets = new SecretStore(stack.database.db, secretKeyFromBase64(stack.secretsKey));
    // Random faults, plus a lost answer on each creating step: a retry must adopt what the lost call made.
    railway.faults.set({ rate: 0.2, seed: 2024 });
    const creating = ['ProjectCreate', 'ServiceCreate', 'VolumeCreate', 'ServiceDomainCreate'];
    for (const op of [...creating, 'ServiceInstanceDeployV2']) railway.failOperation(op, 'lost');
    const t0 = Date.now();
    expect((await stack.api('PUT', '/api/pool/target', { targetIdle: 5 })).status).toBe(200);
    // Every create meets faults for 30 s; a create is 6–11 GraphQL calls per attempt, so at 20 % a few
    // need many attempts and the workflow's backoff (up to 30 s) makes the tail slow: then faults stop.
    await stack
      .waitFor('5 idle under faults', async () => (await stack.counts()).idle >= 5, 30_000)
      .catch(() => {});
    const startFaults = railway.faults.injected.length + railway.injected.length;
    railway.faults.clear();
    await stack.waitFor('5 idle', async () => (await stack.counts()).idle >= 5, 120_000);
    console.log(`5 idle in ${Date.now() - t0} ms, ${startFaults} Railway faults while starting`);
    expect(startFaults).toBeGreaterThan(10);
    expect(railway.injected.map((f) => f.op)).toEqual([...creating, 'ServiceInstanceDeployV2']);

    // Each idle instance is one project set up as the adapter promises, with its own id and token.
    for (const row of await rows('idle')) {
      const p = projectOf(row.id)!;
      expect(p).toBeDefined();
      expect(p.services.map((s) => s.image)).toEqual(['ghcr.io/convos/convos-runtime:e2e']);
      const service = p.services[0]!;
      expect(p.variables[service.id]).toMatchObject({
        INSTANCE_ID: row.id,
        INSTANCE_TOKEN: (await secrets.get(row.id, INSTANCE_TOKEN))!,
        STATE_DIR: '/data',
      });
      expect(p.volumes.map((v) => v.instance.mountPath)).toEqual(['/data']);
      expect(p.domains).toHaveLength(1);
      expect(p.deployments.map((d) => [d.status, d.redeployOf])).toEqual([['SUCCESS', null]]);
      expect(row.url).toBe(`${stack.standinUrl}/i/${row.id}`);
      const [res] = await stack.database.db
        .select()
        .from(instanceResources)
        .where(and(eq(instanceResources.instanceId, row.id), eq(instanceResources.kind, 'compute')));
      expect(res).toMatchObject({ provider: 'railway', ref: p.id, status: 'active' });
    }

    // Claims provision through the runtime stand-in at the mapped domain.
    const claimed = [await claim('Rail A'), await claim('Rail B')];
    const inventory = await stack.compute.inventory();
    for (const c of claimed)
      expect(inventory.find((i) => i.id === c.instanceId)?.provisioned?.requestId).toBeDefined();
    // Let the refill finish: a drain that cancels a running create could race its late project.
    await stack.waitFor('refill', async () => (await stack.counts()).idle >= 5, 120_000);

    railway.faults.set({ rate: 0.2, seed: 7 });
    const before = railway.faults.injected.length;
    await teardown(claimed.map((c) => c.instanceId));
    railway.faults.clear();
    expect(railway.faults.injected.length).toBeGreaterThan(before);
    expect(new Set(railway.faults.injected.map((f) => f.kind))).toEqual(
      new Set(['5xx', '429', 'timeout', 'lost']),
    );
    expect(railway.operations.filter((op) => op === 'ProjectDelete').length).toBeGreaterThanOrEqual(7);
    await expectNothingLeft();
  }, 480_000);
});

describe('crash and restart on Railway', () => {
  it('redeploys a claimed instance whose runtime stops answering and brings it back to claimed', async () => {
    expect((await stack.api('PUT', '/api/pool/target', { targetIdle: 1 })).status).toBe(200);
    const { instanceId } = await claim('Phoenix');
    const redeploys = railway.operations.filter((op) => op === 'DeploymentRedeploy').length;
    await stack.compute.setFaults(instanceId, { down: true });
    await stack.waitFor(
      'crash detected and recovered',
      async () => {
        const events = await stack.database.db
          .select()
          .from(instanceEvents)
          .where(eq(instanceEvents.instanceId, instanceId));
        return (
          events.some((e) => e.toStatus === 'crashed') &&
          events.some((e) => e.reason === 'runtime restarted from its state')
        );
      },
      60_000,
    );
    expect(
      (await stack.database.db.select().from(instances).where(eq(instances.id, instanceId)))[0]?.status,
    ).toBe('claimed');
    // Same project, a redeploy of its first deployment (restart goes through RailwayComputeProvider.restart).
    const p = projectOf(instanceId)!;
    expect(railway.inventory.creations.get(p.name)).toBe(1);
    expect(p.deployments.map((d) => d.redeployOf)).toEqual([null, p.deployments[0]!.id]);
    expect(railway.operations.filter((op) => op === 'DeploymentRedeploy').length).toBe(redeploys + 1);
  }, 120_000);
});

describe('the sweeper on Railway', () => {
  it('deletes an orphaned project of this pool, not one of another pool', async () => {
    const spec = (poolName: string, id = randomUUID()) => ({
      instanceId: id,
      poolName,
      env: { INSTANCE_ID: id, INSTANCE_TOKEN: `orphan-token-${randomUUID()}` },
    });
    const orphan = spec(stack.poolName);
    const foreign = spec('elsewhere');
    recordSecrets(orphan.env.INSTANCE_TOKEN, foreign.env.INSTANCE_TOKEN);
    await provider.create(orphan);
    await provider.create(foreign);
    // The orphan is one of ours (its row exists, its workflow does not); a project of this pool's name that
    // this deployment never recorded (another deployment on the same account) is not ours to delete.
    await stack.database.db
      .insert(instances)
      .values({ id: orphan.instanceId, pool: stack.poolName, status: 'starting', provider: 'railway' });
    const stranger = spec(stack.poolName);
    recordSecrets(stranger.env.INSTANCE_TOKEN);
    await provider.create(stranger);
    const liveIds = (await rows('claimed')).concat(await rows('idle')).map((r) => r.id);
    expect(liveIds.length).toBeGreaterThan(0);

    expect((await stack.api('POST', '/api/pool/reconcile')).status).toBe(202);
    await stack.waitFor('orphan deleted', async () => projectOf(orphan.instanceId) === undefined, 60_000);
    expect(railway.inventory.byName(resourceName('elsewhere', foreign.instanceId))).toBeDefined();
    expect(projectOf(stranger.instanceId)).toBeDefined();
    for (const id of liveIds) expect(projectOf(id)).toBeDefined();
    expect((await stack.compute.inventory()).map((i) => i.id)).not.toContain(orphan.instanceId);
    // The audit event is written right after the delete: wait for it rather than race it.
    const reasons = async () =>
      (
        await stack.database.db
          .select()
          .from(instanceEvents)
          .where(and(eq(instanceEvents.instanceId, orphan.instanceId), eq(instanceEvents.actor, 'reconcile')))
      ).map((e) => e.reason);
    await stack.waitFor('the sweep audited', async () =>
      (await reasons()).includes('released orphaned railway compute'),
    );
    await provider.destroy(foreign.instanceId, 'elsewhere');
    await provider.destroy(stranger.instanceId, stack.poolName);
  }, 120_000);

  it('ends with nothing left at Railway or in the runtime stand-in', async () => {
    await teardown((await rows('claimed')).map((r) => r.id));
    await expectNothingLeft();
  }, 240_000);
});
