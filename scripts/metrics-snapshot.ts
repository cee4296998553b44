/**
 * The operator's dashboard without Grafana: scrapes a running pool's `/metrics` endpoints twice, `--window`
 * seconds apart, evaluates every panel of ops/grafana/convos-agents.json over the two scrapes
 * (scripts/promql-snapshot.ts), writes the panels, laid out as the dashboard lays them out, as a static HTML
 * page (`--html`, a temporary file by default), and screenshots it with headless Chromium (`--chromium`,
 * /usr/bin/chromium by default) into `--out`.
 *
 *   npx tsx scripts/metrics-snapshot.ts --window 30 --out docs/images/operator-metrics.png \
 *     http://127.0.0.1:3001 http://127.0.0.1:9465 http://127.0.0.1:9464
 *
 * METRICS_BEARER (environment) is sent to every endpoint when set. `--pool` picks one pool (default: all).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parseExposition } from './prometheus-text';
import { evaluate, legendOf, type Scrape, type Series, substituteVariables } from './promql-snapshot';
import { projectRoot } from './temporal-dev';

interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  targets?: Array<{ expr?: string; legendFormat?: string }>;
  panels?: Panel[];
  fieldConfig?: {
    defaults?: { unit?: string; thresholds?: { steps: Array<{ color: string; value: number | null }> } };
  };
}

/** One scrape of every endpoint, each sample labelled with the endpoint's `instance`, as Prometheus does. */
async function scrapeAll(urls: string[], bearer: string | undefined): Promise<Scrape> {
  const at = Date.now();
  const samples = [];
  for (const url of urls) {
    const res = await fetch(`${url.replace(/\/$/, '')}/metrics`, {
      headers: bearer ? { authorization: `Bearer ${bearer}` } : {},
    });
    if (res.status !== 200) throw new Error(`${url}/metrics answered ${res.status}`);
    const instance = new URL(url).host;
    for (const s of parseExposition(await res.text()).samples)
      samples.push({ ...s, labels: { instance, ...s.labels } });
  }
  return { at, samples };
}

const number = (v: number, digits = 3) =>
  Number.isInteger(v) ? String(v) : v.toPrecision(digits).replace(/\.?0+(e|$)/, '$1');

/** A value as the panel's Grafana unit shows it. */
export function formatValue(value: number, unit: string | undefined): string {
  if (Number.isNaN(value)) return 'no data';
  switch (unit) {
    case 'reqps':
      return `${number(value)}/s`;
    case 's':
      return value < 1 ? `${number(value * 1000)} ms` : `${number(value)} s`;
    case 'ms':
      return `${number(value)} ms`;
    case 'bytes':
      return `${number(value / 2 ** 20)} MiB`;
    case 'percentunit':
      return `${number(value * 100)}%`;
    default:
      return number(value);
  }
}

const escapeHtml = (text: string) =>
  text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;');

const COLORS: Record<string, string> = {
  green: '#73bf69',
  red: '#f2495c',
  orange: '#ff9830',
  yellow: '#fade2a',
};

function thresholdColor(panel: Panel, value: number): string {
  const steps = panel.fieldConfig?.defaults?.thresholds?.steps ?? [];
  let color = 'green';
  for (const step of steps) if (step.value === null || value >= step.value) color = step.color;
  return COLORS[color] ?? color;
}

interface Evaluated {
  legend: string;
  value: number;
}

function renderPanel(panel: Panel, results: Evaluated[], error: string | null): string {
  const { x, y, w, h } = panel.gridPos;
  const place = `grid-column:${x + 1}/span ${w};grid-row:${y + 1}/span ${h}`;
  if (panel.type === 'row') return `<h2 style="${place}">${escapeHtml(panel.title)}</h2>`;
  const unit = panel.fieldConfig?.defaults?.unit;
  let body: string;
  if (error) body = `<p class="error">${escapeHtml(error)}</p>`;
  else if (results.length === 0) body = '<p class="empty">no series</p>';
  else if (panel.type === 'stat') {
    const v = results[0]!.value;
    body = `<p class="stat" style="color:${thresholdColor(panel, v)}">${escapeHtml(formatValue(v, unit))}</p>`;
  } else {
    const magnitude = (r: Evaluated) => (Number.isFinite(r.value) ? Math.abs(r.value) : 0);
    const max = Math.max(...results.map(magnitude));
    // What fits in the panel; past that the largest are shown and the rest folded into one line.
    const fits = Math.max(2, Math.floor((h * 32 - 40) / 19));
    const shown =
      results.length <= fits
        ? results
        : [...results].sort((a, b) => magnitude(b) - magnitude(a)).slice(0, fits - 1);
    const folded = results.filter((r) => !shown.includes(r));
    const more = folded.length
      ? `<tr><td class="legend more" colspan="3">and ${folded.length} more series${folded.every((r) => r.value === 0) ? ', all 0' : ''}</td></tr>`
      : '';
    body = `<table>${shown
      .map((r) => {
        const width = max > 0 ? (magnitude(r) / max) * 100 : 0;
        return `<tr><td class="legend">${escapeHtml(r.legend)}</td><td class="bar"><span style="width:${width.toFixed(1)}%"></span></td><td class="value">${escapeHtml(formatValue(r.value, unit))}</td></tr>`;
      })
      .join('')}${more}</table>`;
  }
  return `<section style="${place}"><h3>${escapeHtml(panel.title)}</h3>${body}</section>`;
}

