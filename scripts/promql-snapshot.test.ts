/**
 * The snapshot's PromQL over two scrapes (scripts/promql-snapshot.ts) and its page (scripts/metrics-snapshot.ts):
 * rates and increases over the window (a counter reset counted from zero), aggregations, Prometheus's
 * histogram_quantile interpolation, one-to-one division, Grafana's variables and legends; what the dashboard
 * does not use throws; every query of ops/grafana/convos-agents.json is supported.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatValue, renderDashboard } from './metrics-snapshot';
import type { Sample } from './prometheus-text';
import { bucketQuantile, evaluate, legendOf, type Scrape, substituteVariables } from './promql-snapshot';
import { projectRoot } from './temporal-dev';

const s = (name: string, labels: Record<string, string>, value: number): Sample => ({ name, labels, value });

const first: Scrape = {
  at: 0,
  samples: [
    s('calls_total', { pool: 'p', provider: 'local', step: 'create' }, 10),
    s('calls_total', { pool: 'p', provider: 'local', step: 'destroy' }, 4),
    s('calls_total', { pool: 'q', provider: 'railway', step: 'create' }, 100),
    s('claims_count', { pool: 'p', outcome: 'bound', warm: 'true' }, 6),
    s('claims_count', { pool: 'p', outcome: 'bound', warm: 'false' }, 2),
    s('lat_bucket', { pool: 'p', le: '0.1' }, 0),
    s('lat_bucket', { pool: 'p', le: '0.5' }, 0),
    s('lat_bucket', { pool: 'p', le: '+Inf' }, 0),
  ],
};
const last: Scrape = {
  at: 10_000,
  samples: [
    s('calls_total', { pool: 'p', provider: 'local', step: 'create' }, 30),
    // A restarted process: the counter began again at zero.
    s('calls_total', { pool: 'p', provider: 'local', step: 'destroy' }, 3),
    s('calls_total', { pool: 'q', provider: 'railway', step: 'create' }, 150),
    s('calls_total', { pool: 'p', provider: 'new', step: 'create' }, 7),
    s('claims_count', { pool: 'p', outcome: 'bound', warm: 'true' }, 12),
    s('claims_count', { pool: 'p', outcome: 'bound', warm: 'false' }, 4),
    s('lat_bucket', { pool: 'p', le: '0.1' }, 5),
    s('lat_bucket', { pool: 'p', le: '0.5' }, 10),
    s('lat_bucket', { pool: 'p', le: '+Inf' }, 10),
    s('idle', { pool: 'p', status: 'idle' }, 3),
  ],
};

const values = (expr: string) =>
  evaluate(expr, first, last)
    .map((r) => ({ ...r, labels: { ...r.labels } }))
    .sort((a, b) => (JSON.stringify(a.labels) < JSON.stringify(b.labels) ? -1 : 1));

describe('evaluate over two scrapes', () => {
  it('rate and increase are over the window between the scrapes, whatever the range says; a reset counts from zero', () => {
    expect(values('rate(calls_total{pool="p"}[5m])')).toEqual([
      { labels: { pool: 'p', provider: 'local', step: 'create' }, value: 2 },
      { labels: { pool: 'p', provider: 'local', step: 'destroy' }, value: 0.3 },
    ]);
    // A series only in the second scrape has no rate yet.
    expect(values('increase(calls_total{provider="new"}[1h])')).toEqual([]);
    expect(values('sum(increase(calls_total[1h]))')).toEqual([{ labels: {}, value: 20 + 3 + 50 }]);
  });

  it('aggregates by and without, with the matchers', () => {
    expect(values('sum by (pool) (rate(calls_total{pool=~"p|q"}[1m]))')).toEqual([
      { labels: { pool: 'p' }, value: 2.3 },
      { labels: { pool: 'q' }, value: 5 },
    ]);
    expect(values('max without (step) (calls_total{provider!="new",pool!~"q"})')).toEqual([
      { labels: { pool: 'p', provider: 'local' }, value: 30 },
    ]);
    expect(values('count(calls_total)')).toEqual([{ labels: {}, value: 4 }]);
    expect(values('idle{status="idle"}')).toEqual([
      { labels: { __name__: 'idle', pool: 'p', status: 'idle' }, value: 3 },
    ]);
  });

  it("histogram_quantile interpolates inside the bucket as Prometheus's bucketQuantile does", () => {
    const q = (quantile: number) =>
      values(`histogram_quantile(${quantile}, sum by (le) (rate(lat_bucket{pool="p"}[5m])))`)[0]!.value;
    expect(q(0.5)).toBeCloseTo(0.1);
    expect(q(0.75)).toBeCloseTo(0.3);
    expect(
      bucketQuantile(0.99, [
        { le: 1, count: 1 },
        { le: Number.POSITIVE_INFINITY, count: 10 },
      ]),
    ).toBe(1);
    expect(
      bucketQuantile(0.5, [
        { le: 1, count: 0 },
        { le: Number.POSITIVE_INFINITY, count: 0 },
      ]),
    ).toBeNaN();
    expect(bucketQuantile(0.5, [{ le: 1, count: 3 }])).toBeNaN();
  });

  it('divides one-to-one vectors and scalars (the warm-hit rate)', () => {
    const [warm] = values(
      'sum(rate(claims_count{warm="true"}[5m])) / sum(rate(claims_count{outcome="bound"}[5m]))',
    );
    expect(warm!.labels).toEqual({});
    expect(warm!.value).toBeCloseTo(0.75);
    expect(values('sum(idle) * 2 + 1')).toEqual([{ labels: {}, value: 7 }]);
    expect(values('2 / 4')).toEqual([{ labels: {}, value: 0.5 }]);
  });

  it('throws for what it does not evaluate, and for what does not parse', () => {
    expect(() => values('topk(1, calls_total)')).toThrow(/not supported/);
    expect(() => values('calls_total > 1')).toThrow(/not supported/);
    expect(() => values('sum(rate(calls_total[5m])) by (')).toThrow(/does not parse/);
  });

  it("replaces Grafana's variables and formats legends", () => {
    expect(
      substituteVariables('rate(x{pool=~"$pool"}[$__rate_interval])', { pool: 'a-1', windowSeconds: 29.6 }),
    ).toBe('rate(x{pool=~"a-1"}[30s])');
    expect(legendOf('{{provider}} {{ step }}', { provider: 'local', step: 'create' })).toBe('local create');
    expect(legendOf(undefined, { a: '1' })).toBe('{a="1"}');
    expect(formatValue(0.0421, 's')).toBe('42.1 ms');
    expect(formatValue(0.5, 'percentunit')).toBe('50%');
    expect(formatValue(3 * 2 ** 20, 'bytes')).toBe('3 MiB');
    expect(formatValue(Number.NaN, 'reqps')).toBe('no data');
  });
});

describe('the page', () => {
  const dashboard = JSON.parse(
    fs.readFileSync(path.join(projectRoot, 'ops', 'grafana', 'convos-agents.json'), 'utf8'),
  );

  it('evaluates every query of the dashboard (none unsupported) and lays out every panel', () => {
    const { html } = renderDashboard(dashboard, first, last, '.+', ['api:3001']);
    expect(html).not.toContain('class="error"');
    const titles: string[] = [];
    const walk = (panels: Array<{ title: string; panels?: unknown[] }>) => {
      for (const p of panels) {
        titles.push(p.title);
        walk((p.panels ?? []) as typeof panels);
      }
    };
    walk(dashboard.panels);
    for (const title of titles) expect(html).toContain(title.replaceAll('&', '&amp;'));
    // Floated up as Grafana does: the first timeseries row follows the stat row (rows 1-6) with no gap.
    const [timeseries] = dashboard.panels.filter((p: { type: string }) => p.type === 'timeseries');
    expect(timeseries.gridPos.y).toBeGreaterThan(6);
    expect(html).toMatch(new RegExp(`grid-row:7/span ${timeseries.gridPos.h}"><h3>${timeseries.title}`));
  });

  it('folds the series that do not fit into one line, the largest shown', () => {
    const many = {
      title: 'x',
      panels: [
        {
          id: 1,
          type: 'timeseries',
          title: 'Calls',
          gridPos: { x: 0, y: 0, w: 8, h: 3 },
          targets: [{ expr: 'calls_total', legendFormat: '{{pool}} {{step}}' }],
        },
      ],
    };
    const { html } = renderDashboard(many, first, last, '.+', []);
    // Two rows fit: the largest (150), then the other three folded into one line.
    expect(html).toContain('q create');
    expect(html).toContain('and 3 more series</td>');
    expect(html).not.toContain('p create');
  });

  it('shows an unsupported query as an error on its panel, not as a value', () => {
    const broken = {
      title: 'x',
      panels: [
        {
          id: 1,
          type: 'timeseries',
          title: 'Top',
          gridPos: { x: 0, y: 0, w: 8, h: 8 },
          targets: [{ expr: 'topk(1, calls_total)' }],
        },
      ],
    };
    expect(renderDashboard(broken, first, last, '.+', []).html).toMatch(/class="error">not supported/);
  });
});
