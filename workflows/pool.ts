/**
 * The pool controller: one workflow per pool (`pool-<name>`). It keeps `idle + starting ≥ targetIdle`
 * within `maxTotal`, starts instance workflows, answers replenish / drain / setTarget, and stops warming
 * through a circuit breaker when starts keep failing.
 *
 * It decides on counts read from the read model at each wake-up (one activity), plus the instances it
 * started that the read model does not show yet; it keeps nothing per member, so its history, continue-as-new
 * input and Query answer stay the same size at 10,000 instances as at 10. Instances' reports of their
 * transitions only wake it (and feed the breaker); a lost one costs a poll interval, never a wrong count.
 * Runs recorded before `COUNTS_FROM_READ_MODEL_PATCH` keep the member map they were built on.
 */
import {
  allHandlersFinished,
  condition,
  continueAsNew,
  ParentClosePolicy,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  sleep,
  startChild,
  uuid4,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { PoolMemberCounts } from '../activities/pool-members';
import { instanceWorkflowId } from '../contracts/workflow-ids';
import { instanceWorkflow } from './instance';
import {
  applySettingsUpdate,
  drainUpdate,
  getPoolStateQuery,
  instanceChangedSignal,
  replenishUpdate,
  setTargetUpdate,
} from './messages';
import { ComputeProviderKey, InstanceStatusKey, PoolNameKey, RuntimeVersionKey } from './search-attributes';
import {
  INSTANCE_STATUSES,
  type InstanceStatus,
  POOL_SETTING_KEYS,
  type PoolInput,
  type PoolSettingKey,
  type PoolSettings,
  type PoolSettingsReport,
  type PoolState,
} from './types';

const { drainInstances } = proxyActivities<Activities>({
  startToCloseTimeout: '1m',
  retry: { maximumAttempts: 3 },
});

/**
 * The read of the read model, as an activity: its result is an event in history, so every replay sees it where
 * the run did. A local activity (runs before `POOL_READ_ACTIVITY_PATCH`) still running when a workflow task ends
 * (the worker heartbeats a task held open, or the worker is lost) can be resolved on replay in another task than
 * the run had (the SDK's open issue temporalio/sdk-rust#1146: such tasks collapse differently on replay): the
 * post-run replay once saw an Update accepted first in a task replay after the child starts that followed the
 * read. Not reproduced at will; with an activity the read's result has its place in history.
 */
const { countPoolMembers: readPoolMembers } = proxyActivities<Activities>({
  startToCloseTimeout: '30s',
  retry: { initialInterval: '1s', maximumInterval: '10s' },
});
/** Runs before `POOL_READ_ACTIVITY_PATCH` read with a local activity, and replay that way. */
const { countPoolMembers: readPoolMembersLocally } = proxyLocalActivities<Activities>({
  startToCloseTimeout: '30s',
  retry: { initialInterval: '1s', maximumInterval: '10s' },
});
const POOL_READ_ACTIVITY_PATCH = 'pool-read-activity';

/** A start the pool drained on purpose is not a start failure (the circuit breaker ignores it). */
const INTENTIONAL_DRAIN_PATCH = 'pool-intentional-drain';
/** Replacements starting at once while older instances retire, unless declared (POOL_UPGRADE_BATCH). */
const DEFAULT_UPGRADE_BATCH = 10;
/** Counts come from the read model; no member map. */
const COUNTS_FROM_READ_MODEL_PATCH = 'pool-counts-from-read-model';
/** Wake-ups in quick succession (a claim burst: a report per claim) read the read model once per gap. */
const REFRESH_GAP_PATCH = 'pool-refresh-gap';
const MIN_REFRESH_GAP_MS = 1000;
/** A start the read model has not shown within this long is forgotten (its workflow never wrote a row). */
const LAUNCH_UNSEEN_FORGET_MS = 10 * 60_000;

/** Signals per run before continuing as new (Temporal allows 10,000; history stays small). */
const SIGNALS_PER_RUN = 2000;

const copy = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;
const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** Refuses (before anything is applied) settings no environment could have declared. */
export function validatePoolSettings(next: PoolSettings, poolName: string) {
  const int = (name: string, value: unknown, min: number, max = Number.MAX_SAFE_INTEGER) => {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max)
      throw new Error(`${name} must be an integer in ${min}..${max}`);
  };
  if (next?.poolName !== poolName)
    throw new Error(`settings are for pool "${next?.poolName}", not "${poolName}"`);
  int('targetIdle', next.targetIdle, 0, 1000);
  int('maxTotal', next.maxTotal, 1, 10_000);
  if (typeof next.computeProvider !== 'string' || !/^[a-z][a-z0-9-]{0,31}$/.test(next.computeProvider))
    throw new Error('computeProvider must be a provider name');
  int('breakerThreshold', next.breakerThreshold, 1);
  int('breakerCooldownMs', next.breakerCooldownMs, 0);
  int('pollIntervalMs', next.pollIntervalMs, 100);
  if (next.reconcileIntervalMs !== undefined) int('reconcileIntervalMs', next.reconcileIntervalMs, 1000);
  if (next.upgradeBatch !== undefined) int('upgradeBatch', next.upgradeBatch, 1, 1000);
  const version = next.runtimeVersion;
  if (
    version !== undefined &&
    version !== null &&
    (typeof version !== 'string' || !/^[\x21-\x7e]{1,200}$/.test(version))
  )
    throw new Error('runtimeVersion must be 1..200 visible ASCII characters, or null');
  const timings = next.instanceTimings as unknown as Record<string, unknown> | undefined;
  if (!timings || typeof timings !== 'object') throw new Error('instanceTimings must be an object');
  for (const [key, value] of Object.entries(timings)) int(`instanceTimings.${key}`, value, 0);
}

