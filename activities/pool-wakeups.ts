/**
 * The reports of claims to the pool, coalesced per pool. A claim's report only wakes the pool (it counts from the
 * read model, workflows/pool.ts), so reports in quick succession — a burst of claims — need one signal per window,
 * not one per claim: each signal is a billable action and a workflow task of the pool. The first report of a
 * quiet spell goes at once; those within the next `windowMs` go as one signal at its end (the latest of them).
 * A report lost with the process costs at most one poll interval of refill latency.
 */
import type { InstanceStatus } from '../workflows/types';

export interface PoolReport {
  instanceId: string;
  status: InstanceStatus;
  seq: number;
}

export class PoolWakeups {
  /** Pools with a window open, and the report waiting for its end (null: nothing came since the last signal). */
  private readonly open = new Map<string, PoolReport | null>();

  constructor(
    private readonly send: (poolName: string, report: PoolReport) => Promise<void>,
    // The pool reads the read model at most once a second anyway (workflows/pool.ts, MIN_REFRESH_GAP_MS): a
    // shorter window would only add signals (actions, pool workflow tasks) that wake it to wait.
    private readonly windowMs = 1000,
  ) {}

  wake(poolName: string, report: PoolReport): void {
    if (this.open.has(poolName)) {
      this.open.set(poolName, report);
      return;
    }
    this.signal(poolName, report);
  }

  private signal(poolName: string, report: PoolReport): void {
    this.open.set(poolName, null);
    // `send` logs its own failures; a rejection must never go unhandled (it would end the worker process).
    this.send(poolName, report).catch(() => {});
    // Not keeping the worker alive for a wake-up: its pool reads the read model on its own timer anyway.
    setTimeout(() => {
      const waiting = this.open.get(poolName);
      if (waiting) this.signal(poolName, waiting);
      else this.open.delete(poolName);
    }, this.windowMs).unref();
  }
}
