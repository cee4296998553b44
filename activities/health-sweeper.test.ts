/** The health sweeper's decision: signal only after N misses in a row at one `seq`, and nothing while healthy. */
import { describe, expect, it } from 'vitest';
import { forEachPaced, HealthTracker } from './health-sweeper';

const ok = { reachable: true, ready: true };
const miss = { reachable: false, ready: false, error: 'fetch failed' };

describe('HealthTracker', () => {
  it('says nothing while a runtime answers, and once after N misses in a row', () => {
    const t = new HealthTracker(3);
    const i = { id: 'a', seq: 2 };
    for (let k = 0; k < 100; k++) expect(t.observe(i, ok)).toBeNull();
    expect(t.observe(i, miss)).toBeNull();
    expect(t.observe(i, miss)).toBeNull();
    expect(t.observe(i, ok)).toBeNull(); // not in a row
    expect(t.observe(i, miss)).toBeNull();
    expect(t.observe(i, miss)).toBeNull();
    expect(t.observe(i, miss)).toEqual({
      seq: 2,
      healthy: false,
      failures: 3,
      gone: false,
      error: 'fetch failed',
    });
    // Still the same row after the report: said again only after N further misses.
    expect(t.observe(i, miss)).toBeNull();
    expect(t.observe(i, miss)).toBeNull();
    expect(t.observe(i, miss)).not.toBeNull();
  });

  it('counts as all misses at once a runtime its provider reports gone', () => {
    const t = new HealthTracker(3);
    expect(t.observe({ id: 'a', seq: 1 }, { ...miss, gone: true })).toMatchObject({
      gone: true,
      failures: 3,
    });
  });

  it('starts again at a new seq (a restart, a claim), and keeps counts across a handover', () => {
    const t = new HealthTracker(2);
    expect(t.observe({ id: 'a', seq: 4 }, miss)).toBeNull();
    expect(t.observe({ id: 'a', seq: 6 }, miss)).toBeNull();
    const next = new HealthTracker(2);
    next.restore(t.details());
    expect(t.details()).toEqual([['a', 6, 1]]);
    expect(next.observe({ id: 'a', seq: 6 }, miss)).toMatchObject({ seq: 6, failures: 2 });
    next.retain(new Set());
    expect(next.details()).toEqual([]);
  });
});

it('forEachPaced keeps at most `limit` in flight', async () => {
  let inFlight = 0;
  let most = 0;
  const wait = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
  await forEachPaced([...Array(20).keys()], { limit: 4, spreadMs: 0, wait }, async () => {
    inFlight += 1;
    most = Math.max(most, inFlight);
    await wait(5);
    inFlight -= 1;
  });
  expect(most).toBe(4);
});

it('forEachPaced spreads the starts over `spreadMs`, each at its own slot', async () => {
  const wait = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
  const t0 = Date.now();
  const started: number[] = [];
  await forEachPaced([...Array(10).keys()], { limit: 10, spreadMs: 200, wait }, async (i) => {
    started[i] = Date.now() - t0;
  });
  // Slot i is at i × 20 ms: none early, and the last one well after the first (not a burst).
  for (const [i, at] of started.entries()) expect(at).toBeGreaterThanOrEqual(i * 20 - 2);
  expect(started[9]! - started[0]!).toBeGreaterThanOrEqual(170);
  expect(started[9]!).toBeLessThan(2000);
});
