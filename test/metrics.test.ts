/**
 * Prometheus metrics through the real entrypoints (`npm run worker`, `npm run api` as separate processes, with
 * METRICS_BEARER): the API's `/metrics`, the worker's `/metrics` (its health server) and the Temporal SDK's
 * exporter (WORKER_METRICS_PORT) parse as Prometheus text; the claim histogram moves with a claim; refusals and
 * the rate limit are counted; the instance gauges agree with `/api/pool/counts`; no label holds an instance id
 * or an agent name. Then the dashboard and the alert rules (ops/): every PromQL query parses and names only
 * series these endpoints expose, and the rules file has the shape Prometheus loads.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { parser } from '@prometheus-io/lezer-promql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { renderDashboard } from '../scripts/metrics-snapshot';
import { type Exposition, parseExposition, sampleValue, seriesNames } from '../scripts/prometheus-text';
import type { Scrape } from '../scripts/promql-snapshot';
import { projectRoot } from '../scripts/temporal-dev';
import { freePort } from './support/ports';
import { splitPool } from './support/split-pool';

const metricsBearer = randomBytes(16).toString('base64url');
const pool = splitPool('metrics', {
  POOL_TARGET_IDLE: '1',
  POOL_MAX_TOTAL: '6',
  CLAIM_RATE_LIMIT_PER_MINUTE: '3',
  METRICS_BEARER: metricsBearer,
});
const { poolName, apiKey } = pool;
const waitFor = pool.waitFor;
let apiUrl = '';
let workerUrl = '';
let sdkUrl = '';

const auth = { authorization: `Bearer ${metricsBearer}` };

/** Scrapes one endpoint: 200, the Prometheus text content type, and text that parses. */
async function scrape(url: string, headers: Record<string, string> = auth): Promise<Exposition> {
  const res = await fetch(`${url}/metrics`, { headers });
  const text = await res.text();
  expect(res.status, text.slice(0, 300)).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
  return parseExposition(text);
}

const counts = async () =>
  (await (await fetch(`${apiUrl}/api/pool/counts`)).json()) as Record<string, number>;

const claim = (body: Record<string, unknown>, headers: Record<string, string> = {}) =>
  fetch(`${apiUrl}/api/pool/claim`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${apiKey}`,
      'content-type': 'application/json',
      'idempotency-key': `metrics-${randomUUID()}`,
      ...headers,
    },
    body: JSON.stringify(body),
  });

beforeAll(async () => {
  const [apiPort, healthPort, sdkPort] = [await freePort(), await freePort(), await freePort()];
  apiUrl = `http://127.0.0.1:${apiPort}`;
  workerUrl = `http://127.0.0.1:${healthPort}`;
  sdkUrl = `http://127.0.0.1:${sdkPort}`;
  Object.assign(pool.env, {
    API_PORT: String(apiPort),
    WORKER_HEALTH_PORT: String(healthPort),
    WORKER_METRICS_PORT: String(sdkPort),
  });
  pool.run('worker');
  pool.run('api');
  await waitFor('an idle instance', async () => (await counts()).idle! >= 1, 150_000);
}, 180_000);

afterAll(() => pool.stop(), 60_000);

/** Everything the three endpoints expose, scraped once the claim tests ran (for the ops/ checks). */
const exposed = {
  api: null as Exposition | null,
  worker: null as Exposition | null,
  sdk: null as Exposition | null,
};