export async function poolWorkflow(input: PoolInput): Promise<void> {
  const settings = copy(input.settings);
  // A pool started before settings were declared: what it was started with is what was declared.
  let declared = copy(input.declared ?? input.settings);
  const members: Record<string, InstanceStatus> = { ...input.members };
  const seqs: Record<string, number> = { ...input.seqs };
  // Members of a run before providers were tracked are on the provider the pool had then.
  const providers: Record<string, string> =
    input.providers ?? Object.fromEntries(Object.keys(members).map((id) => [id, settings.computeProvider]));
  const breaker = input.breaker ?? { consecutiveFailures: 0, openedAt: null };
  const fromReadModel = patched(COUNTS_FROM_READ_MODEL_PATCH);
  // Asked once, at the run's start: the marker lands in its first workflow task, not mid-run.
  const countPoolMembers = patched(POOL_READ_ACTIVITY_PATCH) ? readPoolMembers : readPoolMembersLocally;
  if (fromReadModel) {
    // A run that kept a member map hands over to the read model: it already holds every member.
    for (const key of [members, seqs, providers]) for (const id of Object.keys(key)) delete key[id];
  }
  /** Instances this pool started that the read model did not show yet: when, on which provider and version. */
  const launched: Record<string, { at: number; provider: string; version?: string | null }> = {
    ...input.launched,
  };
  /** The read model at the last decision (read-model runs only). */
  let latest: PoolMemberCounts | null = null;
  /** Started and not yet in the read model: counted as starting. */
  const unseen = (filter: (l: { provider: string; version?: string | null }) => boolean = () => true) =>
    Object.values(launched).filter(filter).length;
  /** What new instances get now: the provider in force and the declared runtime version (null: unknown). */
  const version = () => settings.runtimeVersion ?? null;
  /** On the provider and version in force (an unknown version on either side never counts as another one). */
  const isCurrent = (provider: string, v: string | null | undefined) =>
    provider === settings.computeProvider && (!v || !version() || v === version());
  let dirty = true;
  let signals = 0;
  /** Retiring members this run has asked to drain already (asking again would only be rejected). */
  const retireAsked = new Set<string>();
  /** Members the pool is draining on purpose: a starting one ending that way is no start failure. */
  const drainRequested = new Set<string>();

  const emptyCounts = () =>
    Object.fromEntries(INSTANCE_STATUSES.map((st) => [st, 0])) as Record<InstanceStatus, number>;
  /** Every live instance by status (the read model's, or the member map's). */
  const counts = (filter: (id: string) => boolean = () => true) => {
    if (fromReadModel) {
      const c = { ...(latest?.counts ?? emptyCounts()) };
      c.starting += unseen();
      return c;
    }
    const c = emptyCounts();
    for (const [id, st] of Object.entries(members)) if (filter(id)) c[st] += 1;
    return c;
  };
  /** Idle and starting on the provider in force. */
  const current = () => {
    if (fromReadModel) {
      const c = latest?.current ?? { idle: 0, starting: 0 };
      return { idle: c.idle, starting: c.starting + unseen((l) => isCurrent(l.provider, l.version)) };
    }
    const c = counts(onCurrentProvider);
    return { idle: c.idle, starting: c.starting };
  };
  const onCurrentProvider = (id: string) =>
    (providers[id] ?? settings.computeProvider) === settings.computeProvider;
  /** Unclaimed members on a provider that is no longer in force: replaced, then drained. */
  const retiring = () =>
    fromReadModel
      ? (latest?.retiring ?? [])
      : Object.keys(members).filter(
          (id) => !onCurrentProvider(id) && (members[id] === 'idle' || members[id] === 'starting'),
        );
  const overridden = () => POOL_SETTING_KEYS.filter((key) => !same(settings[key], declared[key]));
  /** How many unclaimed instances the settings in force retire (from the last read, at once). */
  const retiringCount = () =>
    fromReadModel
      ? (latest?.unclaimed ?? [])
          .filter((g) => !isCurrent(g.provider, g.version))
          .reduce((n, g) => n + g.idle + g.starting, 0)
      : retiring().length;
  const report = (changed: PoolSettingKey[]): PoolSettingsReport => ({
    settings: copy(settings),
    declared: copy(declared),
    overridden: overridden(),
    changed,
    retiring: retiringCount(),
  });
  const upgradeBatch = () => settings.upgradeBatch ?? DEFAULT_UPGRADE_BATCH;
  const total = () =>
    fromReadModel
      ? Object.values(latest?.counts ?? {}).reduce((a, b) => a + b, 0) + unseen()
      : Object.keys(members).length;

  /** Reads the read model (read-model runs): the counts, and which started instances it shows now. */
  async function refreshCounts() {
    if (!fromReadModel) return;
    latest = await countPoolMembers({
      poolName: settings.poolName,
      provider: settings.computeProvider,
      runtimeVersion: version(),
      launched: Object.keys(launched),
    });
    for (const id of latest.seen) delete launched[id];
    const now = Date.now();
    for (const [id, l] of Object.entries(launched))
      if (now - l.at > LAUNCH_UNSEEN_FORGET_MS) delete launched[id];
  }
  const breakerOpen = () => breaker.consecutiveFailures >= settings.breakerThreshold;

  setHandler(
    getPoolStateQuery,
    (): PoolState => ({
      settings,
      counts: counts(),
      members,
      breaker: { ...breaker, open: breakerOpen() },
      config: (({ changed: _, ...rest }) => rest)(report([])),
    }),
  );

  setHandler(
    applySettingsUpdate,
    (next) => {
      const changed: PoolSettingKey[] = [];
      for (const key of POOL_SETTING_KEYS) {
        // Only what the declaration changed applies: an unchanged declaration keeps an operator's change.
        if (same(next[key], declared[key])) continue;
        if (!same(next[key], settings[key])) changed.push(key);
        (settings as unknown as Record<string, unknown>)[key] = copy(next[key]);
      }
      declared = copy(next);
      dirty = true;
      return report(changed);
    },
    { validator: (next) => validatePoolSettings(next, settings.poolName) },
  );

  setHandler(instanceChangedSignal, ({ instanceId, status, seq, from, actor }) => {
    signals += 1;
    dirty = true;
    if (fromReadModel) {
      // Only the breaker listens: a start the system ended without reaching idle is a failure (a drain or a
      // kill ends it on purpose: actor pool / operator), one that reached idle a success.
      if (status === 'destroyed') drainRequested.delete(instanceId);
      if (from !== 'starting') return;
      if (status === 'idle') {
        breaker.consecutiveFailures = 0;
        breaker.openedAt = null;
      } else if (actor ? actor === 'system' : !drainRequested.has(instanceId)) {
        breaker.consecutiveFailures += 1;
        if (breakerOpen()) breaker.openedAt = new Date().toISOString();
      }
      drainRequested.delete(instanceId);
      return;
    }
    // Signals may arrive out of order; an older report never overwrites a newer one.
    if (seq !== undefined && seq <= (seqs[instanceId] ?? 0)) return;
    if (seq !== undefined) seqs[instanceId] = seq;
    const previous = members[instanceId];
    if (
      previous === 'starting' &&
      (status === 'destroying' || status === 'destroyed' || status === 'failed') &&
      // Histories from before this rule replay as they ran (they counted a drained start as a failure).
      !(drainRequested.has(instanceId) && patched(INTENTIONAL_DRAIN_PATCH))
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
      delete providers[instanceId];
      drainRequested.delete(instanceId);
    } else if (previous !== undefined || seq !== undefined) {
      members[instanceId] = status;
    }
  });

  async function startInstances(n: number): Promise<string[]> {
    const ids = Array.from({ length: n }, () => uuid4());
    for (const id of ids) {
      if (fromReadModel) {
        launched[id] = { at: Date.now(), provider: settings.computeProvider, version: version() };
        continue;
      }
      members[id] = 'starting';
      providers[id] = settings.computeProvider;
    }
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
              ...(version() ? { runtimeVersion: version() } : {}),
            },
          ],
          // Instances outlive the pool's runs (continue-as-new) and the pool itself.
          parentClosePolicy: ParentClosePolicy.ABANDON,
          typedSearchAttributes: [
            { key: InstanceStatusKey, value: 'starting' },
            { key: ComputeProviderKey, value: settings.computeProvider },
            { key: PoolNameKey, value: settings.poolName },
            ...(version() ? [{ key: RuntimeVersionKey, value: version()! }] : []),
          ],
        }),
      ),
    );
    return ids;
  }

  /**
   * How many to start now: the deficit to the target (counting only instances on the provider in force), within
   * maxTotal; one trial while the breaker cools.
   */
  function deficit(): number {
    const c = current();
    let want = Math.max(0, settings.targetIdle - c.idle - c.starting);
    // Replacing retiring instances (a new version or provider): a bounded number starting at a time, while the
    // old ones keep serving claims.
    if (fromReadModel && retiring().length > 0)
      want = Math.min(want, Math.max(0, upgradeBatch() - c.starting));
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
      if (fromReadModel) {
        // The activity picks them from the read model; their reports carry who ended them (the breaker's rule).
        const drained = await drainInstances({ poolName: settings.poolName, count });
        dirty = true;
        return drained;
      }
      const candidates = [
        ...Object.keys(members).filter((id) => members[id] === 'idle'),
        ...Object.keys(members).filter((id) => members[id] === 'starting'),
      ];
      for (const id of candidates) drainRequested.add(id);
      const drained = await drainInstances({ candidates, count });
      for (const id of candidates) if (!drained.includes(id)) drainRequested.delete(id);
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

  /**
   * After a change of compute provider: the old provider's idle instances keep serving claims until the new
   * provider has warmed to the target, then they are drained (claimed ones are never touched); before that,
   * only as many as maxTotal needs to make room for the new ones.
   */
  async function retireOldProvider() {
    const candidates = retiring().filter((id) => !retireAsked.has(id));
    if (candidates.length === 0) return;
    const now = current();
    const want = Math.max(0, settings.targetIdle - now.idle - now.starting);
    const room = Math.max(0, settings.maxTotal - total());
    const count = now.idle >= settings.targetIdle ? candidates.length : Math.max(0, want - room);
    if (count === 0) return;
    // Starting ones first: they serve nobody yet (the read model lists them in that order already).
    const ordered = fromReadModel
      ? candidates
      : [
          ...candidates.filter((id) => members[id] === 'starting'),
          ...candidates.filter((id) => members[id] === 'idle'),
        ];
    const asked = ordered.slice(0, count);
    for (const id of asked) {
      retireAsked.add(id);
      drainRequested.add(id);
    }
    await drainInstances({
      candidates: asked,
      count,
      reason: version()
        ? `replaced by ${settings.computeProvider} runtime ${version()}`
        : `compute provider changed to ${settings.computeProvider}`,
    });
  }

  // Runs recorded before the gap read at every wake-up, and replay that way.
  const refreshGap = fromReadModel && patched(REFRESH_GAP_PATCH);
  let lastRefreshAt = 0;
  for (;;) {
    // Wake on any change, and at least every poll interval (the breaker's cooldown is time-based).
    await condition(() => dirty, settings.pollIntervalMs);
    // A report right after a read waits out the gap: the reports arriving meanwhile share the next read,
    // so a burst of claims costs a read (an activity and its queries) per second, not one per claim.
    const sinceRefresh = Date.now() - lastRefreshAt;
    if (refreshGap && sinceRefresh < MIN_REFRESH_GAP_MS) await sleep(MIN_REFRESH_GAP_MS - sinceRefresh);
    dirty = false;
    await refreshCounts();
    lastRefreshAt = Date.now();
    const n = deficit();
    if (n > 0) await startInstances(n);
    await retireOldProvider();

    const info = workflowInfo();
    if (info.continueAsNewSuggested || signals >= SIGNALS_PER_RUN || info.historyLength > 10_000) {
      await condition(allHandlersFinished);
      return continueAsNew<typeof poolWorkflow>(
        fromReadModel
          ? { settings, declared, breaker, launched }
          : { settings, declared, members, seqs, providers, breaker },
      );
    }
  }
}