/** The dashboard's panels over two scrapes, as one HTML page (rows flattened into the grid). */
export function renderDashboard(
  dashboard: { title: string; panels: Panel[] },
  first: Scrape,
  last: Scrape,
  pool: string,
  endpoints: string[],
): { html: string; height: number } {
  const windowSeconds = (last.at - first.at) / 1000;
  const panels: Panel[] = [];
  for (const panel of dashboard.panels)
    panels.push({ ...panel }, ...(panel.panels ?? []).map((p) => ({ ...p })));
  // Grafana floats panels up into empty grid rows: so does the page (rows no panel covers are dropped).
  const covered = new Set(
    panels.flatMap((p) => Array.from({ length: p.gridPos.h }, (_, i) => p.gridPos.y + i)),
  );
  const rowOf = (y: number) => [...covered].filter((r) => r < y).length;
  for (const p of panels) p.gridPos = { ...p.gridPos, y: rowOf(p.gridPos.y) };
  const rows = covered.size;
  const sections = panels.map((panel) => {
    const results: Evaluated[] = [];
    let error: string | null = null;
    try {
      for (const target of panel.targets ?? []) {
        if (!target.expr) continue;
        const series: Series[] = evaluate(
          substituteVariables(target.expr, { pool, windowSeconds }),
          first,
          last,
        );
        for (const s of series)
          results.push({ legend: legendOf(target.legendFormat, s.labels), value: s.value });
      }
    } catch (err) {
      error = (err as Error).message;
    }
    results.sort((a, b) => (a.legend < b.legend ? -1 : 1));
    return renderPanel(panel, results, error);
  });
  const rowPx = 26;
  const html = `<!doctype html><html><head><meta charset="utf-8"><title>${escapeHtml(dashboard.title)}</title><style>
body{margin:0;padding:16px;background:#111217;color:#ccccdc;font:13px/1.35 system-ui,sans-serif}
header{margin-bottom:12px}header h1{margin:0;font-size:18px;color:#fff}header p{margin:2px 0;color:#8e8e9e}
main{display:grid;grid-template-columns:repeat(24,1fr);grid-auto-rows:${rowPx}px;gap:6px}
h2{margin:0;align-self:end;font-size:15px;color:#fff}
section{background:#181b1f;border:1px solid #2c3235;border-radius:3px;padding:6px 8px;overflow:hidden}
h3{margin:0 0 4px;font-size:12px;font-weight:600;color:#d8d9da}
.stat{margin:8px 0 0;font-size:34px;font-weight:600;text-align:center}
table{width:100%;border-collapse:collapse}td{padding:1px 4px;white-space:nowrap}
td.legend{max-width:220px;overflow:hidden;text-overflow:ellipsis}td.bar{width:45%}
td.bar span{display:block;height:9px;background:#5794f2;border-radius:2px;min-width:1px}
td.value{text-align:right;font-variant-numeric:tabular-nums;color:#fff}
.empty,.more{color:#8e8e9e}.error{color:#f2495c}
</style></head><body><header><h1>${escapeHtml(dashboard.title)}</h1>
<p>pool ${escapeHtml(pool === '.+' ? '(all)' : pool)} · two scrapes of ${escapeHtml(endpoints.join(', '))}, ${new Date(first.at).toISOString()} and ${number(windowSeconds)} s later · rates and increases over that window; gauges at the second scrape</p>
</header><main>${sections.join('\n')}</main></body></html>`;
  return { html, height: rows * (rowPx + 6) + 100 };
}

async function main() {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      window: { type: 'string', default: '30' },
      out: { type: 'string', default: path.join(projectRoot, 'docs', 'images', 'operator-metrics.png') },
      pool: { type: 'string' },
      chromium: { type: 'string', default: '/usr/bin/chromium' },
      width: { type: 'string', default: '1600' },
      html: { type: 'string' },
    },
  });
  if (positionals.length === 0) throw new Error('usage: metrics-snapshot.ts [--window s] [--out png] URL...');
  const bearer = process.env.METRICS_BEARER || undefined;
  const dashboard = JSON.parse(
    fs.readFileSync(path.join(projectRoot, 'ops', 'grafana', 'convos-agents.json'), 'utf8'),
  );
  const first = await scrapeAll(positionals, bearer);
  console.log(`scraped ${positionals.length} endpoints; again in ${values.window} s`);
  await new Promise((r) => setTimeout(r, Number(values.window) * 1000));
  const last = await scrapeAll(positionals, bearer);
  const pool = values.pool ? values.pool.replaceAll(/[.*+?^${}()|[\]\\]/g, '\\$&') : '.+';
  const { html, height } = renderDashboard(
    dashboard,
    first,
    last,
    pool,
    positionals.map((u) => new URL(u).host),
  );
  const out = path.resolve(values.out);
  const htmlFile = path.resolve(values.html ?? path.join(os.tmpdir(), `${path.basename(out, '.png')}.html`));
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(htmlFile, html);
  execFileSync(
    values.chromium,
    [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--hide-scrollbars',
      `--window-size=${values.width},${height}`,
      `--screenshot=${out}`,
      `file://${htmlFile}`,
    ],
    { stdio: 'ignore' },
  );
  console.log(`wrote ${htmlFile} and ${out}`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
