/**
 * The pool controller: one workflow per pool (`pool-<name>`). It keeps `idle + starting ≥ targetIdle`
 * within `maxTotal`, starts instance workflows, answers replenish / drain / setTarget, and stops warming
 * through a circuit breaker when starts keep failing. Instances report every transition to it.
 */
import {
  allHandlersFinished,
  condition,
  continueAsNew,
  ParentClosePolicy,
  proxyActivities,
  setHandler,
  startChild,
  uuid4,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import { instanceWorkflowId } from '../contracts/workflow-ids';
import { instanceWorkflow } from './instance';
import {
  drainUpdate,
  getPoolStateQuery,
  instanceChangedSignal,
  replenishUpdate,
  setTargetUpdate,
} from './messages';
import { ComputeProviderKey, InstanceStatusKey, PoolNameKey } from './search-attributes';
import { INSTANCE_STATUSES, type InstanceStatus, type PoolInput, type PoolState } from './types';

const { drainInstances } = proxyActivities<Activities>({
  startToCloseTimeout: '1m',
  retry: { maximumAttempts: 3 },
});

/** Signals per run before continuing as new (Temporal allows 10,000; history stays small). */
const SIGNALS_PER_RUN = 2000;

export async function poolWorkflow(input: PoolInput): Promise<void> {
  const settings = { ...input.settings };
  const members: Record<string, InstanceStatus> = { ...input.members };
  const seqs: Record<string, number> = { ...input.seqs };
  const breaker = input.breaker ?? { consecutiveFailures: 0, openedAt: null };
  let dirty = true;
  let signals = 0;

  const counts = () => {
    const c = Object.fromEntries(INSTANCE_STATUSES.map((st) => [st, 0])) as Record<InstanceStatus, number>;
    for (const st of Object.values(members)) c[st] += 1;
    return c;
  };
  const total = () => Object.keys(members).length;
  const breakerOpen = () => breaker.consecutiveFailures >= settings.breakerThreshold;

  setHandler(
    getPoolStateQuery,
    (): PoolState => ({
      settings,
      counts: counts(),
      members,
      breaker: { ...breaker, open: breakerOpen() },
    }),
  );

  setHandler(instanceChangedSignal, ({ instanceId, status, seq }) => {
    signals += 1;
    dirty = true;
    // Signals may arrive out of order; an older report never overwrites a newer one.
    if (seq !== undefined && seq <= (seqs[instanceId] ?? 0)) return;
    if (seq !== undefined) seqs[instanceId] = seq;
    const previous = members[instanceId];
    if (
      previous === 'starting' &&
      (status === 'destroying' || status === 'destroyed' || status === 'failed')
    ) {
      breaker.consecutiveFailures += 1;
      if (breakerOpen()) breaker.openedAt = new Date().toISOString();
    }
    if (status === 'idle' && previous === 'starting') {
      breaker.consecutiveFailures = 0;
      breaker.openedAt = null;
    }
    if (status === 'destroyed') {
      delete members[instanceId];
      delete seqs[instanceId];
    } else if (previous !== undefined || seq !== undefined) {
      members[instanceId] = status;
    }
  });

  async function startInstances(n: number): Promise<string[]> {
    const ids = Array.from({ length: n }, () => uuid4());
    for (const id of ids) members[id] = 'starting';
    await Promise.all(
      ids.map((instanceId) =>
        startChild(instanceWorkflow, {
          workflowId: instanceWorkflowId(instanceId),
          args: [
            {
              instanceId,
              poolName: settings.poolName,
              computeProvider: settings.computeProvider,
              timings: settings.instanceTimings,
            },
          ],
          // Instances outlive the pool's runs (continue-as-new) and the pool itself.
          parentClosePolicy: ParentClosePolicy.ABANDON,
          typedSearchAttributes: [
            { key: InstanceStatusKey, value: 'starting' },
            { key: ComputeProviderKey, value: settings.computeProvider },
            { key: PoolNameKey, value: settings.poolName },
          ],
        }),
      ),
    );
    return ids;
  }

  /** How many to start now: the deficit to the target, within maxTotal; one trial while the breaker cools. */
  function deficit(): number {
    const c = counts();
    const want = Math.max(0, settings.targetIdle - c.idle - c.starting);
    const room = Math.max(0, settings.maxTotal - total());
    if (!breakerOpen()) return Math.min(want, room);
    const cooled =
      breaker.openedAt && Date.now() - Date.parse(breaker.openedAt) >= settings.breakerCooldownMs;
    return cooled && c.starting === 0 ? Math.min(1, want, room) : 0;
  }

  setHandler(
    replenishUpdate,
    async (count) => {
      const ids = await startInstances(Math.min(count, Math.max(0, settings.maxTotal - total())));
      dirty = true;
      return ids;
    },
    {
      validator: (count) => {
        if (!Number.isInteger(count) || count < 1 || count > 20) throw new Error('count must be 1..20');
      },
    },
  );

  setHandler(
    drainUpdate,
    async (count) => {
      // Idle first (they cost money and nobody waits for them), then starting, oldest first. Each instance's
      // own drain Update is the arbiter: one claimed in the meantime rejects it and is never touched.
      const candidates = [
        ...Object.keys(members).filter((id) => members[id] === 'idle'),
        ...Object.keys(members).filter((id) => members[id] === 'starting'),
      ];
      const drained = await drainInstances({ candidates, count });
      dirty = true;
      return drained;
    },
    {
      validator: (count) => {
        if (!Number.isInteger(count) || count < 1 || count > 20) throw new Error('count must be 1..20');
      },
    },
  );

  setHandler(
    setTargetUpdate,
    ({ targetIdle, maxTotal }) => {
      settings.targetIdle = targetIdle;
      if (maxTotal !== undefined) settings.maxTotal = maxTotal;
      dirty = true;
      return { targetIdle: settings.targetIdle, maxTotal: settings.maxTotal };
    },
    {
      validator: ({ targetIdle, maxTotal }) => {
        if (!Number.isInteger(targetIdle) || targetIdle < 0 || targetIdle > 1000)
          throw new Error('targetIdle must be 0..1000');
        if (maxTotal !== undefined && (!Number.isInteger(maxTotal) || maxTotal < 1 || maxTotal > 10000)) {
          throw new Error('maxTotal must be 1..10000');
        }
      },
    },
  );

  for (;;) {
    // Wake on any change, and at least every poll interval (the breaker's cooldown is time-based).
    await condition(() => dirty, settings.pollIntervalMs);
    dirty = false;
    const n = deficit();
    if (n > 0) await startInstances(n);

    const info = workflowInfo();
    if (info.continueAsNewSuggested || signals >= SIGNALS_PER_RUN || info.historyLength > 10_000) {
      await condition(allHandlersFinished);
      return continueAsNew<typeof poolWorkflow>({ settings, members, seqs, breaker });
    }
  }
}
