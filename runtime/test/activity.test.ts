// Health's lastActivityAt: the clock that keeps it (monotonic, validated, persisted in STATE_DIR).
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ActivityClock } from '../src/activity.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function file(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'activity-'));
  dirs.push(dir);
  return path.join(dir, 'activity.json');
}

describe('ActivityClock', () => {
  it('is null before any activity, then the time of the latest, never going back', () => {
    let now = Date.parse('2026-03-01T10:00:00.000Z');
    const clock = new ActivityClock(null, () => now);
    expect(clock.lastActivityAt()).toBeNull();
    clock.record();
    expect(clock.lastActivityAt()).toBe('2026-03-01T10:00:00.000Z');
    now += 1_000;
    clock.merge('2026-03-01T09:00:00.000Z'); // older than what we know
    expect(clock.lastActivityAt()).toBe('2026-03-01T10:00:00.000Z');
    clock.merge('2026-03-01T10:00:00.500Z'); // the plugin saw a later message
    expect(clock.lastActivityAt()).toBe('2026-03-01T10:00:00.500Z');
  });

  it('ignores what it could not have written: non-strings, non-ISO text, times in the future', () => {
    const now = Date.parse('2026-03-01T10:00:00.000Z');
    const clock = new ActivityClock(null, () => now);
    for (const bad of [
      null,
      5,
      {},
      '',
      'yesterday',
      '2026-03-01',
      '2026-03-01T09:00:00Z',
      '2026-03-01T12:00:00.000Z',
      '2026-03-01T09:00:00.000Z\u0000',
    ]) {
      clock.merge(bad);
      expect(clock.lastActivityAt(), JSON.stringify(bad)).toBeNull();
    }
  });

  it('persists in STATE_DIR at most every 5 s (flushed at stop), so a restart reports the same time, not null', () => {
    const f = file();
    let now = Date.parse('2026-03-01T10:00:00.000Z');
    const clock = new ActivityClock(f, () => now);
    clock.record();
    expect(JSON.parse(readFileSync(f, 'utf8'))).toEqual({ lastActivityAt: '2026-03-01T10:00:00.000Z' });
    now += 1_000;
    clock.record(); // within 5 s of the last write: kept in memory, written later
    expect(JSON.parse(readFileSync(f, 'utf8')).lastActivityAt).toBe('2026-03-01T10:00:00.000Z');
    clock.flush();
    expect(JSON.parse(readFileSync(f, 'utf8')).lastActivityAt).toBe('2026-03-01T10:00:01.000Z');
    expect(new ActivityClock(f, () => now).lastActivityAt()).toBe('2026-03-01T10:00:01.000Z');
  });

  it('starts at null with no file or a damaged one, and writes nothing until there is activity', () => {
    const f = file();
    const fresh = new ActivityClock(f);
    expect(fresh.lastActivityAt()).toBeNull();
    fresh.flush();
    expect(existsSync(f)).toBe(false);
    for (const content of [
      '{not json',
      JSON.stringify({ lastActivityAt: 'soon' }),
      JSON.stringify({ lastActivityAt: '2999-01-01T00:00:00.000Z' }),
    ]) {
      writeFileSync(f, content);
      expect(new ActivityClock(f).lastActivityAt(), content).toBeNull();
    }
  });
});
