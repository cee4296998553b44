/**
 * The health sweeper: liveness of idle and claimed instances, watched from outside their workflows
 * (docs/architecture.md, "Liveness"). One long-running activity per shard of a pool's live instances reads
 * them from the read model, checks each runtime's `/pool/health` every `intervalMs` (a few at a time), counts
 * failures in memory and signals an instance workflow only when its runtime failed `failuresAllowed` checks in
 * a row (or its provider reports it gone). A signal is a billable action: nothing is sent while nothing changes.
 *
 * Tokens are read from the secret store here, in the worker, and kept in this activity's memory only: never in
 * its input, its heartbeat details or a signal.
 */
import { Context } from '@temporalio/activity';
import { and, eq, inArray, isNotNull, sql } from 'drizzle-orm';
import { INSTANCE_TOKEN } from '../contracts/secrets';
import { instanceWorkflowId } from '../contracts/workflow-ids';
import { instances } from '../drizzle/schema';
import { healthChangedSignal } from '../workflows/messages';
import type { HealthChange, HealthSweeperSettings } from '../workflows/types';
import type { ReconcileDeps } from './reconcile';
import { fetchHealth, type HealthReport } from './runtime-client';

/** An instance as the sweeper sees it in the read model. */
export interface SweptInstance {
  id: string;
  seq: number;
  status: string;
  provider: string;
  url: string;
}

/**
 * Failure counts per instance and the decision to tell its workflow. A count belongs to one read-model `seq`:
 * any transition (a restart, a claim) starts it again. While a row stays unchanged after a report, the report
 * is sent again every `failuresAllowed` further failures (a workflow that continued as new meanwhile, or a
 * signal lost with a worker, hears it again).
 */
export class HealthTracker {
  private readonly counts = new Map<string, { seq: number; failures: number }>();

  constructor(private readonly failuresAllowed: number) {}

  /** The change to signal after this check, or null (the usual case: nothing changed). */
  observe(instance: { id: string; seq: number }, report: HealthReport): HealthChange | null {
    let entry = this.counts.get(instance.id);
    if (!entry || entry.seq !== instance.seq) {
      entry = { seq: instance.seq, failures: 0 };
      this.counts.set(instance.id, entry);
    }
    if (report.ready) {
      entry.failures = 0;
      return null;
    }
    // A runtime its provider reports gone counts as all misses at once (e.g. after a machine restart).
    entry.failures = report.gone ? Math.max(entry.failures + 1, this.failuresAllowed) : entry.failures + 1;
    if (entry.failures < this.failuresAllowed) return null;
    const failures = entry.failures;
    entry.failures = 0;
    return {
      seq: instance.seq,
      healthy: false,
      failures,
      gone: report.gone === true,
      error: report.error ?? 'not ready',
    };
  }

  /** Drops the instances no longer live in this shard. */
  retain(ids: Set<string>): void {
    for (const id of this.counts.keys()) if (!ids.has(id)) this.counts.delete(id);
  }

  /** The non-zero counts, for the heartbeat details (a worker that takes over goes on counting). */
  details(): Array<[string, number, number]> {
    return [...this.counts].filter(([, e]) => e.failures > 0).map(([id, e]) => [id, e.seq, e.failures]);
  }

  restore(details: Array<[string, number, number]> | undefined): void {
    for (const [id, seq, failures] of details ?? []) this.counts.set(id, { seq, failures });
  }
}

/**
 * Runs `fn` over `items`, at most `limit` at a time, the i-th started no earlier than `i × spreadMs / n` after
 * the call: a pass spread over its interval instead of a burst at its start, so a few hundred checks every
 * interval neither starve the claims on the same worker for a moment nor hit the runtimes all at once.
 * `wait` sleeps (the activity's cancellable sleep); a check that falls behind its slot starts at once.
 */
export async function forEachPaced<T>(
  items: T[],
  pace: { limit: number; spreadMs: number; wait: (ms: number) => Promise<void> },
  fn: (item: T) => Promise<void>,
) {
  const startedAt = Date.now();
  const spacing = items.length > 0 ? pace.spreadMs / items.length : 0;
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      const due = startedAt + i * spacing - Date.now();
      if (due > 0) await pace.wait(due);
      await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(pace.limit, items.length) }, lane));
}

/** The part of the interval a pass is spread over: the rest is slack for checks that hang up to their timeout. */
const PASS_SPREAD = 0.8;

/** The shard of an instance id (Postgres `hashtext`, shifted to be non-negative). */
const shardOf = (shards: number) =>
  sql<number>`mod(hashtext(${instances.id})::bigint + 2147483648, ${shards})`;

export interface SweepInput extends HealthSweeperSettings {
  shard: number;
  /** The activity returns after this long (the workflow starts the next run). */
  runForMs: number;
  /** Heartbeats at most this often (each one recorded is a billable action). */
  heartbeatEveryMs: number;
}

/** What a run did: for the workflow's history and the tests. */
export interface SweepReport {
  passes: number;
  checks: number;
  signals: number;
}