describe('the endpoints', () => {
  it('/metrics of the API and the worker require METRICS_BEARER when it is set', async () => {
    for (const url of [apiUrl, workerUrl]) {
      expect((await fetch(`${url}/metrics`)).status).toBe(401);
      expect((await fetch(`${url}/metrics`, { headers: { authorization: 'Bearer wrong' } })).status).toBe(
        401,
      );
    }
    // The API's /metrics is no client route: not in the OpenAPI document.
    const doc = (await (await fetch(`${apiUrl}/api/openapi.json`)).json()) as { paths: object };
    expect(Object.keys(doc.paths)).not.toContain('/metrics');
  });

  it('a claim moves the claim histogram: one more bound warm claim, its time in the sum and the buckets', async () => {
    const series = { outcome: 'bound', warm: 'true' };
    const before = await scrape(apiUrl);
    expect(before.families.get('convos_claim_duration_seconds')).toBe('histogram');
    const count0 = sampleValue(before, 'convos_claim_duration_seconds_count', series);
    const sum0 = sampleValue(before, 'convos_claim_duration_seconds_sum', series);
    const inf0 = sampleValue(before, 'convos_claim_duration_seconds_bucket', { ...series, le: '+Inf' });

    const res = await claim({ agentName: 'Metric Claim' });
    const body = (await res.json()) as { warm: boolean; instanceId: string };
    expect(res.status, JSON.stringify(body)).toBe(200);
    expect(body.warm).toBe(true);

    const after = await scrape(apiUrl);
    expect(sampleValue(after, 'convos_claim_duration_seconds_count', series)).toBe(count0 + 1);
    expect(sampleValue(after, 'convos_claim_duration_seconds_bucket', { ...series, le: '+Inf' })).toBe(
      inf0 + 1,
    );
    expect(sampleValue(after, 'convos_claim_duration_seconds_sum', series)).toBeGreaterThan(sum0);
    // Every series carries the pool; nothing is in flight or waiting once the claim answered.
    const sample = after.samples.find((s) => s.name === 'convos_claim_duration_seconds_count');
    expect(sample?.labels.pool).toBe(poolName);
    expect(sampleValue(after, 'convos_claims_in_flight')).toBe(0);
    expect(sampleValue(after, 'convos_claims_waiting')).toBe(0);
    // No label value is an instance id or the agent's name.
    const values = after.samples.flatMap((s) => Object.values(s.labels));
    expect(values).not.toContain(body.instanceId);
    expect(values.some((v) => v.includes('Metric Claim'))).toBe(false);
  });

  it('counts refusals by reason and the rate limit (per client)', async () => {
    const before = await scrape(apiUrl);
    const refused = (e: Exposition, reason: string) =>
      sampleValue(e, 'convos_claims_refused_total', { reason });
    // Unknown template, no API key, then one client over its limit (3 a minute): the fourth is a 429.
    expect((await claim({ templateSlug: 'no-such-template' })).status).toBe(400);
    expect((await claim({}, { authorization: 'Bearer nope' })).status).toBe(401);
    const flood: number[] = [];
    for (let i = 0; i < 4; i += 1)
      flood.push(
        (await claim({ templateSlug: 'no-such-template' }, { 'x-client-id': `flood-${poolName}` })).status,
      );
    expect(flood).toEqual([400, 400, 400, 429]);

    const after = await scrape(apiUrl);
    expect(refused(after, 'unknown_template')).toBe(refused(before, 'unknown_template') + 4);
    expect(refused(after, 'unauthorized')).toBe(refused(before, 'unauthorized') + 1);
    expect(sampleValue(after, 'convos_claims_rate_limited_total', { limit: 'client' })).toBe(
      sampleValue(before, 'convos_claims_rate_limited_total', { limit: 'client' }) + 1,
    );
    // Refused before the claim service: the histogram did not move.
    expect(sampleValue(after, 'convos_claim_duration_seconds_count')).toBe(
      sampleValue(before, 'convos_claim_duration_seconds_count'),
    );
  });

  it('the instance gauges agree with /api/pool/counts; the breaker and targets come from the pool', async () => {
    let last = '';
    await waitFor(
      'the gauges to match the counts',
      async () => {
        const [metrics, live] = [await scrape(apiUrl), await counts()];
        const gauges = Object.fromEntries(
          Object.keys(live).map((status) => [status, sampleValue(metrics, 'convos_instances', { status })]),
        );
        last = JSON.stringify({ gauges, live });
        return JSON.stringify(gauges) === JSON.stringify(live);
      },
      20_000,
    ).catch((err) => {
      throw new Error(`${(err as Error).message.split('\n')[0]}: ${last}`);
    });
    const metrics = await scrape(apiUrl);
    expect(sampleValue(metrics, 'convos_instances', { status: 'claimed' })).toBeGreaterThanOrEqual(1);
    expect(sampleValue(metrics, 'convos_pool_up')).toBe(1);
    expect(sampleValue(metrics, 'convos_pool_breaker_open')).toBe(0);
    expect(sampleValue(metrics, 'convos_pool_target_idle')).toBe(1);
    expect(sampleValue(metrics, 'convos_pool_max_total')).toBe(6);
    expect(metrics.families.has('convos_webhook_deliveries_total')).toBe(true);
    expect(metrics.families.has('process_resident_memory_bytes')).toBe(true);
  });

  it("the worker's /metrics counts provider calls by provider and step, and the health sweeper", async () => {
    await waitFor(
      'a health check counted',
      async () => sampleValue(await scrape(workerUrl), 'convos_health_checks_total', { result: 'ready' }) > 0,
      20_000,
    );
    const worker = await scrape(workerUrl);
    // At least the two instances (the claimed one and its replacement) were created through the provider.
    expect(
      sampleValue(worker, 'convos_provider_calls_total', { provider: 'local', step: 'create' }),
    ).toBeGreaterThanOrEqual(2);
    expect(
      sampleValue(worker, 'convos_provider_call_duration_seconds_count', {
        provider: 'local',
        step: 'create',
      }),
    ).toBeGreaterThanOrEqual(2);
    expect(worker.families.get('convos_provider_errors_total')).toBe('counter');
    expect(sampleValue(worker, 'convos_health_sweep_passes_total', { outcome: 'ok' })).toBeGreaterThan(0);
    expect(sampleValue(worker, 'convos_reconcile_runs_total', { outcome: 'failed' })).toBe(0);
    expect(worker.samples.find((s) => s.name === 'convos_provider_calls_total')?.labels.pool).toBe(poolName);
    // The API's series are not the worker's: separate processes, separate registries.
    expect(worker.families.has('convos_claim_duration_seconds')).toBe(false);
  });

  it("the Temporal SDK's exporter serves temporal_* series of this worker on WORKER_METRICS_PORT", async () => {
    const sdk = await scrape(sdkUrl, {});
    for (const name of [
      'temporal_workflow_task_execution_latency',
      'temporal_activity_execution_latency',
      'temporal_worker_task_slots_available',
      'temporal_request',
    ])
      expect([...sdk.families.keys()], name).toContain(name);
    const polled = sdk.samples.find((s) => s.name === 'temporal_num_pollers');
    expect(polled?.labels.task_queue).toBe(poolName);
    expect(polled?.labels.pool).toBe(poolName);

    exposed.api = await scrape(apiUrl);
    exposed.worker = await scrape(workerUrl);
    exposed.sdk = sdk;
  });
});

