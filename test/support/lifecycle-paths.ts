/**
 * Paths through the lifecycle table, for the fast workflow tests: a test names the events an instance goes
 * through, `expectPath` checks the transitions it recorded against the table's rows for those events, and the
 * rows it saw are kept so a suite can prove that every row of the table is exercised.
 */
import { expect } from 'vitest';
import { findTransition, type Transition, type TransitionEvent } from '../../workflows/instance/transitions';
import type { InstanceStatus } from '../../workflows/types';
import { type Harness, type SeenTransition, sleep } from './instance-harness';

/** The rows a path of events goes through from a new instance; throws when the table has no such path. */
export function rowsOf(events: TransitionEvent[]): Transition[] {
  let from: InstanceStatus | null = null;
  return events.map((event) => {
    const row = findTransition(from, event);
    if (!row) throw new Error(`the table has no transition from ${from ?? '(new)'} on ${event}`);
    from = row.to;
    return row;
  });
}

/** Rows the tests of this file went through (key `from:event`). */
export const covered = new Set<string>();
export const rowKey = (row: Pick<Transition, 'from' | 'event'>) => `${row.from ?? '(new)'}:${row.event}`;

function recorded(harness: Harness, instanceId: string): SeenTransition[] {
  return harness.seen.filter((t) => t.instanceId === instanceId).sort((a, b) => a.seq - b.seq);
}

/**
 * Waits until the instance has recorded as many transitions as `events`, then checks that they are exactly
 * the table's rows for those events, in order (later transitions are not looked at). Returns them.
 */
export async function expectPath(
  harness: Harness,
  instanceId: string,
  events: TransitionEvent[],
  timeoutMs = 20_000,
): Promise<SeenTransition[]> {
  const rows = rowsOf(events);
  const until = Date.now() + timeoutMs;
  let seen = recorded(harness, instanceId);
  while (seen.length < rows.length && Date.now() < until) {
    await sleep(50);
    seen = recorded(harness, instanceId);
  }
  const path = seen.slice(0, rows.length);
  expect(path.map((t) => `${t.from ?? '(new)'} → ${t.to}`)).toEqual(
    rows.map((r) => `${r.from ?? '(new)'} → ${r.to}`),
  );
  expect(path.map((t) => t.seq)).toEqual(rows.map((_, i) => i + 1));
  for (const row of rows) covered.add(rowKey(row));
  return path;
}
