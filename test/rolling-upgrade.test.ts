/**
 * Rolling runtime upgrades (issue 14.4; docs/architecture.md, "Rolling runtime upgrades"): a worker start that
 * declares another runtime version (the compute provider's `runtimeVersion`: an image id, a source hash) replaces
 * the idle instances on the old one at a bounded rate — at most `upgradeBatch` replacements starting at once, the
 * old ones drained only once new ones are idle, so idle never drops below the target — and leaves claimed ones
 * on their version. The version each instance runs is in the API, the read model and the `RuntimeVersion`
 * search attribute.
 */
import { and, eq, ne } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { instanceEvents, instances } from '../drizzle/schema';
import { type Stack, startStack } from './stack';
import { claimOne, json, poolSeesIdle, shared } from './support/helpers';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack(shared({ targetIdle: 0, maxTotal: 12 }));
});
afterAll(() => stack?.stop());

const live = async () =>
  stack.database.db
    .select({ id: instances.id, status: instances.status, version: instances.runtimeVersion })
    .from(instances)
    .where(and(eq(instances.pool, stack.poolName), ne(instances.status, 'destroyed')));

it('replaces idle instances on an older runtime version a batch at a time, never below the target, claimed ones kept', async () => {
  stack.compute.version = 'runtime-v1';
  await stack.declare({ targetIdle: 3 });
  await stack.waitFor('3 idle on v1', async () => {
    const rows = await live();
    return rows.filter((r) => r.status === 'idle' && r.version === 'runtime-v1').length === 3;
  });
  const claimed = await claimOne(stack, 'Keeper');
  await stack.waitFor('3 idle again', async () => (await stack.counts()).idle === 3);
  await poolSeesIdle(stack, 3);

  // A new release: the worker start declares the provider's new version, one replacement at a time.
  stack.compute.version = 'runtime-v2';
  const report = await stack.declare({ targetIdle: 3, upgradeBatch: 1 });
  expect(report?.changed).toContain('runtimeVersion');
  expect(report?.settings.runtimeVersion).toBe('runtime-v2');
  expect(report?.retiring).toBe(3);

  let minIdle = Number.POSITIVE_INFINITY;
  let maxStarting = 0;
  await stack.waitFor(
    'every idle instance on v2',
    async () => {
      const rows = await live();
      minIdle = Math.min(minIdle, rows.filter((r) => r.status === 'idle').length);
      maxStarting = Math.max(maxStarting, rows.filter((r) => r.status === 'starting').length);
      const idle = rows.filter((r) => r.status === 'idle');
      return idle.length === 3 && idle.every((r) => r.version === 'runtime-v2');
    },
    60_000,
  );
  expect(minIdle).toBeGreaterThanOrEqual(3);
  expect(maxStarting).toBeLessThanOrEqual(1);

  // The claimed one was left alone: same instance, still claimed, still on v1.
  const rows = await live();
  expect(rows.find((r) => r.id === claimed.instanceId)).toMatchObject({
    status: 'claimed',
    version: 'runtime-v1',
  });
  // The retired ones say why in the audit trail.
  const drained = await stack.database.db
    .select({ reason: instanceEvents.reason })
    .from(instanceEvents)
    .where(eq(instanceEvents.toStatus, 'destroying'));
  expect(
    drained.filter((e) => e.reason === 'replaced by standin runtime runtime-v2').length,
  ).toBeGreaterThanOrEqual(3);

  // Visible to operators: the API, the pool's settings, the Web UI's search attribute.
  const groups = await json<Record<string, Array<{ id: string; runtimeVersion: string | null }>>>(
    await stack.api('GET', '/api/pool/agents'),
  );
  const list = Object.values(groups).flat();
  expect(list.find((i) => i.id === claimed.instanceId)?.runtimeVersion).toBe('runtime-v1');
  expect(list.filter((i) => i.runtimeVersion === 'runtime-v2').length).toBeGreaterThanOrEqual(3);
  const info = await json<{ config: { settings: { runtimeVersion: string }; retiring: number } }>(
    await stack.api('GET', '/api/pool/info'),
  );
  expect(info.config.settings.runtimeVersion).toBe('runtime-v2');
  await stack.waitFor('the search attribute', async () => {
    let n = 0;
    for await (const _ of stack.temporal.workflow.list({
      query: `PoolName = '${stack.poolName}' AND RuntimeVersion = 'runtime-v2' AND ExecutionStatus = 'Running'`,
    }))
      n += 1;
    return n >= 3;
  });
}, 120_000);