// ── ops/: the dashboard and the alert rules ─────────────────────────────────────────────────────────────────

const opsDir = path.join(projectRoot, 'ops');
const dashboard = JSON.parse(fs.readFileSync(path.join(opsDir, 'grafana', 'convos-agents.json'), 'utf8'));
const rules = YAML.parse(fs.readFileSync(path.join(opsDir, 'prometheus', 'alerts.yml'), 'utf8'));

interface Query {
  where: string;
  expr: string;
}

/** Every PromQL query of the dashboard: panel targets (rows' panels too) and query variables. */
function dashboardQueries(): Query[] {
  const queries: Query[] = [];
  const walk = (panels: Array<Record<string, unknown>>) => {
    for (const panel of panels) {
      for (const target of (panel.targets as Array<{ expr?: string }> | undefined) ?? [])
        if (target.expr) queries.push({ where: `panel "${panel.title}"`, expr: target.expr });
      if (Array.isArray(panel.panels)) walk(panel.panels as Array<Record<string, unknown>>);
    }
  };
  walk(dashboard.panels);
  for (const v of dashboard.templating?.list ?? []) {
    if (v.type !== 'query') continue;
    const q = typeof v.query === 'string' ? v.query : v.query?.query;
    // label_values(metric, label): the metric must exist too.
    const m = /^label_values\(\s*([^,]+),/.exec(q ?? '');
    queries.push({ where: `variable ${v.name}`, expr: m ? m[1]! : q });
  }
  return queries;
}

function alertRules(): Array<Record<string, unknown>> {
  return (rules.groups as Array<{ rules: Array<Record<string, unknown>> }>).flatMap((g) => g.rules);
}

/** Grafana's variables replaced by something PromQL parses ($pool, $__rate_interval, ...). */
const withoutVariables = (expr: string) =>
  expr.replaceAll(/\$__(rate_)?interval|\$__range/g, '5m').replaceAll(/\$\{?[a-zA-Z_]+(:[a-z]+)?\}?/g, 'x');

/** The metric names a PromQL expression selects (a parse error fails). */
function metricNames(expr: string): string[] {
  const text = withoutVariables(expr);
  const tree = parser.parse(text);
  const names: string[] = [];
  let error: number | null = null;
  tree.iterate({
    enter(node) {
      if (node.type.isError) error ??= node.from;
      if (node.name === 'VectorSelector') {
        const ident = node.node.getChild('Identifier');
        if (ident) names.push(text.slice(ident.from, ident.to));
        // {__name__="x"} selectors
        const m = /__name__\s*=\s*"([^"]+)"/.exec(text.slice(node.from, node.to));
        if (m) names.push(m[1]!);
      }
    },
  });
  if (error !== null) throw new Error(`PromQL does not parse at ${error}: ${expr}`);
  return names;
}