export function createHealthSweeperActivities(deps: ReconcileDeps) {
  /** The runtime's health, and whether its provider still runs it when it does not answer. */
  async function probe(instance: Omit<SweptInstance, 'seq' | 'status'>, poolName: string, token: string) {
    const health = await fetchHealth(instance.url, token);
    if (health.reachable) return health;
    const running = await deps.compute[instance.provider]
      ?.isRunning?.(instance.id, poolName)
      .catch(() => null);
    if (running === false)
      return { reachable: false, ready: false, gone: true, error: 'runtime is not running' } as HealthReport;
    return health;
  }

  /** One health check of a runtime (the instance workflow's own, while starting and after a restart). */
  async function checkHealth(input: {
    instanceId: string;
    poolName: string;
    provider: string;
    url: string;
  }): Promise<HealthReport> {
    const token = await deps.secrets.get(input.instanceId, INSTANCE_TOKEN);
    if (!token) return { reachable: false, ready: false, error: 'instance token missing' };
    return probe({ id: input.instanceId, provider: input.provider, url: input.url }, input.poolName, token);
  }

  async function liveInstances(poolName: string, shard: number, shards: number): Promise<SweptInstance[]> {
    const rows = await deps.db
      .select({
        id: instances.id,
        seq: instances.seq,
        status: instances.status,
        provider: instances.provider,
        url: instances.url,
      })
      .from(instances)
      .where(
        and(
          eq(instances.pool, poolName),
          inArray(instances.status, ['idle', 'claimed']),
          isNotNull(instances.url),
          sql`${shardOf(shards)} = ${shard}`,
        ),
      )
      .orderBy(instances.id);
    return rows as SweptInstance[];
  }

  return {
    checkHealth,

    /** One shard's sweep for `runForMs`: a pass every `intervalMs`, a signal only on a change. */
    async sweepHealth(input: SweepInput): Promise<SweepReport> {
      const ctx = Context.current();
      const tracker = new HealthTracker(input.failuresAllowed);
      tracker.restore(ctx.info.heartbeatDetails as Array<[string, number, number]> | undefined);
      const tokens = new Map<string, string>();
      const report: SweepReport = { passes: 0, checks: 0, signals: 0 };
      const until = Date.now() + input.runForMs;
      let lastBeat = 0;
      const cancelled = () => ctx.cancellationSignal.aborted;
      // The failure counts go out in the heartbeat details, at most every `heartbeatEveryMs` (each is an action).
      const beat = () => {
        if (Date.now() - lastBeat < input.heartbeatEveryMs) return;
        ctx.heartbeat(tracker.details());
        lastBeat = Date.now();
      };

      const check = async (instance: SweptInstance) => {
        let token = tokens.get(instance.id);
        if (!token) {
          token = (await deps.secrets.get(instance.id, INSTANCE_TOKEN).catch(() => null)) ?? undefined;
          if (token) tokens.set(instance.id, token);
        }
        const health: HealthReport = token
          ? await probe(instance, input.poolName, token)
          : { reachable: false, ready: false, error: 'instance token missing' };
        // A refused token may be a rotated one: read it again next time.
        if (health.error === 'health answered 401' || health.error === 'health answered 403')
          tokens.delete(instance.id);
        report.checks += 1;
        beat();
        deps.metrics?.healthChecks.inc({ result: health.ready ? 'ready' : 'unready' });
        const change = tracker.observe(instance, health);
        if (!change) return;
        await deps.temporal.workflow
          .getHandle(instanceWorkflowId(instance.id))
          .signal(healthChangedSignal, change)
          .then(() => {
            report.signals += 1;
            deps.metrics?.healthSignals.inc();
          })
          // Gone meanwhile (destroyed, or not yet visible): the next pass sees the row as it is then.
          .catch(() => {});
      };

      while (!cancelled() && Date.now() < until) {
        const passStarted = Date.now();
        try {
          const live = await liveInstances(input.poolName, input.shard, input.shards);
          // Checks spread over the interval; each instance keeps its slot (ordered by id), so its checks stay
          // one interval apart.
          await forEachPaced(
            live,
            {
              limit: input.concurrency,
              spreadMs: Math.min(input.intervalMs * PASS_SPREAD, until - Date.now()),
              wait: (ms) => ctx.sleep(ms).catch(() => {}),
            },
            (instance) => (cancelled() ? Promise.resolve() : check(instance)),
          );
          const ids = new Set(live.map((i) => i.id));
          tracker.retain(ids);
          for (const id of tokens.keys()) if (!ids.has(id)) tokens.delete(id);
          report.passes += 1;
          deps.metrics?.healthPasses.inc({ outcome: 'ok' });
        } catch (err) {
          deps.metrics?.healthPasses.inc({ outcome: 'failed' });
          // The read model unreachable: keep the counts and try again next pass.
          ctx.log.warn('health sweep pass failed', { error: (err as Error).message, shard: input.shard });
        }
        beat();
        const wait = Math.min(input.intervalMs - (Date.now() - passStarted), until - Date.now());
        if (wait > 0) await ctx.sleep(wait).catch(() => {});
      }
      return report;
    },
  };
}