describe('ops/: the dashboard and the alert rules', () => {
  it('the alert rules file has the shape Prometheus loads, and the alerts the runbook needs', () => {
    expect(Array.isArray(rules.groups)).toBe(true);
    for (const group of rules.groups) {
      expect(typeof group.name).toBe('string');
      expect(Array.isArray(group.rules) && group.rules.length > 0).toBe(true);
    }
    const names = new Set<string>();
    for (const rule of alertRules()) {
      expect(Object.keys(rule).sort()).toEqual(
        expect.arrayContaining(['alert', 'annotations', 'expr', 'for', 'labels']),
      );
      for (const key of Object.keys(rule))
        expect(['alert', 'expr', 'for', 'keep_firing_for', 'labels', 'annotations']).toContain(key);
      expect(rule.alert).toMatch(/^[A-Z][A-Za-z0-9]+$/);
      expect(names.has(rule.alert as string), `${rule.alert} twice`).toBe(false);
      names.add(rule.alert as string);
      expect(rule.for).toMatch(/^\d+[smh]$/);
      expect(['critical', 'warning', 'info']).toContain((rule.labels as { severity?: string }).severity);
      const annotations = rule.annotations as Record<string, string>;
      expect(annotations.summary, `${rule.alert} summary`).toBeTruthy();
      expect(annotations.description, `${rule.alert} description`).toBeTruthy();
    }
    for (const needed of [
      'ConvosPoolBreakerOpen',
      'ConvosPoolNoIdleInstances',
      'ConvosClaimLatencyHigh',
      'ConvosInstancesFailed',
      'ConvosProviderErrorSpike',
      'ConvosSweeperErrors',
    ])
      expect(names, needed).toContain(needed);
  });

  it('the dashboard is a Grafana dashboard with a Prometheus data source variable and panels', () => {
    expect(dashboard.title).toBeTruthy();
    expect(dashboard.uid).toMatch(/^[a-z0-9-]{1,40}$/);
    expect(dashboard.panels.length).toBeGreaterThan(8);
    const variables = (dashboard.templating?.list ?? []) as Array<{ name: string; type: string }>;
    expect(variables.find((v) => v.type === 'datasource')).toBeTruthy();
    expect(variables.map((v) => v.name)).toContain('pool');
    const ids = new Set<number>();
    for (const panel of dashboard.panels as Array<{ id: number; title: string; type: string }>) {
      expect(ids.has(panel.id), `panel id ${panel.id} twice`).toBe(false);
      ids.add(panel.id);
      expect(panel.title).toBeTruthy();
    }
  });

  it('every query of the dashboard and the alerts parses and names only series the endpoints expose', () => {
    expect(exposed.api && exposed.worker && exposed.sdk, 'the endpoints were scraped above').toBeTruthy();
    const known = new Set([
      ...seriesNames(exposed.api!),
      ...seriesNames(exposed.worker!),
      ...seriesNames(exposed.sdk!),
    ]);
    const queries = [
      ...dashboardQueries(),
      ...alertRules().map((r) => ({ where: `alert ${r.alert}`, expr: r.expr as string })),
    ];
    expect(queries.length).toBeGreaterThan(15);
    const missing: string[] = [];
    for (const { where, expr } of queries) {
      const names = metricNames(expr);
      expect(names.length, `${where} selects no series: ${expr}`).toBeGreaterThan(0);
      for (const name of names) if (!known.has(name)) missing.push(`${where}: ${name}`);
    }
    expect(missing).toEqual([]);
  });

  it('scripts/metrics-snapshot.ts renders every panel over two real scrapes of the three endpoints', async () => {
    const scrapeAll = async (): Promise<Scrape> => {
      const at = Date.now();
      const all = await Promise.all(
        [apiUrl, workerUrl, sdkUrl].map(async (url) => {
          const instance = new URL(url).host;
          return (await scrape(url)).samples.map((s) => ({ ...s, labels: { instance, ...s.labels } }));
        }),
      );
      return { at, samples: all.flat() };
    };
    const first = await scrapeAll();
    await new Promise((r) => setTimeout(r, 1500));
    const { html } = renderDashboard(dashboard, first, await scrapeAll(), poolName, ['api', 'worker', 'sdk']);
    expect(html).not.toContain('class="error"');
    // The pool's stats have values (idle, target 1, breaker closed, the pool answers), not "no series".
    for (const title of ['Idle instances', 'Target idle', 'Breaker', 'Pool workflow answers'])
      expect(html, title).toMatch(new RegExp(`<h3>${title}</h3><p class="stat"`));
    expect(html).toMatch(/<h3>Target idle<\/h3><p class="stat"[^>]*>1</);
    expect(html).toMatch(/<h3>Claims by outcome<\/h3><table><tr><td class="legend">bound/);
  });

  it('the name check fails for a series that does not exist (the check can fail)', () => {
    expect(metricNames('sum(rate(convos_no_such_series_total[5m])) > 0')).toEqual([
      'convos_no_such_series_total',
    ]);
    expect(() => metricNames('sum(rate(convos_claims_refused_total[5m]) > ')).toThrow(/does not parse/);
  });
});
